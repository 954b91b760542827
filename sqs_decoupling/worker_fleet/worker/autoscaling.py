"""EC2 Auto Scaling integration: scale-in protection while busy, draining on the termination lifecycle hook, and
the start of an instance launched into a warm pool (complete the launch hook, take jobs only once in service).

On premises (no instance metadata) or on an instance outside an Auto Scaling group, all of this is a no-op.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from sqs_decoupling.worker_fleet.worker.imds import Imds, ImdsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsgInstance:
    """This EC2 instance and the Auto Scaling group it belongs to."""

    instance_id: str
    group_name: str


def find_asg_instance(imds: Imds, autoscaling: AutoScalingClient) -> AsgInstance | None:
    """This instance's id (from IMDS) and its group (DescribeAutoScalingInstances), or None if there is none."""
    try:
        instance_id = imds.get("instance-id")
    except ImdsUnavailable:
        log.info("no instance metadata: running outside EC2, scale-in protection and lifecycle draining are off")
        return None
    if not instance_id:
        return None
    try:
        found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    except (BotoCoreError, ClientError) as error:
        log.warning(
            "cannot look up the Auto Scaling group; scale-in protection is off",
            extra={"instance_id": instance_id, "error": str(error)},
        )
        return None
    if not found:
        log.info("instance is not in an Auto Scaling group", extra={"instance_id": instance_id})
        return None
    return AsgInstance(instance_id=instance_id, group_name=found[0]["AutoScalingGroupName"])


class ScaleInGuard:
    """Keeps instance scale-in protection on while any job runs, so a scale-in never picks a busy worker.

    Protection goes on synchronously before a job starts after an idle spell (never rate-limited: a job must not
    start unprotected). It goes off only after ``idle_seconds`` without jobs, so short gaps between jobs cost no
    API calls and each state is set at most once per ``idle_seconds``. With ``target=None`` (on premises, or not
    in a group) every method does nothing.
    """

    def __init__(
        self,
        autoscaling: AutoScalingClient | None,
        target: AsgInstance | None,
        *,
        idle_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._autoscaling = autoscaling
        self._target = target
        self._idle_seconds = idle_seconds
        self._clock = clock
        # One lock for the job count and the API calls, so "idle -> turn off" can never interleave with
        # "job starting -> turn on" and leave a running job unprotected.
        self._lock = threading.Lock()
        self._running = 0
        self._protected: bool | None = None  # unknown at start: a crashed predecessor may have left it on
        self._idle_since = clock()

    def jobs_starting(self, count: int) -> None:
        """Call before jobs start; returns once protection is on (or turning it on failed and was logged)."""
        with self._lock:
            self._running += count
            if self._protected is not True:
                self._set(True)

    def job_finished(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._idle_since = self._clock()

    def tick(self) -> None:
        """Call periodically: turns protection off once the worker has been idle for ``idle_seconds``."""
        with self._lock:
            idle_long_enough = self._clock() - self._idle_since >= self._idle_seconds
            if self._running == 0 and self._protected is not False and idle_long_enough:
                self._set(False)
                # After a failed call, wait another idle period before trying again.
                self._idle_since = self._clock()

    def stop(self) -> None:
        """Call on shutdown once no job runs: leaves the instance unprotected so the group can scale it in."""
        with self._lock:
            if self._protected is not False:
                self._set(False)

    def _set(self, protected: bool) -> None:
        if self._target is None or self._autoscaling is None:
            self._protected = protected
            return
        try:
            self._autoscaling.set_instance_protection(
                InstanceIds=[self._target.instance_id],
                AutoScalingGroupName=self._target.group_name,
                ProtectedFromScaleIn=protected,
            )
        except (BotoCoreError, ClientError) as error:
            # Not fatal: a job that runs unprotected is still safe, because the termination lifecycle hook
            # drains the worker and an unfinished message becomes visible again.
            log.warning(
                "could not set scale-in protection",
                extra={"protected": protected, "instance_id": self._target.instance_id, "error": str(error)},
            )
            return
        self._protected = protected
        log.info("scale-in protection set", extra={"protected": protected, "instance_id": self._target.instance_id})


class LifecycleActions(Protocol):
    """The two lifecycle hook calls the worker makes while it drains for termination."""

    def heartbeat(self) -> None: ...

    def complete(self) -> None: ...


class AsgLifecycleActions:
    """RecordLifecycleActionHeartbeat and CompleteLifecycleAction(CONTINUE) for this instance's hook."""

    def __init__(self, autoscaling: AutoScalingClient, target: AsgInstance, hook_name: str) -> None:
        self._autoscaling = autoscaling
        self._target = target
        self._hook_name = hook_name

    def heartbeat(self) -> None:
        """Extend the hook's timeout while draining takes long."""
        self._autoscaling.record_lifecycle_action_heartbeat(
            LifecycleHookName=self._hook_name,
            AutoScalingGroupName=self._target.group_name,
            InstanceId=self._target.instance_id,
        )

    def complete(self) -> None:
        """Let the group terminate this instance now that nothing is in flight."""
        self._autoscaling.complete_lifecycle_action(
            LifecycleHookName=self._hook_name,
            AutoScalingGroupName=self._target.group_name,
            InstanceId=self._target.instance_id,
            LifecycleActionResult="CONTINUE",
        )


class TerminationWatcher:
    """Notices that the group is terminating this instance (IMDS ``autoscaling/target-lifecycle-state``).

    The state reads ``Terminated`` while the instance waits in ``Terminating:Wait`` on the lifecycle hook: the
    worker then drains, heartbeats the hook while it does, and completes the hook with CONTINUE.
    """

    def __init__(
        self,
        imds: Imds,
        actions: LifecycleActions | None,
        *,
        poll_seconds: float = 5.0,
        heartbeat_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._imds = imds
        self._actions = actions
        self._poll_seconds = poll_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._clock = clock
        self._next_poll = clock()
        self._terminating_since: float | None = None
        self._last_heartbeat = 0.0
        self._completed = False

    @property
    def terminating(self) -> bool:
        return self._terminating_since is not None

    def poll(self, *, now: bool = False) -> bool:
        """Read the target lifecycle state when a poll is due (``now``: whether due or not, as the worker does on
        its way out, so a stop that came between two polls still completes the hook); True once the instance is
        being terminated."""
        if self.terminating:
            return True
        polled_at = self._clock()
        if polled_at < self._next_poll and not now:
            return False
        self._next_poll = polled_at + self._poll_seconds
        try:
            state = self._imds.get("autoscaling/target-lifecycle-state")
        except ImdsUnavailable as error:
            log.warning("cannot read the target lifecycle state", extra={"error": str(error)})
            return False
        if state == "Terminated":
            self._terminating_since = self._last_heartbeat = polled_at
            log.info("instance is being terminated: draining")
            return True
        return False

    def keep_alive(self) -> None:
        """While draining, heartbeat the lifecycle hook every ``heartbeat_seconds``."""
        if self._actions is None or self._terminating_since is None:
            return
        now = self._clock()
        if now - self._last_heartbeat < self._heartbeat_seconds:
            return
        self._last_heartbeat = now
        try:
            self._actions.heartbeat()
        except (BotoCoreError, ClientError) as error:
            log.warning("lifecycle heartbeat failed", extra={"error": str(error)})

    def complete(self) -> None:
        """After the drain: let the termination proceed. At most once per worker; an action already completed
        (by this instance's previous worker process, before a restart) is not an error."""
        if self._actions is None or self._terminating_since is None or self._completed:
            return
        self._completed = True
        complete_lifecycle_action(self._actions, "termination")


def complete_lifecycle_action(actions: LifecycleActions, hook: str) -> None:
    """CompleteLifecycleAction(CONTINUE), logged; an action already completed (by this instance's previous worker
    process, before a restart) is not an error, and a failed call is logged: the hook then times out on its own
    (its default result)."""
    try:
        actions.complete()
    except ClientError as error:
        if _already_completed(error):
            log.info("lifecycle action already completed (by an earlier worker process on this instance)")
            return
        log.error("could not complete the lifecycle action", extra={"hook": hook, "error": str(error)})
        return
    except (BotoCoreError, ResponseParserError) as error:  # no answer, or one botocore cannot read (an HTML page)
        log.error("could not complete the lifecycle action", extra={"hook": hook, "error": str(error)})
        return
    log.info("lifecycle action completed: CONTINUE", extra={"hook": hook})


class InServiceGate:
    """Opens once the group means this instance to serve: IMDS ``autoscaling/target-lifecycle-state`` reads
    ``InService``.

    An instance launched into a warm pool runs its user data, and so its worker, before it is stopped in the pool
    (the state reads ``Warmed:Stopped``, or ``Warmed:Running``/``Warmed:Hibernated``): taking a job then would only
    have it interrupted by the stop. When the group takes the instance out of the pool, it starts again (the
    systemd unit is enabled) and the state reads ``InService``. ``Terminated`` keeps the gate shut too (the
    termination watcher drains and completes the hook). A 404 (no such item: not in a group) opens it.
    """

    def __init__(self, imds: Imds, *, poll_seconds: float = 5.0) -> None:
        self._imds = imds
        self.poll_seconds = poll_seconds
        self._last_state: str | None = None

    def ready(self) -> bool:
        try:
            state = self._imds.get("autoscaling/target-lifecycle-state")
        except ImdsUnavailable as error:
            log.warning("cannot read the target lifecycle state; not taking jobs yet", extra={"error": str(error)})
            return False
        if state is None or state == "InService":
            return True
        if state != self._last_state:
            log.info("instance not in service: not taking jobs", extra={"target_lifecycle_state": state})
            self._last_state = state
        return False


def _already_completed(error: ClientError) -> bool:
    """CompleteLifecycleAction's answer when no action waits: ValidationError "No active Lifecycle Action found"."""
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationError" and "No active Lifecycle Action" in details.get("Message", "")
