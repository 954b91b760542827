"""Sample videos made with ffmpeg's ``testsrc`` source: for the demo, the benchmarks and the tests.

They are real H.264 clips (a moving test pattern, optionally with a sine tone), so everything downstream runs the
same code it runs on user uploads.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from video_processing.ffmpeg import ffmpeg_exe


def make_sample_video(
    path: Path, *, seconds: float = 1, size: str = "160x120", fps: int = 25, audio: bool = False
) -> Path:
    """Encode a ``testsrc`` clip (H.264 in MP4, yuv420p; ``audio`` adds a sine tone as AAC) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate={fps}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            *inputs,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            *(["-c:a", "aac", "-shortest"] if audio else []),
            "-y",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path
