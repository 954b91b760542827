"""EC2 Auto Scaling: scale-in protection while busy (moto's Auto Scaling group over HTTP, a fake IMDS) and the
termination lifecycle drain (the hook calls, which moto does not implement, through botocore's Stubber)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
from botocore.stub import Stubber

from sqs_decoupling.worker_fleet.worker.autoscaling import (
    AsgInstance,
    AsgLifecycleActions,
    ScaleInGuard,
    TerminationWatcher,
    find_asg_instance,
)
from sqs_decoupling.worker_fleet.worker.imds import Imds
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from tests.integration.conftest import send_messages
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tools.localcloud.server import DUMMY_CLIENT_ARGS, queue_depth, wait_until


class GatedJob:
    """A job that runs until the test opens its gate; records what it saw when it started."""

    def __init__(self, on_start: Any = None) -> None:
        self.gate = threading.Event()
        self.started: list[Message] = []
        self.seen_at_start: list[Any] = []
        self._on_start = on_start

    def __call__(self, message: Message) -> JobOutcome:
        if self._on_start is not None:
            self.seen_at_start.append(self._on_start())
        self.started.append(message)
        assert self.gate.wait(30), "the test never opened the gate"
        return JobOutcome.DONE


def protected(autoscaling: Any, instance_id: str) -> bool:
    (instance,) = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return bool(instance["ProtectedFromScaleIn"])


def record_group(recording: CallRecorder, target: AsgInstance) -> None:
    recording.symbols |= {target.group_name: "<worker_group>", target.instance_id: "<instance_id>"}


def test_the_worker_finds_its_group_through_imds(client, fake_imds, asg_instance, call_recorder):
    record_group(call_recorder, asg_instance)
    with call_recorder.as_principal("worker"):
        assert find_asg_instance(fake_imds.imds(), client("autoscaling")) == asg_instance
    assert fake_imds.token_requests == 1  # IMDSv2: one session token, then GETs with it
    assert_catalogued(call_recorder.calls(), needs=[("worker", "autoscaling", "DescribeAutoScalingInstances")])


def test_an_expired_imds_token_is_replaced(fake_imds):
    # GIVEN a metadata client holding a session token
    fake_imds.metadata["instance-id"] = "i-0123456789abcdef0"
    imds = fake_imds.imds()
    assert imds.get("instance-id") == "i-0123456789abcdef0"

    # WHEN IMDS stops accepting that token (HTTP 401)
    fake_imds.token = "a-new-token"

    # THEN the client fetches a new token and the read still succeeds; missing paths read as None
    assert imds.get("instance-id") == "i-0123456789abcdef0"
    assert fake_imds.token_requests == 2
    assert imds.get("autoscaling/target-lifecycle-state") is None


def test_on_premises_there_is_no_group_and_no_wait():
    # Nothing listens on this port: the same answer as a server with no instance metadata, just faster.
    autoscaling = boto3.client("autoscaling", **DUMMY_CLIENT_ARGS)
    started = time.monotonic()
    assert find_asg_instance(Imds("http://127.0.0.1:9"), autoscaling) is None
    assert time.monotonic() - started < 2


def test_scale_in_protection_is_on_while_busy_off_when_idle_and_rate_limited(
    sqs, client, make_queue, start_worker, asg_instance, call_recorder
):
    # GIVEN a worker on the group's instance, which drops protection after 1 s idle
    autoscaling, observer = client("autoscaling"), client("autoscaling")
    protection_calls: list[bool] = []
    autoscaling.meta.events.register(
        "provide-client-params.auto-scaling.SetInstanceProtection",
        lambda params, **_: protection_calls.append(params["ProtectedFromScaleIn"]),
    )
    guard = ScaleInGuard(autoscaling, asg_instance, idle_seconds=1.0)
    queue = make_queue()
    record_group(call_recorder, asg_instance)
    call_recorder.symbols[queue.url] = "<jobs_queue>"

    def observe() -> bool:
        with call_recorder.unrecorded():  # the test's look, from the job's thread
            return protected(observer, asg_instance.instance_id)

    job = GatedJob(on_start=observe)
    with call_recorder.as_principal("worker"):
        running = start_worker(queue.url, job, scale_in=guard, concurrency=1)

    # WHEN a first job runs
    send_messages(sqs, queue.url, ["first"])
    wait_until(lambda: job.started, what="the first job")
    # THEN the instance was protected before the job started
    assert job.seen_at_start == [True]

    # WHEN a second job follows right after (well within the idle period)
    job.gate.set()
    send_messages(sqs, queue.url, ["second"])
    wait_until(lambda: len(job.started) == 2, what="the second job")
    # THEN it needed no new call: still one call, to turn protection on
    assert protection_calls == [True]

    # WHEN the worker has been idle for a while
    wait_until(lambda: not protected(observer, asg_instance.instance_id), timeout=15, what="protection off")
    # THEN protection went off once, and comes back on for the next job
    assert protection_calls == [True, False]
    job.gate.clear()
    send_messages(sqs, queue.url, ["third"])
    wait_until(lambda: len(job.started) == 3, what="the third job")
    assert job.seen_at_start == [True, True, True]
    assert protection_calls == [True, False, True]
    job.gate.set()
    running.stop()
    assert protection_calls == [True, False, True, False]  # a stopped worker leaves the instance unprotected
    # AND every call the worker made is in the permission catalogue
    assert_catalogued(
        call_recorder.calls(),
        needs=[("worker", "autoscaling", "SetInstanceProtection"), ("worker", "sqs", "ReceiveMessage")],
    )


def test_lifecycle_actions_send_the_hook_calls(call_recorder):
    # GIVEN the lifecycle calls for one instance, against a stub (moto does not implement them)
    autoscaling = boto3.client("autoscaling", **DUMMY_CLIENT_ARGS)
    target = AsgInstance("i-0123456789abcdef0", "workers")
    record_group(call_recorder, target)
    call_recorder.symbols["drain"] = "<lifecycle_hook>"
    expected = {"LifecycleHookName": "drain", "AutoScalingGroupName": "workers", "InstanceId": target.instance_id}
    actions = AsgLifecycleActions(autoscaling, target, "drain")
    with Stubber(autoscaling) as stubber:
        stubber.add_response("record_lifecycle_action_heartbeat", {}, expected)
        stubber.add_response("complete_lifecycle_action", {}, expected | {"LifecycleActionResult": "CONTINUE"})

        # WHEN the worker heartbeats and completes
        with call_recorder.as_principal("worker"):
            actions.heartbeat()
            actions.complete()

        # THEN exactly these calls were made, with these parameters
        stubber.assert_no_pending_responses()
    # AND both are in the permission catalogue
    assert_catalogued(
        call_recorder.calls(),
        needs=[
            ("worker", "autoscaling", "RecordLifecycleActionHeartbeat"),
            ("worker", "autoscaling", "CompleteLifecycleAction"),
        ],
    )


def test_termination_drains_the_job_in_flight_then_completes_the_hook(sqs, make_queue, start_worker, fake_imds):
    # GIVEN a worker on an instance in service, with a job in flight and another message waiting
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "InService"
    autoscaling = boto3.client("autoscaling", **DUMMY_CLIENT_ARGS)
    target = AsgInstance("i-0123456789abcdef0", "workers")
    queue = make_queue()
    job = GatedJob()
    deleted_when_completed: list[int] = []
    watcher = TerminationWatcher(fake_imds.imds(), AsgLifecycleActions(autoscaling, target, "drain"), poll_seconds=0.2)
    running = start_worker(queue.url, job, termination=watcher, concurrency=1)
    autoscaling.meta.events.register(
        "provide-client-params.auto-scaling.CompleteLifecycleAction",
        lambda **_: deleted_when_completed.append(running.counters.get("deleted")),
    )
    send_messages(sqs, queue.url, ["in flight"])
    wait_until(lambda: job.started, what="the job to start")
    send_messages(sqs, queue.url, ["waiting"])

    with Stubber(autoscaling) as stubber:
        stubber.add_response(
            "complete_lifecycle_action",
            {},
            {
                "LifecycleHookName": "drain",
                "AutoScalingGroupName": "workers",
                "InstanceId": target.instance_id,
                "LifecycleActionResult": "CONTINUE",
            },
        )
        # WHEN the group starts terminating the instance (it waits in Terminating:Wait on the hook)
        fake_imds.metadata["autoscaling/target-lifecycle-state"] = "Terminated"
        wait_until(lambda: running.worker.stopping, timeout=15, what="the worker to notice")
        job.gate.set()
        running.join()

        # THEN the job finished and was deleted before the hook was completed with CONTINUE ...
        stubber.assert_no_pending_responses()
    assert deleted_when_completed == [1]
    # ... and the waiting message was left for another instance
    assert [m.body for m in job.started] == ["in flight"]
    assert queue_depth(sqs, queue.url) == (1, 0)


def test_a_long_drain_heartbeats_the_lifecycle_hook(sqs, make_queue, start_worker, fake_imds):
    # GIVEN a terminating instance whose job takes a while to finish
    class RecordingActions:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def heartbeat(self) -> None:
            self.calls.append("heartbeat")

        def complete(self) -> None:
            self.calls.append("complete")

    actions = RecordingActions()
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "Terminated"
    watcher = TerminationWatcher(fake_imds.imds(), actions, poll_seconds=0.1, heartbeat_seconds=0.3)
    queue = make_queue()
    job = GatedJob()
    send_messages(sqs, queue.url, ["slow"])
    # The worker only notices the termination on its first housekeeping tick, so the job may or may not start.
    running = start_worker(queue.url, job, termination=watcher)

    # WHEN the drain lasts longer than the heartbeat interval
    wait_until(lambda: actions.calls.count("heartbeat") >= 2, timeout=15, what="two heartbeats")
    job.gate.set()
    running.join()

    # THEN the hook was heartbeated while draining and completed once, last
    assert actions.calls[-1] == "complete"
    assert actions.calls.count("complete") == 1


class RecordingActions:
    """Lifecycle hook calls, recorded; ``complete`` raises ``complete_error`` if one is set."""

    def __init__(self, complete_error: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.complete_error = complete_error

    def heartbeat(self) -> None:
        self.calls.append("heartbeat")

    def complete(self) -> None:
        self.calls.append("complete")
        if self.complete_error is not None:
            raise self.complete_error


def test_an_idle_worker_stopped_between_two_polls_of_terminating_wait_still_completes_the_hook(
    make_queue, start_worker, fake_imds
):
    # GIVEN an idle worker that last read the lifecycle state while in service, and polls only every 60 s
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "InService"
    actions = RecordingActions()
    watcher = TerminationWatcher(fake_imds.imds(), actions, poll_seconds=60)
    running = start_worker(make_queue().url, GatedJob(), termination=watcher)
    wait_until(lambda: fake_imds.token_requests >= 1, timeout=15, what="the first lifecycle poll")

    # WHEN the instance enters Terminating:Wait and systemd stops the worker before its next poll
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "Terminated"
    running.stop()

    # THEN it read the state on its way out and completed the hook, once, instead of leaving it to time out
    assert actions.calls == ["complete"]


def test_a_hook_already_completed_by_an_earlier_worker_is_not_an_error(caplog):
    # GIVEN a terminating instance whose hook an earlier worker process completed before a restart
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "No active Lifecycle Action found with instance ID i-0"}},
        "CompleteLifecycleAction",
    )
    actions = RecordingActions(complete_error=error)

    class TerminatedImds:
        def get(self, path: str) -> str:
            return "Terminated"

    watcher = TerminationWatcher(TerminatedImds(), actions)  # type: ignore[arg-type]
    assert watcher.poll(now=True)

    # WHEN the restarted worker completes it, and its shutdown path tries again
    with caplog.at_level("INFO", logger="sqs_decoupling.worker_fleet.worker.autoscaling"):
        watcher.complete()
        watcher.complete()

    # THEN one call was made, and AWS's "no active action" answer is an INFO line, not an ERROR
    assert actions.calls == ["complete"]
    assert [r.levelname for r in caplog.records if "lifecycle action" in r.getMessage()] == ["INFO"]
    assert "already completed" in caplog.records[-1].getMessage()
