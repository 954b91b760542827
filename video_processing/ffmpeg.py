"""Thin, typed wrappers around the static ffmpeg that ships inside the ``imageio-ffmpeg`` wheel.

There is no ffprobe in that wheel, so ``probe`` reads what ``ffmpeg -i`` prints about its input.
Every call goes through ``run_ffmpeg`` (one place for the timeout, and one place tests can spy on).
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from video_processing.errors import FfmpegError, NotAVideoError
from video_processing.subprocesses import children

# Demuxers ffmpeg may use on an upload. An allow-list keeps ffmpeg from treating a text file as ANSI art
# (the `tty` demuxer) or following playlists (`hls`, `concat`) that point at other files or URLs.
ALLOWED_CONTAINERS = "mov,matroska,webm,avi,mpegts,flv,mpeg,ogg,asf"

PROBE_TIMEOUT_S = 30.0
THUMBNAIL_TIMEOUT_S = 60.0
THUMBNAIL_MAX_WIDTH = 320

# What ffmpeg prints when the bytes are not a readable container; anything else is not the input's fault.
_INVALID_INPUT_MARKERS = (
    "Invalid data found when processing input",
    "moov atom not found",
)

_INPUT_RE = re.compile(r"^Input #0, (?P<container>[^ ]+), from", re.MULTILINE)
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+.*?: (?P<kind>Video|Audio|Data|Subtitle|Attachment): (?P<rest>.*)$")
_SIZE_RE = re.compile(r"(?:^|[ ,])(?P<w>\d{1,5})x(?P<h>\d{1,5})(?:[ ,]|$)")
_FPS_RE = re.compile(r"(?P<fps>\d+(?:\.\d+)?)(?P<k>k?) (?:fps|tbr)")
_ROTATION_RE = re.compile(r"rotation of (?P<deg>-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)


@dataclass(frozen=True)
class VideoInfo:
    """What the probe found. ``width`` x ``height`` is the displayed size (rotation applied)."""

    duration: float | None
    width: int
    height: int
    codec: str
    fps: float | None
    container: str
    has_audio: bool
    rotation: int


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg with ``args``; a timeout becomes ``FfmpegError``. A non-zero exit is left to the caller."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        # In its own session (see video_processing.subprocesses): a signal to the consumer's process group
        # must not kill a transcode the worker is still draining.
        return children.run(command, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise FfmpegError(f"ffmpeg timed out after {timeout:.0f} s", returncode=None, stderr_tail="") from error


def input_args(path: Path) -> list[str]:
    """``-i`` for a local upload, restricted to the allowed containers (``file:`` stops protocol parsing)."""
    return ["-format_whitelist", ALLOWED_CONTAINERS, "-i", f"file:{path}"]


@functools.cache
def h264_available() -> bool:
    """Whether the bundled ffmpeg has libx264 (the imageio-ffmpeg builds do; mpeg4 is the fallback)."""
    return "libx264" in run_ffmpeg(["-encoders"], timeout=PROBE_TIMEOUT_S).stdout


def probe(path: Path) -> VideoInfo:
    """Describe the first video stream of ``path``; ``NotAVideoError`` when there is none."""
    stderr = run_ffmpeg(input_args(path), timeout=PROBE_TIMEOUT_S).stderr
    container = _INPUT_RE.search(stderr)
    if container is None:
        if any(marker in stderr for marker in _INVALID_INPUT_MARKERS):
            raise NotAVideoError(f"ffmpeg cannot read it as a video: {_tail(stderr)}")
        raise FfmpegError("ffmpeg could not open the input", returncode=None, stderr_tail=_tail(stderr))

    video_line: str | None = None
    rotation = 0
    has_audio = False
    in_video_stream = False
    for line in stderr.splitlines():
        stream = _STREAM_RE.match(line)
        if stream:
            # Cover art in an audio file shows up as a one-frame "video" stream: not a video.
            is_video = stream["kind"] == "Video" and "(attached pic)" not in line
            in_video_stream = is_video and video_line is None
            if in_video_stream:
                video_line = stream["rest"]
            has_audio = has_audio or stream["kind"] == "Audio"
        elif in_video_stream and (rotated := _ROTATION_RE.search(line)):
            rotation = round(float(rotated["deg"])) % 360
    if video_line is None:
        raise NotAVideoError("the file has no video stream")

    size = _SIZE_RE.search(video_line)
    if size is None:
        raise NotAVideoError(f"the video stream has no frame size: {video_line}")
    width, height = int(size["w"]), int(size["h"])
    if rotation in (90, 270):
        width, height = height, width
    fps_match = _FPS_RE.search(video_line)
    fps = float(fps_match["fps"]) * (1000 if fps_match["k"] else 1) if fps_match else None
    duration = _DURATION_RE.search(stderr)
    return VideoInfo(
        duration=(int(duration["h"]) * 3600 + int(duration["m"]) * 60 + float(duration["s"]) if duration else None),
        width=width,
        height=height,
        codec=video_line.split(maxsplit=1)[0].rstrip(","),
        fps=fps,
        container=container["container"],
        has_audio=has_audio,
        rotation=rotation,
    )


def make_thumbnail(source: Path, dest: Path, info: VideoInfo) -> None:
    """Write one JPEG frame, at most ``THUMBNAIL_MAX_WIDTH`` wide (never upscaled), aspect ratio kept."""
    # A frame a little into the clip is more telling than the first (often black); stay inside short clips.
    at = min(1.0, info.duration / 4) if info.duration else 0.0
    _check(
        run_ffmpeg(
            [
                "-ss",
                f"{at:.3f}",
                *input_args(source),
                "-frames:v",
                "1",
                "-vf",
                f"scale='min({THUMBNAIL_MAX_WIDTH},iw)':-2",
                "-q:v",
                "4",
                "-y",
                str(dest),
            ],
            timeout=THUMBNAIL_TIMEOUT_S,
        ),
        dest,
        "thumbnail",
    )


def make_rendition(source: Path, dest: Path, info: VideoInfo, *, short_side: int) -> None:
    """Transcode to an MP4 whose short side is ``short_side`` (720 for "720p"), aspect ratio kept.

    The caller decides whether the rendition is worth making (``short_side`` <= the source's short side).
    """
    # -2 = "keep the aspect ratio, round to an even number" (yuv420p needs even dimensions).
    scale = f"scale=-2:{short_side}" if info.width >= info.height else f"scale={short_side}:-2"
    if h264_available():
        codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]
    else:
        codec = ["-c:v", "mpeg4", "-q:v", "5"]
    _check(
        run_ffmpeg(
            [
                *input_args(source),
                "-map",
                "0:v:0",
                "-map",
                "0:a:0?",
                "-vf",
                scale,
                *codec,
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-movflags",
                "+faststart",
                "-y",
                str(dest),
            ],
            # Generous: a rendition at "veryfast" runs well above real time on one vCPU.
            timeout=120.0 + 10.0 * (info.duration or 60.0),
        ),
        dest,
        f"{short_side}p rendition",
    )


def _check(result: subprocess.CompletedProcess[str], dest: Path, what: str) -> None:
    # The input already probed as a video, so a failure here is ours (disk, memory, a bug): transient.
    if result.returncode != 0 or not dest.is_file() or dest.stat().st_size == 0:
        raise FfmpegError(
            f"ffmpeg failed to make the {what}", returncode=result.returncode, stderr_tail=_tail(result.stderr)
        )


def _tail(stderr: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in stderr.strip().splitlines()[-lines:])
