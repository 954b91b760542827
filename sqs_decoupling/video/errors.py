"""Errors that tell a consumer what to do with a message.

- ``PermanentJobError``: retrying cannot help. Record the failure and consume the message.
- ``MalformedMessageError``: the body is not something we understand. Never drop it: let it fail until
  maxReceiveCount moves it to the dead-letter queue, where a person can look at it.
- Anything else (``FfmpegError``, botocore errors, timeouts) is transient: leave the message on the queue.
"""

from __future__ import annotations


class PermanentJobError(Exception):
    """The job can never succeed; ``reason`` is a short machine-readable code."""

    reason: str = "permanent"
    # The profile the failure happened in; process_video sets it, record_failure files the record under it.
    profile: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAVideoError(PermanentJobError):
    """The object is not a video we can read (not a container we accept, or no video stream)."""

    reason = "not_a_video"


class TooLargeError(PermanentJobError):
    """The object is larger than the consumer's configured limit."""

    reason = "too_large"


class ObjectGoneError(PermanentJobError):
    """The object (or the version named in the event) no longer exists."""

    reason = "object_gone"


class ObjectReplacedError(ObjectGoneError):
    """The key now holds a different object than the event named (another ETag); its own event covers it."""

    reason = "object_replaced"


class EmptyObjectError(PermanentJobError):
    """The object has zero bytes."""

    reason = "empty_object"


class _ReasonedError(PermanentJobError):
    """A permanent failure whose reason is chosen where it is raised."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InputLimitError(_ReasonedError):
    """The probe shows the input exceeds a configured limit (``MediaLimits``); nothing was decoded.

    ``reason``: ``too_large_frame``, ``too_high_frame_rate``, ``too_long`` or ``too_many_streams``.
    """


class ResourceCeilingError(_ReasonedError):
    """ffmpeg hit (or would hit) a hard ceiling on this input: ``memory_limit`` or ``time_limit``."""


class UndecodableError(PermanentJobError):
    """The input probed as a video, but ffmpeg could not make an output from it (no decodable frame, corrupt data)."""

    reason = "cannot_decode"


class OutputKeyTooLongError(PermanentJobError):
    """The output keys for this job would exceed S3's 1,024-byte key limit even in their short form."""

    reason = "key_too_long"


class OutOfTimeError(_ReasonedError):
    """The input does not fit in the time this delivery has left (a Lambda invocation's remaining time, a worker
    job's share of SQS's 12-hour visibility cap). ``reason`` is the budget's (``too_slow_for_lambda``,
    ``too_long``); the pipeline records it as a permanent failure only when no later delivery can have more time,
    and otherwise leaves the message for a retry."""


class MalformedMessageError(ValueError):
    """The SQS message body is not an S3 event notification we understand."""


class FfmpegError(RuntimeError):
    """ffmpeg failed for a reason outside the input (disk full, output not writable, killed): transient."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str) -> None:
        super().__init__(f"{message} (exit code {returncode}): {stderr_tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class FfmpegTimeoutError(FfmpegError):
    """ffmpeg ran past the wall time it was given and was stopped."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"ffmpeg timed out after {timeout:.0f} s", returncode=None, stderr_tail="")
        self.timeout = timeout
