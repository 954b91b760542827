"""A local stand-in for Lambda's SQS event source mapping (moto cannot run Lambda functions without Docker).

Like the mapping: receive up to ``batch_size`` messages, invoke the handler with the SQS event shape Lambda uses,
then delete only the messages the handler did not list in ``batchItemFailures`` (ReportBatchItemFailures on).
A handler that raises has its whole batch retried (nothing is deleted). Failed messages become visible again when
their visibility timeout runs out, and SQS moves them to the DLQ after maxReceiveCount receives.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sqs_decoupling.worker_fleet.worker.batches import SQS_BATCH_LIMIT, DeleteBatcher
from sqs_decoupling.worker_fleet.worker.counters import Counters, count_requests
from sqs_decoupling.worker_fleet.worker.job import Message
from tools.localcloud.server import ACCOUNT, REGION

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


@dataclass
class FakeLambdaContext:
    """What Powertools' ``inject_lambda_context`` and the handler's time budget read from a real context: the
    remaining time counts down from ``timeout_seconds`` as Lambda's does (the poller does not stop a handler that
    overruns it; the handler's own budget keeps it inside)."""

    function_name: str = "video-processor-local"
    memory_limit_in_mb: int = 2048
    function_version: str = "$LATEST"
    timeout_seconds: int = 120
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        return max(0, self.timeout_seconds * 1000 - elapsed_ms)


class EventSourcePoller:
    """Drains ``queue_url`` into ``handler`` the way a Lambda SQS event source mapping does.

    Test seams: ``lose_delete(message_id, receive_count)`` -> True skips that message's delete as if the
    DeleteMessageBatch call was lost (SQS redelivers it: a duplicate); ``shuffle`` reorders every batch.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = SQS_BATCH_LIMIT,
        wait_seconds: int = 1,
        lose_delete: Callable[[str, int], bool] | None = None,
        shuffle: random.Random | None = None,
    ) -> None:
        if not 1 <= batch_size <= SQS_BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{SQS_BATCH_LIMIT} for this poller, got {batch_size}")
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait_seconds = wait_seconds
        self._lose_delete = lose_delete
        self._shuffle = shuffle
        self.counters = Counters()
        """``received``, ``invocations``, ``invocation_errors``, ``reported_failures``, ``deletes_lost``,
        ``sqs_errors``, and (the worker's own batcher) ``deleted`` and ``delete_failures``; requests per
        ``sqs.Operation``."""
        self.batch_sizes: list[int] = []
        """The size of every batch the handler was invoked with, in order."""
        self._lock = threading.Lock()
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # The worker's own request counting and batched deletes: one implementation of each for both consumers.
        # Counting starts here, so the set-up lookup above is not counted as polling.
        count_requests(sqs, self.counters)
        self._deletes = DeleteBatcher(sqs, queue_url, self.counters)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set. Errors talking to SQS are counted and retried, like the mapping does."""
        while not stop.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError):
                self.counters.add("sqs_errors")
                stop.wait(1)

    def poll_once(self) -> int:
        """One receive + invoke + delete cycle; returns how many messages were received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        if self._shuffle is not None:
            self._shuffle.shuffle(messages)
        self.counters.add("received", len(messages))
        with self._lock:
            self.batch_sizes.append(len(messages))
        self.counters.add("invocations")
        try:
            response = self._handler({"Records": [self._record(m) for m in messages]}, FakeLambdaContext())
        except Exception:
            # An invocation error: the mapping deletes nothing; the whole batch comes back after the timeout.
            self.counters.add("invocation_errors")
            return len(messages)
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        self.counters.add("reported_failures", len(failed))
        for message in map(Message.from_sqs, messages):
            if message.message_id in failed:
                continue
            if self._lose_delete is not None and self._lose_delete(message.message_id, message.receive_count):
                self.counters.add("deletes_lost")
                continue
            self._deletes.add(message)
        self._deletes.flush()
        return len(messages)

    def _record(self, message: MessageTypeDef) -> dict[str, Any]:
        """One record of the event Lambda builds for an SQS batch."""
        body = message.get("Body", "")
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", "0"),
                "SenderId": attributes.get("SenderId", "AIDAEXAMPLE"),
                "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
            },
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": REGION,
        }
