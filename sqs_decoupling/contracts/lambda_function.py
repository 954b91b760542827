"""The Lambda video processor's settings contract: each environment variable the handler reads, its default and its
limits. Standard library only.

The stack imports this module to build the function's environment (:meth:`Settings.environment`); the handler
(``sqs_decoupling.lambda_consumer.runtime.handler``) parses that environment once per cold start
(:meth:`Settings.from_environment`). A contract test feeds the synthesized environment through the parser.

Variables:
- ``OUTPUT_BUCKET`` (required): the bucket for outputs and failure records.
- ``MAX_VIDEO_BYTES``: the largest upload processed (default 200 MiB, at most 10,000 MiB:
  ``sqs_decoupling.contracts.media.MAX_VIDEO_BYTES``).
- ``BODY_KEY_ARN`` (optional): the KMS key that opens client-side encrypted bodies.
- ``VIDEO_PROFILE``: a profile of ``sqs_decoupling.contracts.profiles.PROFILES`` (default ``preview``).
- ``MAX_RECEIVE_COUNT``: the queue's maxReceiveCount (default 3, 1..1000). On a message's last delivery, an input
  that does not fit in the invocation's remaining time gets a permanent ``too_slow_for_lambda`` failure record
  instead of a trip to the DLQ. The stack sets it from the queue's own setting.
- The media limits (``FFMPEG_MEMORY_MIB``, ``FFMPEG_TIME_BASE_SECONDS``, ``MAX_WIDTH``, ...): see
  ``sqs_decoupling.contracts.media.LIMIT_VARIABLES``; unset ones keep ``MediaLimits``' defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqs_decoupling.contracts.media import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_VIDEO_BYTES,
    MAX_VIDEO_BYTES,
    MIB,
    MIN_MEMORY_BYTES,
    LimitSettingError,
    MediaLimits,
    limits_environment,
    limits_from_environment,
)
from sqs_decoupling.contracts.profiles import UnknownProfileError, get_profile

OUTPUT_BUCKET_ENV: Final = "OUTPUT_BUCKET"
MAX_VIDEO_BYTES_ENV: Final = "MAX_VIDEO_BYTES"
BODY_KEY_ARN_ENV: Final = "BODY_KEY_ARN"
PROFILE_ENV: Final = "VIDEO_PROFILE"
MAX_RECEIVE_COUNT_ENV: Final = "MAX_RECEIVE_COUNT"

DEFAULT_PROFILE: Final = "preview"
PYTHON_VERSION: Final = "3.14"
"""The Lambda runtime the handler and its wheels are built for (the latest one CDK knows, as cdk-nag wants)."""
# What the function keeps for itself (Python, Powertools, boto3) out of its memory; ffmpeg gets the rest.
HANDLER_MEMORY_MIB: Final = 512
DEFAULT_MAX_RECEIVE_COUNT: Final = 3
MAX_RECEIVE_COUNT_LIMIT: Final = 1000
TIME_MARGIN_SECONDS: Final = 10.0
"""What each record's time budget keeps back from the invocation's remaining time: enough to write a failure
record, remove the record's temporary files and return the batch response before Lambda's timeout."""


class SettingsError(ValueError):
    """An environment variable is missing or holds a value the handler cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """What the handler needs, parsed and checked. Defaults as in the module docstring."""

    output_bucket: str
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES
    body_key_arn: str | None = None
    profile: str = DEFAULT_PROFILE
    limits: MediaLimits = DEFAULT_LIMITS
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT

    def __post_init__(self) -> None:
        if not self.output_bucket:
            raise SettingsError(f"{OUTPUT_BUCKET_ENV} is not set: it names the bucket for outputs and failures.")
        if not 1 <= self.max_video_bytes <= MAX_VIDEO_BYTES:
            raise SettingsError(
                f"{MAX_VIDEO_BYTES_ENV}={self.max_video_bytes} is out of range: allowed 1..{MAX_VIDEO_BYTES} "
                "bytes (Lambda's /tmp holds at most 10,240 MB)."
            )
        try:
            get_profile(self.profile)
        except UnknownProfileError as error:
            raise SettingsError(f"{PROFILE_ENV}: {error}") from None
        if not 1 <= self.max_receive_count <= MAX_RECEIVE_COUNT_LIMIT:
            raise SettingsError(
                f"{MAX_RECEIVE_COUNT_ENV}={self.max_receive_count} is out of range: allowed "
                f"1..{MAX_RECEIVE_COUNT_LIMIT}, the queue's maxReceiveCount."
            )

    def environment(self) -> dict[str, str]:
        """These settings as the function's environment variables (the inverse of :meth:`from_environment`)."""
        environment = {
            OUTPUT_BUCKET_ENV: self.output_bucket,
            MAX_VIDEO_BYTES_ENV: str(self.max_video_bytes),
            PROFILE_ENV: self.profile,
            MAX_RECEIVE_COUNT_ENV: str(self.max_receive_count),
            **limits_environment(self.limits),
        }
        if self.body_key_arn:
            environment[BODY_KEY_ARN_ENV] = self.body_key_arn
        return environment

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Parse ``environ`` (e.g. ``os.environ``); raises :class:`SettingsError` naming the variable at fault."""
        text = environ.get(MAX_VIDEO_BYTES_ENV, "").strip()
        try:
            max_video_bytes = int(text) if text else DEFAULT_MAX_VIDEO_BYTES
        except ValueError:
            raise SettingsError(f"{MAX_VIDEO_BYTES_ENV}={text!r} is not a whole number of bytes.") from None
        count_text = environ.get(MAX_RECEIVE_COUNT_ENV, "").strip()
        try:
            max_receive_count = int(count_text) if count_text else DEFAULT_MAX_RECEIVE_COUNT
        except ValueError:
            raise SettingsError(f"{MAX_RECEIVE_COUNT_ENV}={count_text!r} is not a whole number.") from None
        try:
            limits = limits_from_environment(environ)
        except LimitSettingError as error:
            raise SettingsError(str(error)) from None
        return cls(
            output_bucket=environ.get(OUTPUT_BUCKET_ENV, "").strip(),
            max_video_bytes=max_video_bytes,
            body_key_arn=environ.get(BODY_KEY_ARN_ENV, "").strip() or None,
            profile=environ.get(PROFILE_ENV, "").strip() or DEFAULT_PROFILE,
            limits=limits,
            max_receive_count=max_receive_count,
        )


def ffmpeg_memory_bytes(function_memory_mib: int) -> int:
    """The ffmpeg address-space ceiling for a function of ``function_memory_mib``: its memory less what the
    handler keeps (512 MiB), at least ``MediaLimits``' minimum of 128 MiB."""
    return max(MIN_MEMORY_BYTES, (function_memory_mib - HANDLER_MEMORY_MIB) * MIB)


def ffmpeg_time_base_seconds(function_timeout_seconds: float) -> float:
    """The per-run ffmpeg time ceiling for a function of this timeout: the probe and the thumbnail (one run each)
    must both end, and be recorded, before Lambda stops the function: a quarter of the timeout, at most
    ``MediaLimits``' default."""
    return min(DEFAULT_LIMITS.time_base_seconds, function_timeout_seconds / 4)
