"""The edge-case corpus's pixel bomb, committed: ``make_pixel_bomb()``'s output, gzipped (1.2 KB for 189 KB).

Making it costs ffmpeg 0.4 s of CPU and about 1 GB of frame buffers, which on this project's test machines (virtual
machines that hand freed memory back to their host) came to 1 to 6 s of system time more, in every profiled run of
`make test` (the file is the same each time); a copy costs nothing. The recipe stays in
``sqs_decoupling.video.samples.make_pixel_bomb``, which the tests run at a small size; ``python -m
tests.support.pixel_bomb`` makes the file again from it (then check ``git diff``: the ffmpeg of another imageio-ffmpeg
release may encode it differently).
"""

from __future__ import annotations

import gzip
import inspect
import tempfile
from pathlib import Path

from sqs_decoupling.video.samples import make_pixel_bomb

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pixel-bomb-8000x8000-3-frames.mp4.gz"
# make_pixel_bomb's defaults, which the file was made with (a test checks the file against them: a new default with an
# old file fails there until the file is made again)
_DEFAULTS = inspect.signature(make_pixel_bomb).parameters
SIDE: int = _DEFAULTS["side"].default
FRAMES: int = _DEFAULTS["frames"].default


def unpack_pixel_bomb(dest: Path) -> Path:
    """Write the committed pixel bomb to ``dest`` (an .mp4)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    return dest


def remake_fixture() -> Path:
    """Make the pixel bomb with ``make_pixel_bomb``'s defaults and store it gzipped (no name, no time: the same
    bytes for the same input) as :data:`FIXTURE`."""
    with tempfile.TemporaryDirectory() as scratch:
        bomb = make_pixel_bomb(Path(scratch) / "bomb.mp4", side=SIDE, frames=FRAMES)
        FIXTURE.write_bytes(gzip.compress(bomb.read_bytes(), compresslevel=9, mtime=0))
    return FIXTURE


if __name__ == "__main__":
    print(f"written: {remake_fixture()}")
