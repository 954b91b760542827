"""Thin, typed wrappers around the static ffmpeg that ships inside the ``imageio-ffmpeg`` wheel.

There is no ffprobe in that wheel, so ``probe`` reads what ``ffmpeg -i`` prints about its input (that reads the
container header and at most a few seconds of the stream, never the whole file).
Every call goes through ``run_ffmpeg``: one place that starts ffmpeg, with its memory ceiling and its timeout,
and one place tests can spy on.

Failures are sorted by cause. The input's fault (ffmpeg cannot decode it, or it needs more memory or time than
:class:`~video_processing.limits.MediaLimits` allow) is a ``PermanentJobError`` with a reason; only the
environment's (disk full, output not writable, ffmpeg killed from outside) is a transient ``FfmpegError``.
Messages never contain the local paths of the work directory.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from video_processing.errors import (
    FfmpegError,
    FfmpegTimeoutError,
    InputLimitError,
    NotAVideoError,
    ResourceCeilingError,
    UndecodableError,
)
from video_processing.limits import DEFAULT_LIMITS, MIB, MediaLimits
from video_processing.profiles import DEFAULT_THUMBNAIL, Rendition, Thumbnail
from video_processing.subprocesses import children

# Demuxers ffmpeg may use on an upload. An allow-list keeps ffmpeg from treating a text file as ANSI art
# (the `tty` demuxer) or following playlists (`hls`, `concat`) that point at other files or URLs.
ALLOWED_CONTAINERS = "mov,matroska,webm,avi,mpegts,flv,mpeg,ogg,asf"

PROBE_TIMEOUT_S = 30.0
# Clips shorter than this give their first frame: a seek into them may land past their only frames.
THUMBNAIL_MIN_SEEK_DURATION_S = 1.0

# What ffmpeg prints when the bytes are not a readable container; anything else is not the input's fault.
_INVALID_INPUT_MARKERS = (
    "Invalid data found when processing input",
    "moov atom not found",
)
# Failures of the machine, not of the input: retrying elsewhere or later can succeed.
_ENVIRONMENT_MARKERS = (
    "No space left on device",
    "Read-only file system",
    "Permission denied",
    "No such file or directory",
    "Too many open files",
)
_OUT_OF_MEMORY_MARKERS = ("Cannot allocate memory", "Out of memory", "out of memory")
# A decoder holds about this many frames beyond one per thread (H.264 references, reordering, the filter's copy).
_FRAMES_HELD_BEYOND_THREADS = 6
# Without it, a decoder that cannot get memory under RLIMIT_AS retries for ever, writing an error line each time
# (800,000 lines in 15 s here). The price: a video with a corrupt frame fails (cannot_decode) instead of giving
# glitched outputs.
_EXIT_ON_ERROR = ("-xerror",)
# Characters with a meaning in the tee muxer's output list.
_TEE_SPECIAL = "|[]\\':"
# Signals that stop ffmpeg from outside (a stop, the OOM killer): the environment's doing.
_EXTERNAL_SIGNALS = frozenset({signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGHUP})
# How a process that cannot get memory under RLIMIT_AS may end besides an error message.
_ALLOCATION_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS})

_INPUT_RE = re.compile(r"^Input #0, (?P<container>[^ ]+), from", re.MULTILINE)
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_ANY_STREAM_RE = re.compile(r"^\s*Stream #0:\d+", re.MULTILINE)
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+.*?: (?P<kind>Video|Audio|Data|Subtitle|Attachment): (?P<rest>.*)$")
_SIZE_RE = re.compile(r"(?:^|[ ,])(?P<w>\d{1,5})x(?P<h>\d{1,5})(?:[ ,]|$)")
_FPS_RE = re.compile(r"(?P<fps>\d+(?:\.\d+)?)(?P<k>k?) (?:fps|tbr)")
_ROTATION_RE = re.compile(r"rotation of (?P<deg>-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)


@dataclass(frozen=True)
class VideoInfo:
    """What the probe found. ``width`` x ``height`` is the displayed size (rotation applied); ``streams`` counts
    every stream in the container (video, audio, subtitles, data)."""

    duration: float | None
    width: int
    height: int
    codec: str
    fps: float | None
    container: str
    has_audio: bool
    rotation: int
    streams: int = 1


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(
    args: Sequence[str], *, timeout: float, memory_bytes: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg with ``args``, at most ``timeout`` s (``FfmpegTimeoutError``) and, when ``memory_bytes`` is set,
    with that address-space ceiling (``RLIMIT_AS``). A non-zero exit is left to the caller."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    if memory_bytes is not None:
        # The ceiling is set in the child by the shell's ulimit right before exec: unlike preexec_fn, this is safe
        # in the worker's threads. ffmpeg keeps the pid (exec), so signals and timeouts reach ffmpeg itself.
        command = ["/bin/sh", "-c", f'ulimit -v {memory_bytes // 1024} && exec "$0" "$@"', *command]
    try:
        # In its own session (see video_processing.subprocesses): a signal to the consumer's process group
        # must not kill a transcode the worker is still draining.
        return children.run(command, timeout=timeout, env=_child_environment())
    except subprocess.TimeoutExpired as error:
        raise FfmpegTimeoutError(timeout) from error


@functools.cache
def _child_environment() -> dict[str, str]:
    # glibc gives each thread its own 64 MB malloc arena; two arenas keep ffmpeg's address space near its real use
    # (a 1080p two-rendition run: 1.5 GB -> 0.8 GB of address space), so RLIMIT_AS can be tight.
    return {**os.environ, "MALLOC_ARENA_MAX": "2"}


def input_args(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> list[str]:
    """``-i`` for a local upload, restricted to the allowed containers (``file:`` stops protocol parsing),
    decoded with at most ``limits.ffmpeg_threads`` threads."""
    return ["-threads", str(limits.ffmpeg_threads), "-format_whitelist", ALLOWED_CONTAINERS, "-i", f"file:{path}"]


@functools.cache
def h264_available() -> bool:
    """Whether the bundled ffmpeg has libx264 (the imageio-ffmpeg builds do; mpeg4 is the fallback)."""
    return "libx264" in run_ffmpeg(["-encoders"], timeout=PROBE_TIMEOUT_S).stdout


def probe(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Describe the first video stream of ``path``; ``NotAVideoError`` when there is none.

    ffmpeg reads the header and a few seconds of the stream, under the memory ceiling of ``limits``.
    """
    result = _run_limited(
        input_args(path, limits), timeout=min(PROBE_TIMEOUT_S, limits.time_base_seconds), limits=limits, what="probe"
    )
    stderr = result.stderr
    container = _INPUT_RE.search(stderr)
    if container is None:
        if any(marker in stderr for marker in _INVALID_INPUT_MARKERS):
            raise NotAVideoError(f"ffmpeg cannot read it as a video: {_tail(stderr, path)}")
        _raise_for_failure(result, "probe", limits, path)
        raise FfmpegError("ffmpeg could not open the input", returncode=None, stderr_tail=_tail(stderr, path))

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
        raise NotAVideoError(f"the video stream has no frame size: {_scrub(video_line, path)}")
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
        streams=len(_ANY_STREAM_RE.findall(stderr)),
    )


def check_limits(info: VideoInfo, limits: MediaLimits = DEFAULT_LIMITS) -> None:
    """Refuse, before anything is decoded, an input whose probe exceeds ``limits`` (``InputLimitError``)."""
    if info.width > limits.max_width or info.height > limits.max_height:
        raise InputLimitError(
            f"frames are {info.width}x{info.height}, above the limit of {limits.max_width}x{limits.max_height}",
            reason="too_large_frame",
        )
    if info.width * info.height > limits.max_pixels:
        raise InputLimitError(
            f"frames are {info.width}x{info.height} = {info.width * info.height} pixels, "
            f"above the limit of {limits.max_pixels}",
            reason="too_large_frame",
        )
    if info.fps is not None and info.fps > limits.max_fps:
        raise InputLimitError(
            f"{info.fps:g} frames per second, above the limit of {limits.max_fps:g}", reason="too_high_frame_rate"
        )
    if info.duration is not None and info.duration > limits.max_duration_seconds:
        raise InputLimitError(
            f"declared duration {info.duration:.0f} s, above the limit of {limits.max_duration_seconds:.0f} s",
            reason="too_long",
        )
    if info.streams > limits.max_streams:
        raise InputLimitError(
            f"{info.streams} streams, above the limit of {limits.max_streams}", reason="too_many_streams"
        )
    ceiling = limits.ffmpeg_memory_bytes
    if ceiling is not None and (needed := decoding_memory_estimate(info, limits)) > ceiling:
        raise ResourceCeilingError(
            f"decoding {info.width}x{info.height} frames needs about {needed // MIB} MiB, above the "
            f"{ceiling // MIB} MiB memory ceiling",
            reason="memory_limit",
        )


def decoding_memory_estimate(info: VideoInfo, limits: MediaLimits = DEFAULT_LIMITS) -> int:
    """A rough lower bound of the memory a decoder of ``info``'s frames needs: the frames it holds at once
    (8-bit 4:2:0, 1.5 bytes a pixel), one per thread plus references."""
    frame_bytes = info.width * info.height * 3 // 2
    return frame_bytes * (limits.ffmpeg_threads + _FRAMES_HELD_BEYOND_THREADS)


def make_thumbnail(
    source: Path,
    dest: Path,
    info: VideoInfo,
    *,
    thumbnail: Thumbnail = DEFAULT_THUMBNAIL,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> None:
    """Write one JPEG frame, at most ``thumbnail.max_width`` wide (never upscaled), aspect ratio kept.

    A frame a little into the clip is more telling than the first (often black): seek (before ``-i``, so only a
    few frames are decoded) to ``thumbnail.at_seconds`` or a quarter of the clip, whichever is earlier. Clips
    shorter than ``THUMBNAIL_MIN_SEEK_DURATION_S``, clips of unknown duration, and clips whose seek finds no frame
    (a header that declares more than the file holds) give their first frame.
    """
    duration = info.duration or 0.0
    at = min(thumbnail.at_seconds, duration / 4) if duration >= THUMBNAIL_MIN_SEEK_DURATION_S else 0.0
    for seek in dict.fromkeys((at, 0.0)):
        args = [
            *_EXIT_ON_ERROR,
            *(["-ss", f"{seek:.3f}"] if seek else []),
            *input_args(source, limits),
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            # yuvj420p: the JPEG encoder takes neither 10-bit nor 4:4:4 frames.
            "-vf",
            f"scale='min({thumbnail.max_width},iw)':-2,format=yuvj420p",
            "-q:v",
            "4",
            "-update",
            "1",
            "-y",
            str(dest),
        ]
        result = _run_limited(args, timeout=limits.time_base_seconds, limits=limits, what="thumbnail")
        if _wrote(dest, result):
            return
        if seek == 0.0:
            _raise_for_failure(result, "thumbnail", limits, source, info)


def make_renditions(
    source: Path,
    out: Path,
    info: VideoInfo,
    renditions: Sequence[Rendition],
    *,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> list[Path]:
    """Make every rendition in one ffmpeg run: one decode, ``split`` into one scaler and encoder per rendition,
    the audio encoded once and muxed into each MP4 (``tee``). Returns the files, in ``renditions`` order.

    The caller decides which renditions are worth making (never an upscale: see ``VideoProfile.renditions_for``).
    """
    if not renditions:
        return []
    paths = [out / rung.file_name for rung in renditions]
    if any(char in str(out) for char in _TEE_SPECIAL):
        raise ValueError(f"the work directory's path must not contain any of {_TEE_SPECIAL!r} (tee muxer syntax)")
    graph, labels = _rendition_graph(info, renditions)
    if h264_available():
        codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]
    else:
        codec = ["-c:v", "mpeg4", "-q:v", "5"]
    audio = ["-map", "0:a:0", "-c:a", "aac", "-b:a", "128k"] if info.has_audio else []
    # tee: each slave takes its own video stream and the one audio stream ("a" selects it when there is one).
    slaves = "|".join(
        f"[select=\\'v:{index}{',a' if info.has_audio else ''}\\':f=mp4:movflags=+faststart]{path}"
        for index, path in enumerate(paths)
    )
    args = [
        *_EXIT_ON_ERROR,
        *input_args(source, limits),
        "-filter_complex",
        graph,
        *(arg for label in labels for arg in ("-map", f"[{label}]")),
        *audio,
        *codec,
        "-pix_fmt",
        "yuv420p",
        "-threads",
        str(limits.ffmpeg_threads),
        "-f",
        "tee",
        "-y",
        slaves,
    ]
    result = _run_limited(args, timeout=limits.time_limit(info.duration), limits=limits, what="renditions")
    if not all(_wrote(path, result) for path in paths):
        _raise_for_failure(result, "renditions", limits, source, info)
    return paths


def _rendition_graph(info: VideoInfo, renditions: Sequence[Rendition]) -> tuple[str, list[str]]:
    """The filter graph that decodes once and scales once per rendition; returns it and its output labels."""
    portrait = info.width < info.height
    labels = [f"v{index}" for index in range(len(renditions))]
    # -2 = "keep the aspect ratio, round to an even number" (yuv420p needs even dimensions).
    scales = [f"scale={rung.short_side}:-2" if portrait else f"scale=-2:{rung.short_side}" for rung in renditions]
    if len(renditions) == 1:
        return f"[0:v:0]{scales[0]},setsar=1[{labels[0]}]", labels
    branches = "".join(f"[s{index}]" for index in range(len(renditions)))
    chains = ";".join(f"[s{index}]{scale},setsar=1[v{index}]" for index, scale in enumerate(scales))
    return f"[0:v:0]split={len(renditions)}{branches};{chains}", labels


def _run_limited(
    args: Sequence[str], *, timeout: float, limits: MediaLimits, what: str
) -> subprocess.CompletedProcess[str]:
    """``run_ffmpeg`` under ``limits``' memory ceiling; running out of time is the input's fault (permanent)."""
    try:
        return run_ffmpeg(args, timeout=timeout, memory_bytes=limits.ffmpeg_memory_bytes)
    except FfmpegTimeoutError as error:
        raise ResourceCeilingError(
            f"ffmpeg did not finish the {what} within {error.timeout:.0f} s (MediaLimits time ceiling)",
            reason="time_limit",
        ) from error


def _wrote(dest: Path, result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0 and dest.is_file() and dest.stat().st_size > 0


def _raise_for_failure(
    result: subprocess.CompletedProcess[str],
    what: str,
    limits: MediaLimits,
    source: Path,
    info: VideoInfo | None = None,
) -> None:
    """Raise what a failed ffmpeg run means: transient for the environment's failures, permanent for the input's.

    Under RLIMIT_AS a decoder often reports a failed allocation as "no frame" / "Invalid data", so a decode failure
    of frames whose estimated need is at least half the ceiling counts as hitting the ceiling.
    """
    stderr = result.stderr
    tail = _tail(stderr, source)
    code = result.returncode
    killed_by = signal.Signals(-code) if code < 0 and -code in signal.Signals.__members__.values() else None
    if killed_by in _EXTERNAL_SIGNALS or any(marker in stderr for marker in _ENVIRONMENT_MARKERS):
        raise FfmpegError(f"ffmpeg failed to make the {what}", returncode=code, stderr_tail=tail)
    ceiling = limits.ffmpeg_memory_bytes
    near_ceiling = ceiling is not None and info is not None and decoding_memory_estimate(info, limits) * 2 >= ceiling
    if ceiling is not None and (
        near_ceiling
        or any(marker in stderr for marker in _OUT_OF_MEMORY_MARKERS)
        or killed_by in _ALLOCATION_CRASH_SIGNALS
    ):
        raise ResourceCeilingError(
            f"ffmpeg needed more than its {ceiling // MIB} MiB memory ceiling for the {what}: {tail}",
            reason="memory_limit",
        )
    raise UndecodableError(f"ffmpeg could not decode this video ({what}, exit code {code}): {tail}")


def _scrub(text: str, *paths: Path) -> str:
    """``text`` without the local work directory (records and logs name the S3 object, never /tmp paths)."""
    for path in paths:
        text = text.replace(f"file:{path}", "<upload>").replace(str(path.parent), "<workdir>")
    return text


def _tail(stderr: str, *paths: Path, lines: int = 3) -> str:
    return _scrub(" | ".join(line.strip() for line in stderr.strip().splitlines()[-lines:]), *paths)
