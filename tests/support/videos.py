"""Small real videos made with ffmpeg's ``testsrc`` source, for tests and benchmarks.

``make_test_video`` writes one clip where you ask; ``cached_video`` returns a clip from a per-process cache, so a
test session encodes each distinct clip once (160x120 x 1 s takes ~50 ms); ``cached_long_video`` makes a long clip
for the price of a short one.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from sqs_decoupling.video import ffmpeg as video_ffmpeg
from sqs_decoupling.video.samples import make_sample_video

# The generator lives in the library, so the demo and the benchmarks make the same clips as the tests.
make_test_video = make_sample_video

# The frame rate for clips a test transcodes when the frame rate is not its point (renditions' sizes, codec, sound,
# duration, output sets): a fifth of the default 25 fps, so the clip and each rendition encode a fifth of the frames at
# the same size and duration (a 1 s 720p source to 720p and 480p: 0.4 s of ffmpeg CPU instead of 1.2 s, clip included).
FEW_FRAMES_FPS = 5


@functools.cache
def _cache_dir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="test-videos-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


@functools.cache
def cached_video(*, seconds: float = 1, size: str = "160x120", fps: int = 25, audio: bool = False) -> Path:
    """A cached clip with these settings. Read it, copy it, upload it; do not modify it."""
    name = f"testsrc-{size}-{seconds}s-{fps}fps{'-audio' if audio else ''}.mp4"
    return make_test_video(_cache_dir() / name, seconds=seconds, size=size, fps=fps, audio=audio)


@functools.cache
def cached_long_video(*, seconds: int, size: str, piece_seconds: int = 2) -> Path:
    """A cached ``seconds`` s clip: a ``piece_seconds`` s ``cached_video`` repeated without re-encoding (stream
    copy, timestamps continued). It takes as long to decode and transcode as a clip encoded whole, but costs the
    encoding of the piece only (720p: 0.3 s of CPU for a 40 s clip instead of 5.6 s), for tests that need a long
    job rather than distinct frames."""
    if seconds % piece_seconds:
        raise ValueError(f"seconds ({seconds}) must be a multiple of piece_seconds ({piece_seconds})")
    piece = cached_video(seconds=piece_seconds, size=size)
    path = _cache_dir() / f"testsrc-{size}-{piece_seconds}s-x{seconds // piece_seconds}.mp4"
    loops = ["-stream_loop", str(seconds // piece_seconds - 1), "-i", str(piece), "-c", "copy"]
    quiet = ["-hide_banner", "-nostdin", "-loglevel", "error"]
    subprocess.run([video_ffmpeg.ffmpeg_exe(), *quiet, *loops, "-y", str(path)], check=True, timeout=60)
    return path


def cached_video_bytes(*, seconds: float = 1, size: str = "160x120", fps: int = 25, audio: bool = False) -> bytes:
    """The bytes of ``cached_video(...)``, for ``put_object``."""
    return cached_video(seconds=seconds, size=size, fps=fps, audio=audio).read_bytes()


@pytest.fixture
def ffmpeg_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Arguments of every ffmpeg run made by ``sqs_decoupling.video`` during the test (ffmpeg still runs)."""
    # Warm the (cached) encoder check first, so it is not counted as work done for a job.
    video_ffmpeg.h264_available()
    calls: list[list[str]] = []
    real_run = video_ffmpeg.run_ffmpeg

    def spy(args: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        return real_run(args, **options)

    monkeypatch.setattr(video_ffmpeg, "run_ffmpeg", spy)
    return calls


def media_info(path: Path) -> dict[str, Any]:
    """Size, codec, duration, fps of an image or video, read by imageio-ffmpeg's own parser (an oracle
    independent of ``sqs_decoupling.video.probe``)."""
    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        meta: dict[str, Any] = next(frames)
    finally:
        frames.close()
    return meta
