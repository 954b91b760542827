"""localcloud.moto_compat's work-around for moto's Docker probe (the rest are exercised by the deploy rehearsal)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import settings

from localcloud import moto_compat


@pytest.fixture
def compat() -> Iterator[list[str]]:
    applied = moto_compat.apply()
    yield applied
    moto_compat.revert()


def test_custom_resources_get_a_callback_host_without_probing_docker(
    compat: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the work-arounds applied on a machine where moto believes it runs in Docker (as it does here: /.dockerenv)
    monkeypatch.setattr(settings, "is_docker", lambda: True)
    probes: list[str] = []
    monkeypatch.setattr(os, "popen", lambda command: probes.append(command))
    # WHEN moto works out the callback URL for a custom resource
    host = settings.moto_server_host()
    # THEN it uses its no-Docker default, never asks the Docker socket, and prints nothing
    assert host == "http://host.docker.internal"
    assert probes == []
    assert capsys.readouterr().out == ""
    assert any("Docker" in fix for fix in compat)


def test_revert_gives_back_moto_s_own_probe() -> None:
    original = settings.moto_server_host
    moto_compat.apply()
    patched = settings.moto_server_host
    moto_compat.revert()
    assert patched is not original
    assert settings.moto_server_host is original


def test_revert_leaves_an_enclosing_key_length_limit_in_place() -> None:
    # GIVEN S3's key length limit enforced for a block (a session-long server), and stock moto's put_object
    from moto.s3.models import S3Backend

    stock = S3Backend.put_object
    with moto_compat.s3_key_length_enforced():
        limited = S3Backend.put_object
        # WHEN every work-around is applied and reverted inside the block (a test's own server)
        moto_compat.apply()
        moto_compat.revert()
        # THEN the block's limit is still in place, and stock moto comes back after the block
        assert S3Backend.put_object is limited is not stock
    assert S3Backend.put_object is stock
