"""Visibility: heartbeats keep a long job's message hidden; a failing message ends in the dead-letter queue."""

from __future__ import annotations

import threading
import time

from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from tests.integration.conftest import send_messages
from tools.localcloud.server import queue_depth, wait_until


class SlowJob:
    """A job that takes ``seconds``; records every delivery it gets."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deliveries: list[Message] = []
        self._lock = threading.Lock()

    def __call__(self, message: Message) -> JobOutcome:
        with self._lock:
            self.deliveries.append(message)
        time.sleep(self.seconds)  # the work itself
        return JobOutcome.DONE


def test_heartbeats_stop_a_job_longer_than_the_visibility_timeout_from_running_twice(sqs, make_queue, start_worker):
    # GIVEN a 5 s job on a message received with a 2 s visibility timeout, and a free slot to take it again
    queue = make_queue()
    send_messages(sqs, queue.url, ["long job"])
    job = SlowJob(seconds=5)

    # WHEN the worker runs it with heartbeats (the default)
    running = start_worker(queue.url, job, concurrency=2, visibility_timeout=2)
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=15, what="the job to finish")
    running.stop()

    # THEN it ran once, on its first delivery, and its visibility was extended while it ran
    assert [m.receive_count for m in job.deliveries] == [1]
    assert running.counters.get("heartbeats") >= 3
    assert queue_depth(sqs, queue.url) == (0, 0)


def test_without_heartbeats_the_same_job_is_delivered_twice(sqs, make_queue, start_worker):
    # GIVEN the same 5 s job and 2 s visibility timeout
    queue = make_queue()
    send_messages(sqs, queue.url, ["long job"])
    job = SlowJob(seconds=5)

    # WHEN heartbeats are off
    running = start_worker(queue.url, job, concurrency=2, visibility_timeout=2, heartbeats=False, drain_seconds=0)
    wait_until(lambda: len(job.deliveries) >= 2, timeout=10, what="a second delivery")
    running.stop()

    # THEN the message came back while its first job was still running: the failure heartbeats prevent
    assert [m.receive_count for m in job.deliveries[:2]] == [1, 2]
    assert job.deliveries[0].message_id == job.deliveries[1].message_id


def test_a_poison_message_lands_in_the_dlq_after_max_receive_count(sqs, make_queue, start_worker):
    # GIVEN a queue that dead-letters after 2 receives, and a message whose job always fails
    queue = make_queue(visibility_timeout=1, max_receive_count=2)
    (message_id,) = send_messages(sqs, queue.url, ['{"not": "a job"}'])
    attempts: list[int] = []

    def handler(message: Message) -> JobOutcome:
        attempts.append(message.receive_count)
        raise ValueError("cannot parse this job")

    # WHEN the worker keeps receiving it
    running = start_worker(queue.url, handler, visibility_timeout=1)
    wait_until(lambda: queue_depth(sqs, queue.dlq_url)[0] == 1, timeout=15, what="the message in the DLQ")
    running.stop()

    # THEN it was tried maxReceiveCount times, never deleted, and sits intact in the DLQ
    assert attempts == [1, 2]
    assert running.counters.get("deleted") == 0
    assert queue_depth(sqs, queue.url) == (0, 0)
    (dead,) = sqs.receive_message(QueueUrl=queue.dlq_url)["Messages"]
    assert (dead["MessageId"], dead["Body"]) == (message_id, '{"not": "a job"}')
