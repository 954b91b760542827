"""Spot interruption notices, rebalance recommendations and the warm pool's start gate, as the worker reads them
from instance metadata (a fake IMDS over HTTP), with the queue on a moto server."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber

from sqs_decoupling.worker_fleet.worker.autoscaling import (
    AsgInstance,
    AsgLifecycleActions,
    InServiceGate,
    complete_lifecycle_action,
)
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from sqs_decoupling.worker_fleet.worker.spot import (
    INTERRUPTION_PATH,
    NOTICE_SECONDS,
    REBALANCE_PATH,
    RELEASE_MARGIN_SECONDS,
    SpotWatcher,
    parse_interruption,
)
from tests.integration.conftest import send_messages
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tests.support.spot import interruption_notice
from tools.localcloud.server import DUMMY_CLIENT_ARGS, queue_depth, wait_until

FAST_POLL = 0.1  # instead of AWS's 5 s, so a test sees a notice within a tick


class HeldJob:
    """A job that runs until the test lets it finish (``finish.set()``)."""

    def __init__(self) -> None:
        self.finish = threading.Event()
        self.started: list[str] = []

    def __call__(self, message: Message) -> JobOutcome:
        self.started.append(message.body)
        assert self.finish.wait(30), "the test never let the job finish"
        return JobOutcome.DONE


def spot_watcher(fake_imds) -> SpotWatcher:
    return SpotWatcher(fake_imds.imds(), poll_seconds=FAST_POLL)


def busy_spot_worker(sqs, make_queue, start_worker, fake_imds, **options):
    """A worker on a Spot Instance (one job at a time, 120 s drain) in the middle of a job whose message is hidden
    for 300 s, and one more message waiting: ``(queue, job, running)``."""
    queue = make_queue(visibility_timeout=300)
    job = HeldJob()
    running = start_worker(queue.url, job, spot=spot_watcher(fake_imds), concurrency=1, drain_seconds=120, **options)
    send_messages(sqs, queue.url, ["in flight"])
    wait_until(lambda: job.started, what="the job to start")
    send_messages(sqs, queue.url, ["waiting"])
    return queue, job, running


def test_a_notice_mid_job_releases_the_job_that_cannot_finish_before_ec2_acts(sqs, make_queue, start_worker, fake_imds):
    # GIVEN a worker on a Spot Instance in the middle of a long job (its message hidden for 300 s), one more waiting
    ended = threading.Event()
    queue, job, running = busy_spot_worker(sqs, make_queue, start_worker, fake_imds, on_abandon=ended.set)

    # WHEN EC2 announces that it terminates the instance in RELEASE_MARGIN_SECONDS + 2 s
    noticed = time.monotonic()
    fake_imds.metadata[INTERRUPTION_PATH] = interruption_notice(RELEASE_MARGIN_SECONDS + 2)

    # THEN the job runs on until the margin before EC2 acts, then its message is released (visible again at once,
    # not after 300 s) and its work ended (ffmpeg, for the video job), well before EC2 acts
    wait_until(lambda: running.counters.get("released") == 1, timeout=10, what="the release")
    released_after = time.monotonic() - noticed
    assert 0.5 < released_after < RELEASE_MARGIN_SECONDS, released_after
    assert ended.is_set()
    assert queue_depth(sqs, queue.url) == (2, 0)
    # AND the worker takes no new job, yet stays up (stopped later by the shutdown)
    time.sleep(1.0)
    assert running.thread.is_alive()
    assert running.counters.get("received") == 1
    # AND the job, when it ends, deletes nothing: its message is no longer this worker's
    job.finish.set()
    running.stop()
    assert running.counters.get("deleted") == 0
    assert queue_depth(sqs, queue.url) == (2, 0)


def test_a_notice_during_a_shutdown_drain_brings_its_deadline_forward(sqs, make_queue, start_worker, fake_imds):
    # GIVEN a worker on a Spot Instance draining for a shutdown (120 s for its long job to finish)
    queue, job, running = busy_spot_worker(sqs, make_queue, start_worker, fake_imds)
    running.worker.request_stop("shutdown")

    # WHEN EC2 announces, during the drain, that it acts in RELEASE_MARGIN_SECONDS + 1 s
    fake_imds.metadata[INTERRUPTION_PATH] = interruption_notice(RELEASE_MARGIN_SECONDS + 1)

    # THEN the job is released at the notice's deadline, not after 120 s, and the worker stops as asked
    running.join(timeout=10)
    assert running.counters.get("released") == 1
    assert queue_depth(sqs, queue.url) == (2, 0)
    job.finish.set()


def test_a_notice_mid_job_lets_a_job_finish_that_fits_before_ec2_acts(sqs, make_queue, start_worker, fake_imds):
    # GIVEN a worker on a Spot Instance in the middle of a short job, one more message waiting
    queue, job, running = busy_spot_worker(sqs, make_queue, start_worker, fake_imds)

    # WHEN EC2 announces the interruption two minutes ahead, and the job ends a moment later
    fake_imds.metadata[INTERRUPTION_PATH] = interruption_notice(NOTICE_SECONDS)
    wait_until(lambda: running.worker.stopping, timeout=15, what="the worker to notice")
    job.finish.set()

    # THEN the job finished and its message was deleted; nothing was released
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=10, what="the delete")
    assert running.counters.get("released") == 0
    # AND the waiting message was left on the queue for another instance
    time.sleep(0.5)
    assert job.started == ["in flight"]
    assert queue_depth(sqs, queue.url) == (1, 0)
    assert running.thread.is_alive()
    running.stop()


def test_a_rebalance_recommendation_finishes_the_jobs_in_flight_and_takes_no_new_one(
    sqs, make_queue, start_worker, fake_imds
):
    # GIVEN a worker on a Spot Instance with a job in flight and another message waiting
    queue, job, running = busy_spot_worker(sqs, make_queue, start_worker, fake_imds)

    # WHEN EC2 recommends rebalancing (the instance is at elevated risk of interruption)
    fake_imds.metadata[REBALANCE_PATH] = json.dumps({"noticeTime": "2026-12-05T01:00:00Z"})
    wait_until(lambda: running.worker.stopping, timeout=15, what="the worker to notice")
    time.sleep(0.5)
    job.finish.set()

    # THEN the job in flight finishes (the usual drain time applies) and is deleted
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=10, what="the delete")
    assert running.counters.get("released") == 0
    # AND no new job is taken while the worker stays up, until the instance is stopped
    time.sleep(0.5)
    assert job.started == ["in flight"] and running.thread.is_alive()
    assert queue_depth(sqs, queue.url) == (1, 0)
    running.stop()


def test_a_worker_started_under_a_notice_receives_nothing(sqs, make_queue, start_worker, fake_imds):
    # GIVEN an interruption notice already posted (the worker restarted after it) and a message on the queue
    queue = make_queue()
    send_messages(sqs, queue.url, ["job"])
    fake_imds.metadata[INTERRUPTION_PATH] = interruption_notice(90)
    receives: list[object] = []
    worker_sqs = boto3.client("sqs", endpoint_url=sqs.meta.endpoint_url, **DUMMY_CLIENT_ARGS)
    worker_sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **kw: receives.append(kw))

    # WHEN the worker starts
    job = HeldJob()
    running = start_worker(queue.url, job, sqs=worker_sqs, spot=spot_watcher(fake_imds))
    time.sleep(1.0)

    # THEN it never asks for a message, and stays up until stopped
    assert receives == [] and job.started == []
    assert running.thread.is_alive()
    running.stop()


def test_an_instance_warming_into_the_pool_takes_jobs_only_once_in_service(sqs, make_queue, start_worker, fake_imds):
    # GIVEN an instance launched into a warm pool (its user data runs the worker before the group stops it)
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "Warmed:Stopped"
    queue = make_queue()
    send_messages(sqs, queue.url, ["job"])
    receives: list[object] = []
    worker_sqs = boto3.client("sqs", endpoint_url=sqs.meta.endpoint_url, **DUMMY_CLIENT_ARGS)
    worker_sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **kw: receives.append(kw))
    job = HeldJob()
    job.finish.set()

    # WHEN its worker starts
    running = start_worker(
        queue.url, job, sqs=worker_sqs, start_gate=InServiceGate(fake_imds.imds(), poll_seconds=FAST_POLL)
    )
    time.sleep(1.0)

    # THEN it asks for no message while warming
    assert receives == [] and job.started == []
    assert queue_depth(sqs, queue.url) == (1, 0)

    # WHEN the group takes the instance out of the pool into service
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "InService"

    # THEN the worker takes the job and finishes it
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=10, what="the job to be done")
    assert job.started == ["job"]
    running.stop()


def test_an_interruption_time_is_read_and_never_later_than_two_minutes():
    # GIVEN the moment the notice is seen
    seen = datetime(2026, 12, 5, 1, 0, 0, tzinfo=UTC).timestamp()
    # WHEN EC2's time is 100 s ahead, or garbled, or (never documented) 10 minutes ahead
    # THEN the deadline is that time, or two minutes from seeing the notice
    assert parse_interruption('{"action":"stop","time":"2026-12-05T01:01:40Z"}', seen_at=seen).action_at == seen + 100
    assert parse_interruption("not json", seen_at=seen).action_at == seen + NOTICE_SECONDS
    assert parse_interruption('{"time":"2026-12-05T01:10:00Z"}', seen_at=seen).action_at == seen + NOTICE_SECONDS
    # AND jobs are released RELEASE_MARGIN_SECONDS before it
    notice = parse_interruption('{"action":"terminate","time":"2026-12-05T01:01:40Z"}', seen_at=seen)
    assert notice.release_at() == seen + 100 - RELEASE_MARGIN_SECONDS


def test_the_worker_completes_the_launch_hook_once_even_after_a_restart(call_recorder: CallRecorder):
    # GIVEN the launch lifecycle hook of an instance launched into the warm pool (a stub: moto lacks the call)
    autoscaling = boto3.client("autoscaling", **DUMMY_CLIENT_ARGS)
    target = AsgInstance("i-0123456789abcdef0", "workers")
    call_recorder.symbols |= {"workers": "<worker_group>", target.instance_id: "<instance_id>"}
    call_recorder.symbols["worker-initialized"] = "<launch_hook>"
    expected = {
        "LifecycleHookName": "worker-initialized",
        "AutoScalingGroupName": "workers",
        "InstanceId": target.instance_id,
        "LifecycleActionResult": "CONTINUE",
    }
    actions = AsgLifecycleActions(autoscaling, target, "worker-initialized")
    with Stubber(autoscaling) as stubber:
        stubber.add_response("complete_lifecycle_action", {}, expected)
        stubber.add_client_error(
            "complete_lifecycle_action",
            service_error_code="ValidationError",
            service_message="No active Lifecycle Action found with instance ID i-0123456789abcdef0",
            expected_params=expected,
        )

        # WHEN the worker completes it, and a restarted worker tries again
        with call_recorder.as_principal("worker"):
            complete_lifecycle_action(actions, "launch")
            complete_lifecycle_action(actions, "launch")

        # THEN the first call completed it with CONTINUE, and the second one's refusal was taken in stride
        stubber.assert_no_pending_responses()
    # AND the call is in the permission catalogue
    assert_catalogued(call_recorder.calls(), needs=[("worker", "autoscaling", "CompleteLifecycleAction")])
