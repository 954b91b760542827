"""The committed pixel bomb is the one its recipe makes: an H.264 stream of a few gray frames, tiny on disk."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sqs_decoupling.video.ffmpeg import ffmpeg_exe
from sqs_decoupling.video.samples import make_pixel_bomb
from tests.support.pixel_bomb import FIXTURE, FRAMES, SIDE, unpack_pixel_bomb


def packets(path: Path) -> tuple[str, str, int]:
    """(codec, coded size, packet count) of the one stream of ``path``, read from a stream copy: nothing decoded."""
    listing = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (codec,) = re.findall(r"^#codec_id 0: (\w+)$", listing, re.M)
    (size,) = re.findall(r"^#dimensions 0: (\d+x\d+)$", listing, re.M)
    return codec, size, len([line for line in listing.splitlines() if line.startswith("0,")])


def test_the_committed_bomb_is_a_few_frames_of_8000x8000_in_under_200_kb(tmp_path: Path) -> None:
    # GIVEN the committed file, unpacked
    bomb = unpack_pixel_bomb(tmp_path / "bomb.mp4")
    # THEN it is H.264, 8000x8000, make_pixel_bomb's default frame count, in under 200 KB (1.2 KB gzipped): each
    # frame decodes to 96 MB
    assert packets(bomb) == ("h264", f"{SIDE}x{SIDE}", FRAMES)
    assert bomb.stat().st_size < 200_000 and FIXTURE.stat().st_size < 2_000


def test_the_recipe_makes_what_it_says_at_any_size(tmp_path: Path) -> None:
    # GIVEN the recipe the committed file was made with, at a size that is cheap to encode
    # WHEN it makes a bomb of 4 frames of 640x640
    bomb = make_pixel_bomb(tmp_path / "small.mp4", side=640, frames=4)
    # THEN the file holds exactly that
    assert packets(bomb) == ("h264", "640x640", 4)
