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
    """The object (or the version named in the event) no longer exists, or was replaced."""

    reason = "object_gone"


class EmptyObjectError(PermanentJobError):
    """The object has zero bytes."""

    reason = "empty_object"


class MalformedMessageError(ValueError):
    """The SQS message body is not an S3 event notification we understand."""


class FfmpegError(RuntimeError):
    """ffmpeg failed on an input it had already accepted as a video: treated as transient."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str) -> None:
        super().__init__(f"{message} (exit code {returncode}): {stderr_tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail
