"""The worker receives up to ten messages per call and deletes finished jobs with DeleteMessageBatch."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from sqs_decoupling.worker_fleet.worker.batches import DeleteBatcher
from sqs_decoupling.worker_fleet.worker.consumer import WorkerOptions
from sqs_decoupling.worker_fleet.worker.counters import Counters
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from tests.integration.conftest import send_messages
from tools.localcloud.server import DUMMY_CLIENT_ARGS, queue_depth, wait_until


def record_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """Parameters of every ``operation`` call the client makes."""
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        f"provide-client-params.sqs.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_25_messages_are_received_in_tens_and_deleted_in_batches(sqs, client, make_queue, start_worker):
    # GIVEN 25 messages on a queue
    queue = make_queue()
    sent = send_messages(sqs, queue.url, [f"job {i}" for i in range(25)])
    handled: list[str] = []

    def handler(message: Message) -> JobOutcome:
        handled.append(message.message_id)
        return JobOutcome.DONE

    # WHEN a worker with ten job slots drains it
    worker_sqs = client("sqs")
    received_per_call: list[int] = []
    worker_sqs.meta.events.register(
        "after-call.sqs.ReceiveMessage",
        lambda parsed, **_: received_per_call.append(len(parsed.get("Messages", []))),
    )
    deletes = record_calls(worker_sqs, "DeleteMessageBatch")
    # (with the worker's own delete linger: a partly filled batch waits that long for jobs still running)
    linger = WorkerOptions().delete_linger_seconds
    running = start_worker(queue.url, handler, sqs=worker_sqs, concurrency=10, delete_linger_seconds=linger)
    wait_until(lambda: running.counters.get("deleted") == 25, what="25 deletes")
    running.stop()

    # THEN every message ran once, the queue is empty, and the calls were batched
    assert sorted(handled) == sorted(sent)
    assert queue_depth(sqs, queue.url) == (0, 0)
    assert [n for n in received_per_call if n] == [10, 10, 5]
    assert [len(call["Entries"]) for call in deletes] == [10, 10, 5]
    requests = running.counters.requests()
    assert "sqs.DeleteMessage" not in requests
    assert requests["sqs.DeleteMessageBatch"] == 3


def test_a_failed_delete_entry_is_retried_and_a_rejected_one_is_not():
    # GIVEN a DeleteMessageBatch whose first answer fails one entry on the server side and rejects another
    sqs = boto3.client("sqs", **DUMMY_CLIENT_ARGS)
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
    messages = [Message(f"m{i}", f"handle-{i}", "{}", 1) for i in range(3)]
    stubber = Stubber(sqs)
    stubber.add_response(
        "delete_message_batch",
        {
            "Successful": [{"Id": "0"}],
            "Failed": [
                {"Id": "1", "SenderFault": False, "Code": "InternalError"},
                {"Id": "2", "SenderFault": True, "Code": "ReceiptHandleIsInvalid"},
            ],
        },
        {"QueueUrl": url, "Entries": [{"Id": str(i), "ReceiptHandle": f"handle-{i}"} for i in range(3)]},
    )
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": url, "Entries": [{"Id": "0", "ReceiptHandle": "handle-1"}]},
    )
    counters = Counters()
    batcher = DeleteBatcher(sqs, url, counters, backoff_seconds=0)
    for message in messages:
        batcher.add(message)

    # WHEN the batch is flushed
    with stubber:
        batcher.flush()
        stubber.assert_no_pending_responses()

    # THEN the server-side failure was retried alone, the rejected one counted as a failure
    assert counters.get("deleted") == 2
    assert counters.get("delete_failures") == 1
    assert batcher.pending() == 0


def test_a_job_that_raises_is_not_deleted(sqs, make_queue, start_worker):
    # GIVEN a message whose job fails transiently
    queue = make_queue(visibility_timeout=30)
    send_messages(sqs, queue.url, ["flaky"])

    def handler(message: Message) -> JobOutcome:
        raise ConnectionError("the database is down")

    # WHEN the worker runs it
    running = start_worker(queue.url, handler, visibility_timeout=30)
    wait_until(lambda: running.counters.get("transient_failures") == 1, what="the failure")
    running.stop()

    # THEN nothing was deleted: the message is still on the queue, waiting out its visibility timeout
    assert running.counters.requests().get("sqs.DeleteMessageBatch", 0) == 0
    assert queue_depth(sqs, queue.url) == (0, 1)
