"""How much of the machine one upload may use: the limits every ffmpeg run and every probe is held to.

Uploads are untrusted input. A 190 KB file can declare 8000x8000 frames that decode to about 500 MB each run,
a header can declare ten hours of a two-frame clip, and a container can hold hundreds of streams. So:

- the probe's findings are checked against the ``max_*`` fields before anything is decoded
  (:func:`sqs_decoupling.video.ffmpeg.check_limits`), a breach is a permanent failure naming the limit;
- every ffmpeg process runs with at most ``ffmpeg_threads`` threads and a hard address-space ceiling of
  ``ffmpeg_memory_bytes`` (``RLIMIT_AS``, set in the child), and is stopped after
  ``time_base_seconds + time_per_media_second x duration``; hitting either ceiling is a permanent failure too.
  Keep the consumer's own deadline (the Lambda timeout, the worker's visibility heartbeats) above these, or the
  consumer is stopped first and the message is retried instead of recorded.

The defaults fit both consumers as shipped:

- Lambda, 2,048 MB: the handler's Python process (about 250 MB) plus one ffmpeg at a time, at most 1,536 MiB of
  address space (its resident memory is always lower) = under 1.8 GB.
- Worker on a c7g.large (4 GiB, 2 vCPUs) at concurrency 2: two ffmpeg processes at 1,536 MiB each plus the worker
  (about 150 MB) and the OS = under 3.6 GiB.

Measured here (``MALLOC_ARENA_MAX=2``): a 1080p source to 720p + 480p in one run peaks at about 800 MB of address
space (220 MB resident). A machine with more memory can raise the ceiling; one with less should lower
``ffmpeg_threads`` and the frame limits with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

MIB: Final = 1024 * 1024
MIN_MEMORY_BYTES: Final = 128 * MIB

DEFAULT_MAX_VIDEO_BYTES: Final = 200 * MIB
"""The largest upload a consumer accepts unless configured otherwise (200 MiB): cdk.json's ``max_video_mb``, the
Lambda's ``MAX_VIDEO_BYTES``, the worker's ``--max-video-bytes`` / ``WORKER_MAX_VIDEO_BYTES``. It fits the Lambda's
/tmp as the stack sizes it (3 x the video: source, outputs, scratch); a worker on a bigger disk can take more."""
MAX_VIDEO_BYTES: Final = 10_000 * MIB
"""The most ``max_video_mb`` / ``MAX_VIDEO_BYTES`` may be for a consumer the stacks deploy (10,000 MiB): Lambda's /tmp
holds at most 10,240 MB, and the fleet's instances have a 30 GiB root volume."""
MAX_S3_OBJECT_BYTES: Final = 5 * 1024 * 1024 * MIB
"""S3's largest object (5 TiB): the most a worker run outside the stacks (on premises, on its own disk) accepts."""


@dataclass(frozen=True)
class MediaLimits:
    """Limits for one upload. Every field has a default; pass only what you change.

    ``max_width`` / ``max_height``: largest displayed frame side (default 4096: DCI 4K either way up).
    ``max_pixels``: largest frame area (default 4096 x 2304 = 9,437,184: 4K UHD and DCI 4K fit, 8K does not).
    ``max_fps``: highest frame rate (default 240).
    ``max_duration_seconds``: longest declared duration (default 7,200 = 2 h).
    ``max_streams``: most streams of any kind in the container (default 16).
    ``ffmpeg_threads``: threads per ffmpeg process, decoding and encoding (default 2, a c7g.large's vCPUs).
    ``ffmpeg_memory_bytes``: address-space ceiling per ffmpeg process (default 1,536 MiB); ``None`` = no ceiling.
    ``time_base_seconds`` + ``time_per_media_second`` x duration: wall-time ceiling per ffmpeg run (default
    30 s + 10 s per second of video, so a 2 h video may take 20 h; the probe and the thumbnail, which decode a few
    frames, get ``time_base_seconds`` only, so the Lambda's probe + thumbnail end within its 120 s timeout).
    """

    max_width: int = 4096
    max_height: int = 4096
    max_pixels: int = 4096 * 2304
    max_fps: float = 240.0
    max_duration_seconds: float = 7200.0
    max_streams: int = 16
    ffmpeg_threads: int = 2
    ffmpeg_memory_bytes: int | None = 1536 * MIB
    time_base_seconds: float = 30.0
    time_per_media_second: float = 10.0

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be > 0 (got {getattr(self, name)})"
            for name in (
                "max_width",
                "max_height",
                "max_pixels",
                "max_fps",
                "max_duration_seconds",
                "max_streams",
                "ffmpeg_threads",
                "time_base_seconds",
            )
            if getattr(self, name) <= 0
        ]
        if self.time_per_media_second < 0:
            problems.append(f"time_per_media_second must be >= 0 (got {self.time_per_media_second})")
        if self.ffmpeg_memory_bytes is not None and self.ffmpeg_memory_bytes < MIN_MEMORY_BYTES:
            problems.append(
                f"ffmpeg_memory_bytes must be None or >= {MIN_MEMORY_BYTES} (128 MiB; got {self.ffmpeg_memory_bytes}):"
                " below that every input fails"
            )
        if problems:
            raise ValueError("MediaLimits: " + "; ".join(problems))

    def time_limit(self, duration: float | None) -> float:
        """Wall-time ceiling in seconds for a run that decodes ``duration`` seconds of video (None = unknown)."""
        return self.time_base_seconds + self.time_per_media_second * self._media_seconds(duration)

    def within(self, seconds: float, duration: float | None = None) -> MediaLimits:
        """These limits, with every run (the probe, the thumbnail, a ``duration`` s rendition run) ending within
        ``seconds`` (> 0): what a consumer gives an input when its own deadline is nearer than the media ceiling.
        Unchanged when they already fit."""
        if seconds <= 0:
            raise ValueError(f"MediaLimits.within needs a positive number of seconds, got {seconds}")
        if self.time_limit(duration) <= seconds:
            return self
        base = min(self.time_base_seconds, seconds)
        media_seconds = self._media_seconds(duration)
        per_second = (seconds - base) / media_seconds if media_seconds > 0 else 0.0
        return dataclasses.replace(
            self, time_base_seconds=base, time_per_media_second=min(self.time_per_media_second, per_second)
        )

    def _media_seconds(self, duration: float | None) -> float:
        return self.max_duration_seconds if duration is None else min(duration, self.max_duration_seconds)


DEFAULT_LIMITS: Final = MediaLimits()

# How each field travels in a consumer's environment (the worker prefixes the names with WORKER_). The memory
# ceiling travels in MiB, as Lambda's memory size and instance types are given; "unlimited" means no ceiling.
LIMIT_VARIABLES: Final[Mapping[str, str]] = {
    "max_width": "MAX_WIDTH",
    "max_height": "MAX_HEIGHT",
    "max_pixels": "MAX_PIXELS",
    "max_fps": "MAX_FPS",
    "max_duration_seconds": "MAX_DURATION_SECONDS",
    "max_streams": "MAX_STREAMS",
    "ffmpeg_threads": "FFMPEG_THREADS",
    "ffmpeg_memory_bytes": "FFMPEG_MEMORY_MIB",
    "time_base_seconds": "FFMPEG_TIME_BASE_SECONDS",
    "time_per_media_second": "FFMPEG_TIME_PER_MEDIA_SECOND",
}
UNLIMITED: Final = "unlimited"


class LimitSettingError(ValueError):
    """An environment variable holds a value no :class:`MediaLimits` field accepts; the message names it."""


def limits_environment(limits: MediaLimits, prefix: str = "") -> dict[str, str]:
    """``limits`` as environment variables (every field), the inverse of :func:`limits_from_environment`."""
    environment = {}
    for field, name in LIMIT_VARIABLES.items():
        value = getattr(limits, field)
        if field == "ffmpeg_memory_bytes":
            value = UNLIMITED if value is None else value // MIB
        environment[prefix + name] = str(value)
    return environment


def limits_from_environment(environ: Mapping[str, str], prefix: str = "") -> MediaLimits:
    """The limits set in ``environ`` (unset or empty variables keep their default); raises
    :class:`LimitSettingError` naming the variable for a value that is not a number or out of range."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(MediaLimits):
        name = prefix + LIMIT_VARIABLES[field.name]
        text = environ.get(name, "").strip()
        if not text:
            continue
        try:
            values[field.name] = _parse_limit(field.name, text)
            dataclasses.replace(DEFAULT_LIMITS, **{field.name: values[field.name]})  # checked one at a time
        except ValueError as error:
            raise LimitSettingError(f"{name}={text!r} is not allowed: {error}") from None
    return dataclasses.replace(DEFAULT_LIMITS, **values)


def _parse_limit(field: str, text: str) -> int | float | None:
    if field == "ffmpeg_memory_bytes":
        return None if text.lower() == UNLIMITED else int(text) * MIB
    if field in ("max_fps", "max_duration_seconds", "time_base_seconds", "time_per_media_second"):
        return float(text)
    return int(text)
