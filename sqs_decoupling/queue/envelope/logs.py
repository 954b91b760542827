"""What the AWS Encryption SDK logs, made fit for the consumers' JSON logs.

Left alone, the SDK logs at INFO every data key it wraps or unwraps (with the encryption context), logs each KMS
failure with ``logger.exception`` (a multi-line traceback), and on a failed decrypt adds a misleading
``SerializationError: Footer not read`` from closing the half-read stream. The consumers already log one line per
body that cannot be opened, with the reason (:func:`unopenable_body_fields`), so here the SDK keeps WARNING and
above, without tracebacks, and without the closing noise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

SDK_LOGGER_NAME = "aws_encryption_sdk"
# The SDK modules that log; a logger's filters apply only to records made on that logger, not on its children.
_SDK_MODULE_LOGGERS = (
    "aws_encryption_sdk.streaming_client",
    "aws_encryption_sdk.key_providers.base",
    "aws_encryption_sdk.key_providers.kms",
)


_seen = threading.local()


class _WithoutTraceback(logging.Filter):
    """Drops the "Error on closing" follow-up and keeps only the one-line error of the others.

    It also notes the KMS error codes it passes: the SDK logs each KMS failure, then raises a generic "Unable to
    decrypt any data key" without it, so its log is the only place the code (``DisabledException``) survives.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Error on closing":
            return False
        codes: list[str] | None = getattr(_seen, "codes", None)
        if codes is not None and record.exc_info and (code := kms_error_code(record.exc_info[1])):
            codes.append(code)
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


_FILTER = _WithoutTraceback()


def configure_sdk_logging() -> None:
    """Keep the SDK's log at WARNING and above, one line each (idempotent)."""
    logging.getLogger(SDK_LOGGER_NAME).setLevel(logging.WARNING)
    for name in _SDK_MODULE_LOGGERS:
        module_logger = logging.getLogger(name)
        if _FILTER not in module_logger.filters:
            module_logger.addFilter(_FILTER)


@contextmanager
def kms_errors_seen() -> Iterator[list[str]]:
    """Collect, for this thread, the KMS error codes the SDK reports (and swallows) inside the ``with`` block."""
    configure_sdk_logging()
    previous = getattr(_seen, "codes", None)
    codes: list[str] = []
    _seen.codes = codes
    try:
        yield codes
    finally:
        _seen.codes = previous


def kms_error_code(error: BaseException | None) -> str | None:
    """The KMS error code (``DisabledException``, ``AccessDeniedException``...) behind ``error``, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            return str(current.response.get("Error", {}).get("Code")) or None
        current = current.__cause__ or current.__context__
    return None


def unopenable_body_fields(error: BaseException) -> dict[str, Any]:
    """Log fields for a body that cannot be opened: the reason (which names any KMS error code) and its type."""
    return {"reason": str(error), "error_type": type(error).__name__}
