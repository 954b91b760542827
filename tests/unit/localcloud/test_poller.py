"""The local event source: Lambda's SQS event source mapping with ReportBatchItemFailures, on the worker's own
batched deletes and request counting."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from tools.localcloud.poller import EventSourcePoller
from tools.localcloud.server import queue_depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def queue_with(sqs: SQSClient, bodies: list[str]) -> str:
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
    return url


def test_only_the_messages_the_handler_did_not_report_are_deleted(sqs: SQSClient) -> None:
    # GIVEN three messages, and a handler that reports the one saying "fail" as a batch item failure
    url = queue_with(sqs, [json.dumps({"n": n, "fail": n == 1}) for n in range(3)])
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        seen.extend(event["Records"])
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["fail"]]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    poller = EventSourcePoller(sqs, url, handler, wait_seconds=0)
    # WHEN it polls once
    received = poller.poll_once()
    # THEN the handler got one batch of three records shaped as Lambda builds them
    assert received == 3 and poller.batch_sizes == [3]
    assert {r["eventSource"] for r in seen} == {"aws:sqs"}
    assert {r["eventSourceARN"].rsplit(":", 1)[-1] for r in seen} == {"jobs"}
    assert {r["attributes"]["ApproximateReceiveCount"] for r in seen} == {"1"}
    # AND the SQS requests were counted as the worker counts its own (the set-up lookup excluded)
    assert poller.counters.requests() == {"sqs.ReceiveMessage": 1, "sqs.DeleteMessageBatch": 1}
    # AND the two successes were deleted in that one DeleteMessageBatch; the failure stays in flight for a retry
    assert poller.counters.get("deleted") == 2 and poller.counters.get("reported_failures") == 1
    assert queue_depth(sqs, url) == (0, 1)


def test_a_handler_that_raises_has_its_whole_batch_retried(sqs: SQSClient) -> None:
    # GIVEN two messages and a handler that raises (an invocation error)
    url = queue_with(sqs, ["a", "b"])

    def handler(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    poller = EventSourcePoller(sqs, url, handler, wait_seconds=0)
    # WHEN it polls once
    poller.poll_once()
    # THEN nothing is deleted: both come back after the visibility timeout, as with the real mapping
    assert poller.counters.get("invocation_errors") == 1 and poller.counters.get("deleted") == 0
    assert queue_depth(sqs, url) == (0, 2)


def test_a_batch_size_outside_what_one_receive_returns_is_refused(sqs: SQSClient) -> None:
    url = queue_with(sqs, ["a"])
    with pytest.raises(ValueError, match=r"batch_size must be 1\.\.10 .* got 11"):
        EventSourcePoller(sqs, url, lambda _e, _c: {}, batch_size=11)


def test_the_context_counts_the_invocation_time_down_as_lambda_does(sqs: SQSClient) -> None:
    # GIVEN a message, and a handler that spends time and reads its remaining time before and after
    url = queue_with(sqs, [json.dumps({"n": 0, "fail": False})])
    remaining: list[int] = []

    def handler(_event: dict[str, Any], context: Any) -> dict[str, Any]:
        remaining.append(context.get_remaining_time_in_millis())
        time.sleep(0.05)
        remaining.append(context.get_remaining_time_in_millis())
        return {"batchItemFailures": []}

    # WHEN the poller invokes it
    EventSourcePoller(sqs, url, handler, wait_seconds=0).poll_once()

    # THEN it starts near the function's 120 s timeout and goes down by the time spent, as the handler's
    # per-invocation time budget expects (a constant would let a slow batch run past the timeout unnoticed)
    first, second = remaining
    assert 119_000 <= first <= 120_000
    assert 40 <= first - second <= 5_000
