"""Thin, typed wrappers around the static ffmpeg that ships inside the ``imageio-ffmpeg`` wheel.

There is no ffprobe in that wheel, and what ``ffmpeg -i`` prints for people cannot be trusted: it includes the
file's tags, and a tag can hold any text, newlines and fake ``Stream #0:0: Video: ...`` or ``Duration:`` lines
included. So ``probe`` reads only what ffmpeg writes in machine-readable form, where tags never go: the
``framecrc`` muxer's stream header (media type, codec id, coded size) and one line per packet (timestamps) of a
stream copy, and the execution graph ffmpeg writes as JSON (demuxer name, and the frame size after the decoder
and the automatic rotation). Every run is ``-loglevel error``: ffmpeg never prints the tags at all, so they can
neither fill the consumer's memory nor be mistaken for an error.
Every call goes through ``run_ffmpeg``: one place that starts ffmpeg, with its memory ceiling, its timeout and a
bounded capture of what it prints, and one place tests can spy on.

Failures are sorted by cause. The input's fault (ffmpeg cannot decode it, or it needs more memory or time than
:class:`~sqs_decoupling.contracts.media.MediaLimits` allow) is a ``PermanentJobError`` with a reason; only the
environment's (disk full, output not writable, ffmpeg killed from outside) is a transient ``FfmpegError``.
Only ffmpeg's exit status and its error lines, matched at the end of a line, sort them; never a file's tags.
Messages never contain the local paths of the work directory.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import imageio_ffmpeg

from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MIB, MediaLimits
from sqs_decoupling.contracts.profiles import DEFAULT_THUMBNAIL, Rendition, Thumbnail
from sqs_decoupling.video.errors import (
    FfmpegError,
    FfmpegTimeoutError,
    InputLimitError,
    NotAVideoError,
    ResourceCeilingError,
    UndecodableError,
)
from sqs_decoupling.video.subprocesses import children

# Demuxers ffmpeg may use on an upload. An allow-list keeps ffmpeg from treating a text file as ANSI art
# (the `tty` demuxer) or following playlists (`hls`, `concat`) that point at other files or URLs.
ALLOWED_CONTAINERS = "mov,matroska,webm,avi,mpegts,flv,mpeg,ogg,asf"

PROBE_TIMEOUT_S = 30.0
# Clips shorter than this give their first frame: a seek into them may land past their only frames.
THUMBNAIL_MIN_SEEK_DURATION_S = 1.0

# Failures of the machine, not of the input: retrying elsewhere or later can succeed. ffmpeg ends its error lines
# with the system's error text (": No space left on device", "(No space left on device)"); only that position counts.
_ENVIRONMENT_ERRORS = (
    "No space left on device",
    "Read-only file system",
    "Permission denied",
    "No such file or directory",
    "Too many open files",
)
_OUT_OF_MEMORY_ERRORS = ("Cannot allocate memory", "Out of memory", "out of memory")
# What ffmpeg prints for a map of ours that finds no stream: the input has no video stream (cover art excluded).
_NO_STREAM_RE = re.compile(r"^Stream map '.*' matches no streams\.$", re.MULTILINE)
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

# The framecrc muxer's header: "#media_type 0: video", "#codec_id 0: h264", "#dimensions 0: 640x480",
# "#tb 0: 1/12800"; then one line per packet: "stream, dts, pts, duration, size, checksum[, flags, side data]".
_HEADER_RE = re.compile(r"^#(?P<key>tb|media_type|codec_id|dimensions) (?P<stream>\d+): (?P<value>\S+)$")
_FRACTION_RE = re.compile(r"^(?P<num>\d+)/(?P<den>\d+)$")
_DIMENSIONS_RE = re.compile(r"^(?P<w>\d+)x(?P<h>\d+)$")
# No timestamp (AV_NOPTS_VALUE), as framecrc prints it.
_NO_TIMESTAMP = -(2**63)


@dataclass(frozen=True)
class VideoInfo:
    """What the probe found, from the packets themselves: ``duration`` is the time the packets of all streams span,
    ``fps`` the first video stream's packets per second over its span. ``width`` x ``height`` is the displayed size
    (rotation applied); ``rotation`` is the turn the player applies: 0, 180, or 90 for a quarter turn either way
    (ffmpeg's machine-readable output does not say which way). ``streams`` counts every stream in the container
    (video, audio, subtitles, data)."""

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
    args: Sequence[str],
    *,
    timeout: float,
    memory_bytes: int | None = None,
    on_stdout_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg with ``args``, at most ``timeout`` s (``FfmpegTimeoutError``) and, when ``memory_bytes`` is set,
    with that address-space ceiling (``RLIMIT_AS``). A non-zero exit is left to the caller.

    ffmpeg prints errors only (``-loglevel error``: never the file's tags), and of what it prints the first and last
    few KiB are kept (:class:`~sqs_decoupling.video.subprocesses.BoundedOutput`). ``on_stdout_line`` receives each line
    of stdout instead, for output too long to keep.
    """
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    if memory_bytes is not None:
        # The ceiling is set in the child by the shell's ulimit right before exec: unlike preexec_fn, this is safe
        # in the worker's threads. ffmpeg keeps the pid (exec), so signals and timeouts reach ffmpeg itself.
        command = ["/bin/sh", "-c", f'ulimit -v {memory_bytes // 1024} && exec "$0" "$@"', *command]
    try:
        # In its own session (see sqs_decoupling.video.subprocesses): a signal to the consumer's process group
        # must not kill a transcode the worker is still draining.
        return children.run(command, timeout=timeout, env=_child_environment(), on_stdout_line=on_stdout_line)
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
    encoders: list[str] = []
    run_ffmpeg(["-encoders"], timeout=PROBE_TIMEOUT_S, on_stdout_line=encoders.append)
    return any("libx264" in line.split() for line in encoders)


def probe(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Describe the first video stream of ``path`` (cover art excluded); ``NotAVideoError`` when there is none.

    Two ffmpeg runs under the memory ceiling of ``limits``, each read from machine-readable output only (see the
    module docstring): a stream copy of every packet, which decodes nothing, gives the streams, codec, coded frame
    size, duration and frame rate; then, when that frame size is within the limits whatever the rotation, the
    first frame is decoded to learn the size a viewer sees.
    """
    timeout = min(PROBE_TIMEOUT_S, limits.time_base_seconds)
    with tempfile.TemporaryDirectory(prefix="probe-") as scratch:
        graph_file = Path(scratch) / "graph.json"
        scan = _PacketScan()
        result = _run_limited(
            [
                *input_args(path, limits),
                *("-map", "0", "-c", "copy", "-f", "framecrc", "pipe:1"),
                # A second output of the first video stream that is not cover art: the graph says which it is.
                *("-map", "0:V:0", "-c", "copy", "-f", "null", "-"),
                *_graph_args(graph_file),
            ],
            timeout=timeout,
            limits=limits,
            what="probe",
            on_stdout_line=scan.add,
        )
        if result.returncode != 0 or not graph_file.is_file():
            _raise_for_unreadable(result, limits, path)
        graph = json.loads(graph_file.read_text())
        video_index = _copied_video_stream(graph)
        video = scan.streams.get(video_index)
        if video is None or video.media_type != "video" or video.size is None:
            raise NotAVideoError("the file has no video stream with a frame size")
        coded_width, coded_height = video.size
        width, height, rotation = coded_width, coded_height, 0
        if _fits_whatever_the_rotation(coded_width, coded_height, limits):
            width, height, rotation = _displayed_frame(path, limits, graph_file, timeout)
    demuxer = str(graph["inputfiles"][0]["demuxer_name"])
    return VideoInfo(
        duration=scan.duration(),
        width=width,
        height=height,
        codec=video.codec,
        fps=video.rate(),
        container=demuxer,
        has_audio=any(stream.media_type == "audio" for stream in scan.streams.values()),
        rotation=rotation,
        streams=len(scan.streams),
    )


@dataclass
class _Stream:
    """One stream as the framecrc muxer describes it, and the span of its packets (in its time base)."""

    media_type: str = ""
    codec: str = ""
    size: tuple[int, int] | None = None
    time_base: float = 0.0
    packets: int = 0
    first: int | None = None
    end: int | None = None

    def seconds(self) -> float:
        if self.first is None or self.end is None:
            return 0.0
        return max(0, self.end - max(self.first, 0)) * self.time_base

    def rate(self) -> float | None:
        """Packets per second over the span (a video stream's packets are its frames); None without a span."""
        seconds = self.seconds()
        return round(self.packets / seconds, 3) if seconds > 0 else None


@dataclass
class _PacketScan:
    """Reads ``-f framecrc`` output line by line, keeping per stream its header facts and its packets' span."""

    streams: dict[int, _Stream] = field(default_factory=dict)

    def add(self, line: str) -> None:
        if line.startswith("#"):
            if header := _HEADER_RE.match(line):
                self._header(self.streams.setdefault(int(header["stream"]), _Stream()), header["key"], header["value"])
            return
        fields = line.split(",", 5)
        if len(fields) < 5:
            return
        stream = self.streams.get(int(fields[0]))
        pts, duration = int(fields[2]), int(fields[3])
        if stream is None or pts == _NO_TIMESTAMP:
            return
        stream.packets += 1
        stream.first = pts if stream.first is None else min(stream.first, pts)
        end = pts + max(duration, 0)
        stream.end = end if stream.end is None else max(stream.end, end)

    @staticmethod
    def _header(stream: _Stream, key: str, value: str) -> None:
        if key == "media_type":
            stream.media_type = value
        elif key == "codec_id":
            stream.codec = value
        elif key == "dimensions" and (size := _DIMENSIONS_RE.match(value)):
            stream.size = (int(size["w"]), int(size["h"]))
        elif key == "tb" and (fraction := _FRACTION_RE.match(value)) and int(fraction["den"]):
            stream.time_base = int(fraction["num"]) / int(fraction["den"])

    def duration(self) -> float | None:
        """Seconds from the earliest packet (not before 0) to the end of the last, of all streams."""
        spans = [stream.seconds() for stream in self.streams.values() if stream.packets]
        return round(max(spans), 3) if spans and max(spans) > 0 else None


def _graph_args(graph_file: Path) -> list[str]:
    return ["-print_graphs_format", "json", "-print_graphs_file", str(graph_file)]


def _copied_video_stream(graph: dict[str, Any]) -> int:
    """The input stream index the probe's second output (``-map 0:V:0``) copies."""
    second_output = next(output for output in graph["outputfiles"] if str(output["index"]) == "1")
    destination = second_output["outputstreams"][0]["id"]
    source = next(link["source_stream_id"] for link in graph["streamlinks"] if link["dest_stream_id"] == destination)
    return int(str(source).rsplit("_", 1)[1])


def _fits_whatever_the_rotation(width: int, height: int, limits: MediaLimits) -> bool:
    """Whether a frame coded ``width`` x ``height`` passes the frame-size limits turned some way, so that decoding
    one is worth it; one that does not fails :func:`check_limits` either way up."""
    sides, allowed = sorted((width, height)), sorted((limits.max_width, limits.max_height))
    ceiling = limits.ffmpeg_memory_bytes
    return (
        sides[0] <= allowed[0]
        and sides[1] <= allowed[1]
        and width * height <= limits.max_pixels
        and (ceiling is None or _frames_memory(width, height, limits) <= ceiling)
    )


def _displayed_frame(path: Path, limits: MediaLimits, graph_file: Path, timeout: float) -> tuple[int, int, int]:
    """Decode the first frame of the first video stream; return its displayed width, height and rotation, read
    from the filter graph ffmpeg builds to turn it (``transpose`` for a quarter turn, ``hflip`` + ``vflip`` for
    half a turn)."""
    graph_file.unlink(missing_ok=True)
    result = _run_limited(
        [
            *_EXIT_ON_ERROR,
            *input_args(path, limits),
            "-map",
            "0:V:0",
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
            *_graph_args(graph_file),
        ],
        timeout=timeout,
        limits=limits,
        what="probe",
    )
    graphs = json.loads(graph_file.read_text())["graphs"] if graph_file.is_file() else []
    # A graph that never got a frame is listed without its filters.
    filters = [entry for graph in graphs for entry in graph.get("filters", [])]
    sink = next((entry for entry in filters if entry.get("filter_name") == "buffersink"), None)
    if result.returncode != 0 or sink is None or not sink.get("filter_inputs"):
        _raise_for_failure(result, "probe", limits, path)
        raise UndecodableError("ffmpeg could not decode the first frame of the video stream")
    names = {entry["filter_name"] for entry in filters}
    rotation = 90 if "transpose" in names else 180 if {"hflip", "vflip"} <= names else 0
    shown = sink["filter_inputs"][0]
    return int(shown["width"]), int(shown["height"]), rotation


def _raise_for_unreadable(result: subprocess.CompletedProcess[str], limits: MediaLimits, path: Path) -> NoReturn:
    """Raise what a failed probe scan means: no video stream, the machine's failure, or not a readable video."""
    if _NO_STREAM_RE.search(result.stderr):
        raise NotAVideoError("the file has no video stream")
    _raise_if_environment(result, "probe", path)
    if limits.ffmpeg_memory_bytes is not None and _ran_out_of_memory(result):
        raise ResourceCeilingError(
            f"ffmpeg needed more than its {limits.ffmpeg_memory_bytes // MIB} MiB memory ceiling to read the file",
            reason="memory_limit",
        )
    raise NotAVideoError(f"ffmpeg cannot read it as a video: {_tail(result.stderr, path)}")


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
    return _frames_memory(info.width, info.height, limits)


def _frames_memory(width: int, height: int, limits: MediaLimits) -> int:
    frame_bytes = width * height * 3 // 2
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
        # The upload's tags stay out of our outputs: they can hold anything (megabytes of newlines, fake lines).
        *("-map_metadata", "-1"),
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
    args: Sequence[str],
    *,
    timeout: float,
    limits: MediaLimits,
    what: str,
    on_stdout_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``run_ffmpeg`` under ``limits``' memory ceiling; running out of time is the input's fault (permanent)."""
    try:
        return run_ffmpeg(args, timeout=timeout, memory_bytes=limits.ffmpeg_memory_bytes, on_stdout_line=on_stdout_line)
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
    _raise_if_environment(result, what, source)
    code = result.returncode
    tail = _tail(result.stderr, source)
    ceiling = limits.ffmpeg_memory_bytes
    near_ceiling = ceiling is not None and info is not None and decoding_memory_estimate(info, limits) * 2 >= ceiling
    if ceiling is not None and (near_ceiling or _ran_out_of_memory(result)):
        raise ResourceCeilingError(
            f"ffmpeg needed more than its {ceiling // MIB} MiB memory ceiling for the {what}: {tail}",
            reason="memory_limit",
        )
    raise UndecodableError(f"ffmpeg could not decode this video ({what}, exit code {code}): {tail}")


def _raise_if_environment(result: subprocess.CompletedProcess[str], what: str, source: Path) -> None:
    """``FfmpegError`` (transient) when ffmpeg was stopped from outside or an error line names a failure of the
    machine (disk full, a file it may not write)."""
    if _killed_by(result) in _EXTERNAL_SIGNALS or _error_lines_end_with(result.stderr, _ENVIRONMENT_ERRORS):
        raise FfmpegError(
            f"ffmpeg failed to make the {what}", returncode=result.returncode, stderr_tail=_tail(result.stderr, source)
        )


def _ran_out_of_memory(result: subprocess.CompletedProcess[str]) -> bool:
    return _killed_by(result) in _ALLOCATION_CRASH_SIGNALS or _error_lines_end_with(
        result.stderr, _OUT_OF_MEMORY_ERRORS
    )


def _killed_by(result: subprocess.CompletedProcess[str]) -> signal.Signals | None:
    code = result.returncode
    return signal.Signals(-code) if code < 0 and -code in signal.Signals.__members__.values() else None


def _error_lines_end_with(stderr: str, errors: Sequence[str]) -> bool:
    """Whether a line ends with one of ``errors`` the way ffmpeg appends a system error to its own message."""
    return any(
        line.rstrip().endswith((f": {error}", f"({error})", f": {error}."))
        for line in stderr.splitlines()
        for error in errors
    )


def _scrub(text: str, *paths: Path) -> str:
    """``text`` without the local work directory (records and logs name the S3 object, never /tmp paths)."""
    for path in paths:
        text = text.replace(f"file:{path}", "<upload>").replace(str(path.parent), "<workdir>")
    return text


def _tail(stderr: str, *paths: Path, lines: int = 3) -> str:
    return _scrub(" | ".join(line.strip() for line in stderr.strip().splitlines()[-lines:]), *paths)
