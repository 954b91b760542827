"""The edge-case corpus, made once per test process for the modules that use it, and the pytest-xdist group that
makes it once per run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sqs_decoupling.video.samples import make_edge_case_corpus
from tests.support.pixel_bomb import unpack_pixel_bomb
from tests.support.schedule import EDGE_CASE_CORPUS

if TYPE_CHECKING:
    from pathlib import Path

# Every test that uses the corpus carries this mark, so one pytest-xdist process runs them all and makes the corpus
# once.
CORPUS_GROUP = pytest.mark.xdist_group(EDGE_CASE_CORPUS)


@pytest.fixture(scope="session")
def edge_case_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Name -> file of every edge-case upload (``make_edge_case_corpus``): the corpus sweep processes each one, and
    the resource-ceiling tests decode its ``huge_frame`` case, the default pixel bomb (``make_pixel_bomb``), here
    the committed one (tests/support/pixel_bomb.py says why)."""
    directory = tmp_path_factory.mktemp("corpus")
    bomb = unpack_pixel_bomb(directory / "committed-pixel-bomb.mp4")
    return make_edge_case_corpus(directory, pixel_bomb=bomb)
