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
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


@dataclass
class FakeLambdaContext:
    """What Powertools' ``inject_lambda_context`` reads from a real context."""

    function_name: str = "video-processor-local"
    memory_limit_in_mb: int = 2048
    function_version: str = "$LATEST"
    timeout_seconds: int = 120
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class PollerStats:
    """What the poller did: receives, invocations, deletes, reported failures and SQS requests per operation."""

    counts: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    batch_sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[name] += amount


class EventSourcePoller:
    """Drains ``queue_url`` into ``handler`` the way a Lambda SQS event source mapping does.

    Test seams: ``lose_delete(message_id, receive_count)`` -> True skips that message's delete as if the
    DeleteMessageBatch call was lost (SQS redelivers it: a duplicate); ``shuffle`` reorders every batch.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        region: str = "us-east-1",
        lose_delete: Callable[[str, int], bool] | None = None,
        shuffle: random.Random | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError(f"batch_size must be 1..10 for an SQS event source, got {batch_size}")
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait_seconds = wait_seconds
        self._region = region
        self._lose_delete = lose_delete
        self._shuffle = shuffle
        self.stats = PollerStats()
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        service = sqs.meta.service_model.service_id.hyphenize()

        def count(event_name: str, **_: Any) -> None:
            with self.stats.lock:
                self.stats.requests[event_name.rsplit(".", 1)[-1]] += 1

        sqs.meta.events.register(f"before-send.{service}", count, unique_id=f"poller-{id(self)}")

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set. Errors talking to SQS are counted and retried, like the mapping does."""
        while not stop.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError):
                self.stats.add("sqs_errors")
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
        self.stats.add("received", len(messages))
        with self.stats.lock:
            self.stats.batch_sizes.append(len(messages))
        event = {"Records": [self._record(m) for m in messages]}
        self.stats.add("invocations")
        try:
            response = self._handler(event, FakeLambdaContext())
        except Exception:
            # An invocation error: the mapping deletes nothing; the whole batch comes back after the timeout.
            self.stats.add("invocation_errors")
            return len(messages)
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        self.stats.add("reported_failures", len(failed))
        to_delete = []
        for message in messages:
            if message["MessageId"] in failed:
                continue
            receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if self._lose_delete is not None and self._lose_delete(message["MessageId"], receive_count):
                self.stats.add("deletes_lost")
                continue
            to_delete.append(message)
        self._delete(to_delete)
        return len(messages)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.stats.add("deleted", len(response.get("Successful", [])))
            self.stats.add("delete_failures", len(response.get("Failed", [])))

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
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
            "awsRegion": self._region,
        }
