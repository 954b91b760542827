"""SQS batch calls with their partial failures handled: deletes of finished jobs and visibility changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from sqs_decoupling.worker_fleet.worker.counters import Counters
from sqs_decoupling.worker_fleet.worker.job import Message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import BatchResultErrorEntryTypeDef

log = logging.getLogger(__name__)

SQS_BATCH_LIMIT = 10


def chunks(messages: Sequence[Message], size: int = SQS_BATCH_LIMIT) -> list[Sequence[Message]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


class DeleteBatcher:
    """Collects messages whose jobs finished and deletes them ten per DeleteMessageBatch call.

    Only the worker adds messages here, and only for jobs that ended with a JobOutcome. A batch goes out when it
    is full or when its oldest message has waited ``linger_seconds``. Entries that fail on the server side are
    retried with backoff; entries the request itself got wrong (an expired receipt handle) cannot succeed on retry,
    so they are logged: the message will be delivered again and the idempotent job will see it as a duplicate.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        counters: Counters,
        *,
        linger_seconds: float = 0.5,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._counters = counters
        self._linger = linger_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[Message] = []
        self._oldest: float | None = None

    def add(self, message: Message) -> bool:
        """Queue ``message`` for deletion; True when a full batch is waiting (time to flush)."""
        with self._lock:
            if not self._pending:
                self._oldest = self._clock()
            self._pending.append(message)
            return len(self._pending) >= SQS_BATCH_LIMIT

    def due(self) -> bool:
        """Whether a full batch is waiting or the oldest waiting message has lingered long enough."""
        with self._lock:
            if not self._pending or self._oldest is None:
                return False
            return len(self._pending) >= SQS_BATCH_LIMIT or self._clock() - self._oldest >= self._linger

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> None:
        """Delete everything waiting, in full batches first."""
        with self._lock:
            waiting, self._pending, self._oldest = self._pending, [], None
        for batch in chunks(waiting):
            self._delete(batch)

    def _delete(self, batch: Sequence[Message]) -> None:
        remaining = list(batch)
        for attempt in range(1, self._max_attempts + 1):
            failed = self._send(remaining)
            deleted = len(remaining) - len(failed)
            self._counters.add("deleted", deleted)
            retryable = [(m, e) for m, e in failed if not e.get("SenderFault", False)]
            for message, error in failed:
                if error.get("SenderFault", False):
                    self._counters.add("delete_failures")
                    log.error(
                        "delete rejected; the message will be delivered again",
                        extra={"message_id": message.message_id, "error_code": error.get("Code")},
                    )
            remaining = [m for m, _ in retryable]
            if not remaining:
                return
            log.warning("retrying failed deletes", extra={"count": len(remaining), "attempt": attempt})
            time.sleep(self._backoff * 2 ** (attempt - 1))
        self._counters.add("delete_failures", len(remaining))
        for message in remaining:
            log.error("delete failed; the message will be delivered again", extra={"message_id": message.message_id})

    def _send(self, batch: Sequence[Message]) -> list[tuple[Message, BatchResultErrorEntryTypeDef]]:
        """One DeleteMessageBatch call; returns the failed entries (all of them if the call itself failed)."""
        try:
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(batch)],
            )
        except (BotoCoreError, ClientError) as error:
            # botocore already retried throttling and network errors; count the whole batch as retryable.
            log.warning("DeleteMessageBatch failed", extra={"error": str(error)})
            return [(m, {"Id": str(i), "SenderFault": False, "Code": "RequestFailed"}) for i, m in enumerate(batch)]
        return [(batch[int(e["Id"])], e) for e in response.get("Failed", [])]


def change_visibility(
    sqs: SQSClient, queue_url: str, messages: Sequence[Message], timeout_seconds: int
) -> list[tuple[Message, str]]:
    """Set the visibility timeout of ``messages`` (ChangeMessageVisibilityBatch, ten per call).

    Returns (message, error code) for each message whose change failed.
    """
    failures: list[tuple[Message, str]] = []
    for batch in chunks(messages):
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": timeout_seconds}
                    for i, m in enumerate(batch)
                ],
            )
        except (BotoCoreError, ClientError) as error:
            failures.extend((m, type(error).__name__) for m in batch)
            continue
        failures.extend((batch[int(e["Id"])], e.get("Code", "Unknown")) for e in response.get("Failed", []))
    return failures
