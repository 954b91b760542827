"""Profiles as data: what a consumer makes from each video, by name.

A profile is a thumbnail setting and a rendition ladder. The Lambda runs ``preview`` (metadata + thumbnail), the worker
``transcode`` (those + an MP4 per rung of the ladder that is not an upscale). To add a profile, add an entry to
:data:`PROFILES`; each profile's outputs live under their own prefix (``processed/<key>/<version>/<profile>/``), so
consumers with different profiles can share an output bucket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from sqs_decoupling.contracts.media import MediaLimits

METADATA_NAME: Final = "metadata.json"
THUMBNAIL_NAME: Final = "thumbnail.jpg"
MANIFEST_NAME: Final = "manifest.json"
FAILURE_NAME: Final = "failure.json"
PROFILE_SUFFIX_RESERVE_BYTES: Final = 64
"""Room every output key keeps for "<profile>/<file name>" after the object's folder (a profile checks that its
names fit; ``sqs_decoupling.video.jobs`` keeps the room when it builds the folder)."""


@dataclass(frozen=True)
class Thumbnail:
    """One JPEG frame, at most ``max_width`` wide (never upscaled), taken ``at_seconds`` in (default 1 s) or at a
    quarter of the clip if that is earlier; clips too short to seek in give their first frame."""

    max_width: int = 320
    at_seconds: float = 1.0


DEFAULT_THUMBNAIL: Final = Thumbnail()


@dataclass(frozen=True)
class Rendition:
    """An H.264/AAC MP4 whose short side is ``short_side`` pixels (720 for 720p), aspect ratio kept."""

    name: str
    short_side: int

    @property
    def file_name(self) -> str:
        return f"{self.name}.mp4"


@dataclass(frozen=True)
class VideoProfile:
    """A named set of outputs: ``metadata.json``, ``thumbnail.jpg`` and one MP4 per rendition in ``ladder``
    (highest first; rungs above the source's short side are skipped, never upscaled)."""

    name: str
    thumbnail: Thumbnail = DEFAULT_THUMBNAIL
    ladder: tuple[Rendition, ...] = ()

    def __post_init__(self) -> None:
        # The name is a folder in every output key, next to "<name>.latest.json".
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"profile name {self.name!r} must match {_NAME_RE.pattern} (it is a folder name)")
        longest = max(len(f"{self.name}/{output}".encode()) for output in (*self.output_names, "x.latest.json"))
        if longest > PROFILE_SUFFIX_RESERVE_BYTES:
            raise ValueError(
                f"profile {self.name!r}: '<profile>/<output name>' is {longest} bytes, above the "
                f"{PROFILE_SUFFIX_RESERVE_BYTES} bytes kept for it in every output key; use shorter names"
            )

    def renditions_for(self, width: int, height: int) -> tuple[Rendition, ...]:
        """The rungs worth making for a ``width`` x ``height`` source (no upscaling)."""
        return tuple(rung for rung in self.ladder if rung.short_side <= min(width, height))

    def time_limit(
        self, limits: MediaLimits, duration: float | None = None, *, width: int | None = None, height: int | None = None
    ) -> float:
        """The longest the runs after the probe may take under ``limits``: the thumbnail, plus the renditions run
        for ``duration`` seconds of video when there is a rung to make (for a ``width`` x ``height`` source; any
        rung when the size is unknown). ``duration`` None: the longest video ``limits`` allow."""
        seconds = limits.time_base_seconds  # the thumbnail
        sized = width is not None and height is not None
        if self.ladder and (not sized or self.renditions_for(width or 0, height or 0)):
            seconds += limits.time_limit(duration)
        return seconds

    def worst_case_seconds(self, limits: MediaLimits) -> float:
        """The longest one input may take under ``limits``: the probe (at most ``time_base_seconds``) and every
        run after it, for the longest video ``limits`` allow. A consumer whose deadline is shorter cannot finish
        every input it accepts."""
        return limits.time_base_seconds + self.time_limit(limits)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Every file name this profile can write under its prefix (the manifest and failure record included)."""
        return (
            METADATA_NAME,
            THUMBNAIL_NAME,
            *(rung.file_name for rung in self.ladder),
            MANIFEST_NAME,
            FAILURE_NAME,
        )


_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class UnknownProfileError(ValueError):
    """A profile name that is not in the registry."""


PROFILES: Final[Mapping[str, VideoProfile]] = MappingProxyType(
    {
        "preview": VideoProfile(name="preview"),
        "transcode": VideoProfile(
            name="transcode", ladder=(Rendition(name="720p", short_side=720), Rendition(name="480p", short_side=480))
        ),
    }
)


def get_profile(profile: str | VideoProfile) -> VideoProfile:
    """The registry's profile called ``profile`` (a ``VideoProfile`` is returned as it is)."""
    if isinstance(profile, VideoProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(
            f"unknown video profile {profile!r}: choose one of {known} (sqs_decoupling.contracts.profiles.PROFILES)"
        ) from None
