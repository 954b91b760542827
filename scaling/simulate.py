"""Minute by minute (jobs second by second): the queue, its consumers, and the scaling the template deploys.

The queue: messages arrive (``Workload``), wait visible, are received (in flight, not visible) for the job's
duration, then deleted. CloudWatch gets one datapoint per minute per SQS metric (visible, in flight, age of the
oldest message) and per Auto Scaling group metric (instances in service); the template's alarms and policies
decide from those datapoints through ``scaling.policy``, the one rule.

Two consumers:
- the fleet: an instance starts ``startup_seconds`` after the group asks for it (boot + user data), then runs
  ``worker_concurrency`` jobs at once; a busy worker protects itself from scale-in (worker.autoscaling), so
  scale-in takes idle instances only and a job in flight is never cut;
- Lambda: the SQS event source's documented scaling (``LambdaScaling``), batches of up to BatchSize records run
  one after the other inside one invocation, a partial batch waits for the batching window.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scaling.policy import TARGET_TRACKING_IN_DATAPOINTS, evaluate_step_policy
from scaling.template import Fleet, LambdaConsumer
from scaling.workload import Workload

SECONDS = 60
HISTORY = max(TARGET_TRACKING_IN_DATAPOINTS, 60)  # datapoints an alarm may look back on

# Lambda's SQS scaling, "Configuring scaling behavior for SQS event source mappings" (AWS Lambda Developer Guide,
# checked 2026-11): standard queues start with 5 concurrent batches and add up to 300 per minute while messages
# remain, up to 1,000, capped by the mapping's MaximumConcurrency (2-1,000).
LAMBDA_START_CONCURRENCY = 5
LAMBDA_RAMP_PER_MINUTE = 300
LAMBDA_MAX_CONCURRENCY = 1000
# Provisioned mode (MinimumPollers/MaximumPollers, exclusive with MaximumConcurrency): the guide promises "3 times
# faster scaling"; it gives no concurrency per poller. ASSUMPTIONS: each poller keeps 10 batches going (the
# standard mode's batch size), the ramp is 3 x 300 per minute.
PROVISIONED_BATCHES_PER_POLLER = 10
PROVISIONED_RAMP_PER_MINUTE = 3 * LAMBDA_RAMP_PER_MINUTE


class Queue:
    """Visible messages as (arrival second, count) cohorts, oldest first, and the wait of each started job."""

    def __init__(self) -> None:
        self.cohorts: deque[list[int]] = deque()
        self.visible = 0
        self.waits: dict[int, int] = {}  # seconds waited -> jobs

    def arrive(self, second: int, count: int) -> None:
        if count:
            self.cohorts.append([second, count])
            self.visible += count

    def oldest_age(self, now: int) -> int:
        return now - self.cohorts[0][0] if self.cohorts else 0

    def expire(self, now: int, retention: int) -> int:
        """SQS deletes a message older than the queue's retention period, received or not: lost."""
        expired = 0
        while self.cohorts and now - self.cohorts[0][0] > retention:
            expired += self.cohorts.popleft()[1]
        self.visible -= expired
        return expired

    def take(self, now: int, wanted: int) -> int:
        taken = 0
        while taken < wanted and self.cohorts:
            cohort = self.cohorts[0]
            k = min(wanted - taken, cohort[1])
            self.waits[now - cohort[0]] = self.waits.get(now - cohort[0], 0) + k
            cohort[1] -= k
            taken += k
            if cohort[1] == 0:
                self.cohorts.popleft()
        self.visible -= taken
        return taken


@dataclass
class Run:
    """The series and counters of one simulated consumer."""

    name: str
    jobs_in: int = 0
    jobs_done: int = 0
    jobs_expired: int = 0
    series: dict[str, list[float]] = field(
        default_factory=lambda: {"visible": [], "in_flight": [], "capacity": [], "oldest_age": []}
    )
    capacity_seconds: float = 0.0  # instance-seconds billed (fleet)
    busy_seconds: float = 0.0  # seconds consumers spent on jobs (Lambda: billed duration)
    invocations: int = 0
    drained_at: int | None = None

    def summary(self, queue: Queue, in_flight: int, end: int) -> dict[str, Any]:
        for cohort in queue.cohorts:  # jobs never started count with their wait so far (a lower bound)
            queue.waits[end - cohort[0]] = queue.waits.get(end - cohort[0], 0) + cohort[1]
        return {
            "jobs_in": self.jobs_in,
            "jobs_done": self.jobs_done,
            "jobs_in_flight_at_end": in_flight,
            "jobs_not_started": queue.visible,
            "jobs_expired": self.jobs_expired,
            "drain_minutes": None if self.drained_at is None else round(self.drained_at / SECONDS, 1),
            "first_empty_minute": next((m + 1 for m, v in enumerate(self.series["visible"]) if v == 0), None),
            "max_age_seconds": int(max(self.series["oldest_age"], default=0)),
            "p95_wait_seconds": percentile(queue.waits, 0.95),
            "p95_wait_is_lower_bound": queue.visible > 0,
            "peak_capacity": int(max(self.series["capacity"], default=0)),
        }


def percentile(histogram: dict[int, int], share: float) -> int:
    total = sum(histogram.values())
    if not total:
        return 0
    rank, seen = math.ceil(share * total), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def _arrivals_in_second(count: int, second: int) -> int:
    return (second + 1) * count // SECONDS - second * count // SECONDS


def _run(
    workload: Workload,
    horizon_minutes: int,
    run: Run,
    slots: Callable[[int], int],
    service_seconds: Callable[[int], float],
    batch: int,
    batch_window: int,
    retention: int,
    on_minute: Callable[[int, Queue, int], None],
) -> tuple[Queue, int]:
    """The shared engine: ``slots(now)`` consumers take batches of up to ``batch``; ``on_minute`` scales."""
    queue, in_flight = Queue(), 0
    running: list[tuple[int, int]] = []  # heap of (finish second, messages)
    last_arrival = max((m for m, n in enumerate(workload.arrivals) if n), default=-1)
    for minute in range(horizon_minutes):
        arrivals = workload.arrivals[minute] if minute < len(workload.arrivals) else 0
        run.jobs_in += arrivals
        start = minute * SECONDS
        if not arrivals and not queue.visible and not running:
            slots(start + SECONDS - 1)  # nothing to do this minute but let instances finish starting
        else:
            for now in range(start, start + SECONDS):
                queue.arrive(now, _arrivals_in_second(arrivals, now - start))
                while running and running[0][0] <= now:
                    done = heapq.heappop(running)[1]
                    in_flight -= done
                    run.jobs_done += done
                free = slots(now) - len(running)
                while free > 0 and queue.visible:
                    if queue.visible < batch and queue.oldest_age(now) < batch_window:
                        break  # a partial batch waits for the batching window
                    n = queue.take(now, batch)
                    seconds = service_seconds(n)
                    heapq.heappush(running, (now + max(1, math.ceil(seconds)), n))
                    in_flight += n
                    run.busy_seconds += seconds
                    run.invocations += 1
                    free -= 1
                if (
                    run.drained_at is None
                    and now >= last_arrival * SECONDS + SECONDS - 1
                    and not queue.visible
                    and not running
                ):
                    run.drained_at = now
        end = start + SECONDS
        run.jobs_expired += queue.expire(end, retention)
        run.series["visible"].append(queue.visible)
        run.series["in_flight"].append(in_flight)
        run.series["oldest_age"].append(queue.oldest_age(end))
        on_minute(end, queue, in_flight)
    return queue, in_flight


@dataclass
class FleetState:
    """The group: desired capacity, instances starting (ready second) and in service."""

    desired: int
    pending: list[int] = field(default_factory=list)
    in_service: int = 0
    launches: list[tuple[int, int]] = field(default_factory=list)  # (second, instances)
    history: dict[str, deque[float | None]] = field(default_factory=dict)
    billed: int = 0

    def __post_init__(self) -> None:
        self.billed = len(self.pending)


def simulate_fleet(
    fleet: Fleet,
    workload: Workload,
    *,
    job_seconds: float,
    startup_seconds: int,
    horizon_minutes: int,
    name: str | None = None,
) -> tuple[Run, dict[str, Any]]:
    """The worker fleet on ``workload`` with the scaling rules in ``fleet``; returns the run and its summary."""
    run = Run(name or fleet.mode)
    state = FleetState(desired=fleet.desired, pending=[startup_seconds] * fleet.desired)

    def slots(now: int) -> int:
        if state.pending and state.pending[0] <= now:
            ready = [t for t in state.pending if t <= now]
            state.pending = state.pending[len(ready) :]
            state.in_service += len(ready)
        return state.in_service * fleet.worker_concurrency

    def on_minute(now: int, queue: Queue, in_flight: int) -> None:
        # Billed: every instance that is starting or running during the minute that just ended.
        run.capacity_seconds += state.billed * SECONDS
        signals: dict[str, float | None] = {
            "visible": queue.visible,
            "in_flight": in_flight,
            "oldest_age": queue.oldest_age(now),
            "in_service": state.in_service,
        }
        _scale(fleet, state, signals, now, in_flight, startup_seconds)
        state.billed = state.in_service + len(state.pending)
        run.series["capacity"].append(state.billed)

    queue, in_flight = _run(
        workload, horizon_minutes, run, slots, lambda n: n * job_seconds, 1, 0, fleet.retention_seconds, on_minute
    )
    summary = run.summary(queue, in_flight, horizon_minutes * SECONDS)
    summary["instance_hours"] = round(run.capacity_seconds / 3600, 2)
    summary["peak_instances"] = summary.pop("peak_capacity")
    return run, summary


def _scale(
    fleet: Fleet, state: FleetState, signals: dict[str, float | None], now: int, in_flight: int, startup: int
) -> None:
    """One minute of CloudWatch + Auto Scaling: every rule in ALARM proposes a capacity; out beats in."""
    current = state.in_service + len(state.pending)
    proposals = []
    for rule in fleet.step_rules:
        history = state.history.setdefault(rule.alarm.name, deque(maxlen=HISTORY))
        value = rule.metric.value(signals)
        history.append(value)
        if value is None or not rule.alarm.in_alarm(list(history)):
            continue
        warming = sum(n for t, n in state.launches if now - t < rule.policy.warmup_seconds)
        decision = evaluate_step_policy(
            rule.policy,
            rule.alarm,
            value,
            desired=state.desired,
            minimum=fleet.min_size,
            maximum=fleet.max_size,
            warming=warming,
        )
        proposals.append(decision.desired)
    for tracking in fleet.tracking:
        history = state.history.setdefault(tracking.policy.name, deque(maxlen=HISTORY))
        history.append(tracking.metric.value(signals))
        wanted = tracking.policy.desired(
            list(history), in_service=state.in_service, desired=state.desired, maximum=fleet.max_size
        )
        proposals.append(max(fleet.min_size, wanted))
    ups = [p for p in proposals if p > state.desired]
    downs = [p for p in proposals if p < state.desired]
    if ups:
        state.desired = max(ups)
    elif downs:
        state.desired = min(downs)
    if state.desired > current:
        added = state.desired - current
        state.pending += [now + startup] * added
        state.launches.append((now, added))
        state.launches = [(t, n) for t, n in state.launches if now - t < 3600]
    elif state.desired < current:
        excess = current - state.desired
        cancelled = min(excess, len(state.pending))
        state.pending = state.pending[cancelled:]
        busy_instances = math.ceil(in_flight / fleet.worker_concurrency)
        state.in_service -= min(excess - cancelled, max(0, state.in_service - busy_instances))


@dataclass(frozen=True)
class LambdaScaling:
    """How many batches the event source runs at once, minute by minute."""

    start: int
    ramp: int
    cap: int

    @classmethod
    def of(cls, consumer: LambdaConsumer, provisioned: tuple[int, int] | None = None) -> LambdaScaling:
        pollers = provisioned or consumer.provisioned_pollers
        if pollers:
            low, high = pollers
            return cls(
                low * PROVISIONED_BATCHES_PER_POLLER, PROVISIONED_RAMP_PER_MINUTE, high * PROVISIONED_BATCHES_PER_POLLER
            )
        cap = min(LAMBDA_MAX_CONCURRENCY, consumer.max_concurrency or LAMBDA_MAX_CONCURRENCY)
        return cls(min(LAMBDA_START_CONCURRENCY, cap), LAMBDA_RAMP_PER_MINUTE, cap)


def simulate_lambda(
    consumer: LambdaConsumer,
    workload: Workload,
    *,
    record_seconds: float,
    horizon_minutes: int,
    provisioned: tuple[int, int] | None = None,
) -> tuple[Run, dict[str, Any]]:
    """The Lambda path on ``workload``: the event source's scaling, batches, the batching window."""
    scaling = LambdaScaling.of(consumer, provisioned)
    run = Run("lambda (provisioned)" if provisioned or consumer.provisioned_pollers else "lambda")
    concurrency = [scaling.start]

    def on_minute(now: int, queue: Queue, in_flight: int) -> None:
        if queue.visible:
            concurrency[0] = min(scaling.cap, concurrency[0] + scaling.ramp)
        elif not in_flight:
            concurrency[0] = scaling.start
        run.series["capacity"].append(concurrency[0])

    queue, in_flight = _run(
        workload,
        horizon_minutes,
        run,
        lambda now: concurrency[0],
        lambda n: n * record_seconds,
        consumer.batch_size,
        consumer.batching_window_seconds,
        consumer.retention_seconds,
        on_minute,
    )
    summary = run.summary(queue, in_flight, horizon_minutes * SECONDS)
    summary["peak_concurrency"] = summary.pop("peak_capacity")
    summary["invocations"] = run.invocations
    summary["gb_seconds"] = round(run.busy_seconds * consumer.memory_mb / 1024, 1)
    summary["timeouts_expected"] = math.ceil(consumer.batch_size * record_seconds) > consumer.timeout_seconds
    return run, summary
