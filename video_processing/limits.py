"""How much of the machine one upload may use: the limits every ffmpeg run and every probe is held to.

Uploads are untrusted input. A 190 KB file can declare 8000x8000 frames that decode to about 500 MB each run,
a header can declare ten hours of a two-frame clip, and a container can hold hundreds of streams. So:

- the probe's findings are checked against the ``max_*`` fields before anything is decoded
  (:func:`video_processing.ffmpeg.check_limits`), a breach is a permanent failure naming the limit;
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

from dataclasses import dataclass
from typing import Final

MIB: Final = 1024 * 1024
MIN_MEMORY_BYTES: Final = 128 * MIB


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
        media_seconds = self.max_duration_seconds if duration is None else min(duration, self.max_duration_seconds)
        return self.time_base_seconds + self.time_per_media_second * media_seconds


DEFAULT_LIMITS: Final = MediaLimits()
