"""Second by second: the queue, its consumers, and the scaling the template deploys, on AWS's clock.

The queue: messages arrive (``Workload``; a burst arrives in second 0), wait visible, are received (in flight, not
visible) for the job's duration, then deleted. A job that fails (``fail_fraction``) is not deleted: it is visible
again when its visibility timeout ends, and after the queue's maxReceiveCount receives SQS moves it to the
dead-letter queue.

CloudWatch, as AWS keeps time (see ``MetricClock``): every minute one datapoint per metric, whose Maximum, Minimum
and Average are over the minute's per-second samples (taken after that second's arrivals and receives, so a
message received within the second it arrives is never seen, and a backlog that lasts 20 s is), delivered
``metric_delay_seconds`` after the minute ends. Alarms and policies decide at the first minute boundary at which a
new datapoint is there, through ``tools.scaling.policy``, the one rule.

Two consumers:
- the fleet (``simulate_fleet``): an instance launched at second t is InService at t + ``IN_SERVICE_SECONDS`` (the stack
  has no launch lifecycle hook, so it is InService while user data still runs), and receives its first job at t +
  ``startup_seconds`` (boot plus user data), then runs ``worker_concurrency`` jobs at once. The group's warm-up
  (DefaultInstanceWarmup, or the policy's EstimatedInstanceWarmup) counts from InService, and no scale-in happens while
  an instance warms up. A busy worker protects itself from scale-in
  (``sqs_decoupling.worker_fleet.worker.autoscaling``), so scale-in takes starting or idle instances only.
  APPROXIMATION: jobs count as packed on the fewest instances (ceil(jobs / worker_concurrency) are busy), where real
  workers each poll and an instance whose last job ends loses its protection 30 s later (ScaleInGuard's idle time). An
  idle worker completes the termination lifecycle hook at once, so a termination ends when it starts, and a simple
  scaling policy's cooldown counts from then (or from the InService of the last launch). With a warm pool
  (``AWS::AutoScaling::WarmPool`` in the template, or ``warm_pool=``), scale-outs draw prepared instances first, which
  start in ``WARM_START_SECONDS`` of their pool state;
- Lambda (``simulate_lambda``): the SQS event source's documented scaling (``LambdaScaling``), batches of up to
  BatchSize records run one after the other inside one invocation, a partial batch waits for the batching window.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.scaling.policy import TARGET_TRACKING_IN_DATAPOINTS, evaluate_step_policy
from tools.scaling.template import Fleet, LambdaConsumer, WarmPool
from tools.scaling.workload import Workload

SECONDS = 60
HISTORY = max(TARGET_TRACKING_IN_DATAPOINTS, 60)  # datapoints an alarm may look back on

# Metric delivery: SQS sends its queue metrics to CloudWatch at one-minute intervals (Amazon SQS Developer Guide,
# "Available CloudWatch metrics for Amazon SQS"), and an alarm evaluates the latest complete period once it is
# there (CloudWatch User Guide, "Alarm evaluation": an alarm on a metric delivered late can take a few minutes to
# react). ASSUMPTION: the datapoint of minute m is there 60 s after the minute ends, so the earliest reaction to
# a backlog that appears in minute m is at the start of minute m + 2. Calibrate with --metric-delay-seconds.
DEFAULT_METRIC_DELAY_SECONDS = 60
# Launch to first receive: EC2 boot of Amazon Linux 2023 plus the user data (dnf installs python3.11 and the CloudWatch
# agent, downloads and unpacks the worker's assets, starts the service). ASSUMPTION, not measured here (no AWS
# account): 120 s. Measure it as docs/scaling-and-cost.md says (Auto Scaling activity history + the worker's first log
# line) and pass --startup-seconds.
DEFAULT_STARTUP_SECONDS = 120
# EC2's pending -> running; with no launch lifecycle hook the group puts the instance InService then, while user
# data still runs. ASSUMPTION: 30 s (capped at the start-up time).
IN_SERVICE_SECONDS = 30
# A warm start: a prepared instance leaving the pool has run its user data already; it only starts (Stopped,
# Hibernated) or is handed over (Running) and the worker's systemd unit starts. ASSUMPTIONS, after the EC2 Auto
# Scaling User Guide's "Warm pools" page (pre-initialized instances, "warm start") and the AWS Compute blog
# "Scaling your applications faster with EC2 Auto Scaling Warm Pools", which give no figure for a given AMI:
# Stopped 40 s (an EBS-backed instance start), Hibernated 40 s, Running 10 s. Calibrate with --warm-start-seconds.
WARM_START_SECONDS = {"Stopped": 40, "Hibernated": 40, "Running": 10}

# Lambda's SQS scaling, "Configuring scaling behavior for SQS event source mappings" (AWS Lambda Developer Guide,
# docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html, checked 2026-12): standard queues start with 5
# concurrent invokes and add up to 300 per minute while messages remain, up to 1,250, capped by the mapping's
# MaximumConcurrency.
LAMBDA_START_CONCURRENCY = 5
LAMBDA_RAMP_PER_MINUTE = 300
LAMBDA_MAX_CONCURRENCY = 1250
# Provisioned mode (ProvisionedPollerConfig MinimumPollers/MaximumPollers, exclusive with MaximumConcurrency): the
# same page and the AWS News Blog announcing it: "3 times faster scaling", up to 1,000 more concurrent executions
# per minute, up to 20,000; each event poller handles up to 10 concurrent invokes. Minimum pollers are kept ready.
PROVISIONED_BATCHES_PER_POLLER = 10
PROVISIONED_RAMP_PER_MINUTE = 1000
PROVISIONED_MAX_CONCURRENCY = 20_000


class Queue:
    """Visible messages as [arrival second, count, receives] cohorts, oldest first: new ones, and those visible again
    after a failed receive. Also the messages waiting out a visibility timeout, and the first-receive waits."""

    def __init__(self, *, visibility_seconds: int = 30, max_receives: int | None = None) -> None:
        self.fresh: deque[list[int]] = deque()
        self.again: deque[list[int]] = deque()
        self.hidden: list[tuple[int, int, int, int]] = []  # heap of (visible again at, arrival, count, receives)
        self.hidden_count = 0
        self.visible = 0
        self.dead_lettered = 0
        self.waits: dict[int, int] = {}  # seconds waited before the first receive -> jobs
        self.visibility_seconds = visibility_seconds
        self.max_receives = max_receives

    def arrive(self, second: int, count: int) -> None:
        if count:
            self.fresh.append([second, count, 0])
            self.visible += count

    def oldest_age(self, now: int) -> int:
        fresh, again = self.fresh, self.again
        if fresh and again:
            return now - min(fresh[0][0], again[0][0])
        if fresh or again:
            return now - (fresh or again)[0][0]
        return 0

    def expire(self, now: int, retention: int) -> int:
        """SQS deletes a message older than the queue's retention period, received or not: lost."""
        expired = 0
        for cohorts in (self.fresh, self.again):
            while cohorts and now - cohorts[0][0] > retention:
                expired += cohorts.popleft()[1]
        self.visible -= expired
        return expired

    def reappear(self, now: int) -> None:
        """Failed messages whose visibility timeout ended: visible again, or to the DLQ after maxReceiveCount."""
        while self.hidden and self.hidden[0][0] <= now:
            _, arrival, count, receives = heapq.heappop(self.hidden)
            self.hidden_count -= count
            if self.max_receives is not None and receives >= self.max_receives:
                self.dead_lettered += count
            else:
                self.again.append([arrival, count, receives])
                self.visible += count

    def take(self, now: int, wanted: int) -> list[list[int]]:
        """Receive up to ``wanted`` messages, oldest first: [arrival, count, receives before this one] parts."""
        parts, taken = [], 0
        while taken < wanted and (self.fresh or self.again):
            older_fresh = self.fresh and (not self.again or self.fresh[0][0] <= self.again[0][0])
            cohorts = self.fresh if older_fresh else self.again
            cohort = cohorts[0]
            k = min(wanted - taken, cohort[1])
            if cohort[2] == 0:
                self.waits[now - cohort[0]] = self.waits.get(now - cohort[0], 0) + k
            parts.append([cohort[0], k, cohort[2]])
            cohort[1] -= k
            taken += k
            if cohort[1] == 0:
                cohorts.popleft()
        self.visible -= taken
        return parts

    def hide(self, visible_at: int, arrival: int, count: int, receives: int) -> None:
        heapq.heappush(self.hidden, (visible_at, arrival, count, receives))
        self.hidden_count += count


@dataclass
class Failures:
    """A share of jobs that fail transiently (spread evenly: every 1/share-th received job fails)."""

    share: float = 0.0
    carried: float = 0.0

    def of(self, count: int) -> int:
        self.carried += count * self.share
        failed = min(count, math.floor(self.carried + 1e-9))
        self.carried -= failed
        return failed


@dataclass
class Run:
    """The series and counters of one simulated consumer."""

    name: str
    jobs_in: int = 0
    jobs_done: int = 0
    jobs_expired: int = 0
    series: dict[str, list[float]] = field(
        default_factory=lambda: {"visible": [], "in_flight": [], "capacity": [], "oldest_age": [], "busy": []}
    )
    capacity_seconds: float = 0.0  # instance-seconds billed (fleet)
    busy_seconds: float = 0.0  # seconds consumers spent on jobs (Lambda: billed duration)
    invocations: int = 0
    drained_at: int | None = None
    failed_receives: int = 0
    first_receive_at: int | None = None

    def summary(self, queue: Queue, in_flight: int, end: int) -> dict[str, Any]:
        for cohorts in (queue.fresh, queue.again):  # jobs never started count with their wait so far (a lower bound)
            for cohort in cohorts:
                if cohort[2] == 0:
                    queue.waits[end - cohort[0]] = queue.waits.get(end - cohort[0], 0) + cohort[1]
        return {
            "jobs_in": self.jobs_in,
            "jobs_done": self.jobs_done,
            "jobs_in_flight_at_end": in_flight,
            "jobs_not_started": queue.visible,
            "jobs_expired": self.jobs_expired,
            "jobs_dead_lettered": queue.dead_lettered,
            "failed_receives": self.failed_receives,
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


class MetricClock:
    """Per-second samples of each signal, folded into one datapoint per minute and per statistic, delivered
    ``delay`` seconds after the minute ends.

    The minute's samples are folded as they come (maximum, minimum, total, count, last) rather than kept: the values
    are integers, so the total, and the Average it gives, are exactly those of the per-second list."""

    def __init__(self, delay: int, signals: tuple[str, ...] = ("visible", "in_flight", "oldest_age")) -> None:
        self.delay = delay
        self.signals = signals
        self.folded: list[list[int] | None] = [None] * len(signals)  # per signal: [max, min, total, count, last]
        self.published: list[tuple[int, dict[str, dict[str, float]]]] = []  # (deliverable at, datapoint)
        self.delivered = 0

    def sample(self, *signals: int, seconds: int = 1, ageing: int | None = None) -> None:
        """The signals' values (in the order of ``signals``) at one second, or at each of ``seconds`` seconds in
        which they did not change, but for the one at index ``ageing``, which grows by one a second."""
        if len(signals) != len(self.signals):
            raise ValueError(f"{len(signals)} values for the {len(self.signals)} signals {self.signals}")
        folded = self.folded
        for index, value in enumerate(signals):
            if index == ageing and seconds > 1:  # value, value + 1, ..., value + seconds - 1
                low, high, total = value, value + seconds - 1, seconds * (2 * value + seconds - 1) // 2
            else:
                low = high = value
                total = value * seconds
            minute = folded[index]
            if minute is None:
                folded[index] = [high, low, total, seconds, high]
            else:
                if high > minute[0]:
                    minute[0] = high
                if low < minute[1]:
                    minute[1] = low
                minute[2] += total
                minute[3] += seconds
                minute[4] = high

    def close_minute(self, end: int) -> None:
        datapoint = {
            name: {
                "Maximum": minute[0],
                "Minimum": minute[1],
                "Average": minute[2] / minute[3],
                "Sum": minute[4],
                "SampleCount": 1,
            }
            for name, minute in zip(self.signals, self.folded, strict=True)
            if minute is not None
        }
        self.published.append((end + self.delay, datapoint))
        self.folded = [None] * len(self.signals)

    def new_datapoints(self, now: int) -> list[dict[str, dict[str, float]]]:
        """Datapoints delivered since the last call (in order)."""
        fresh = []
        while self.delivered < len(self.published) and self.published[self.delivered][0] <= now:
            fresh.append(self.published[self.delivered][1])
            self.delivered += 1
        return fresh


def _run(
    workload: Workload,
    horizon_minutes: int,
    run: Run,
    slots: Callable[[int], int],
    service_seconds: Callable[[int], float],
    batch: int,
    batch_window: int,
    retention: int,
    on_minute: Callable[[int, Queue, int], None],  # (second, queue, batches running)
    queue: Queue,
    failures: Failures,
    clock: MetricClock,
    in_service: Callable[[int], tuple[int, int]] | None = None,
) -> tuple[Queue, int]:
    """The shared engine: ``slots(now)`` consumers take batches of up to ``batch``; ``on_minute`` scales.
    ``in_service(now)``: the fleet's InService instances, sampled as a fourth signal, and the second they change."""
    running: list[tuple[int, int, int]] = []  # heap of (finish second, messages, of which succeed)
    in_slots = 0  # messages being worked on that will succeed (failing ones are in queue.hidden)
    last_arrival = max((m for m, n in enumerate(workload.arrivals) if n), default=-1)
    for minute in range(horizon_minutes):
        arrivals = workload.arrivals[minute] if minute < len(workload.arrivals) else 0
        run.jobs_in += arrivals
        start = minute * SECONDS
        at_once = workload.at_once if minute == 0 else 0
        spread = arrivals - at_once
        arriving = [_arrivals_in_second(spread, second) for second in range(SECONDS)] if spread else [0] * SECONDS
        arriving[0] += at_once
        next_arrival = _next_arrivals(start, arriving)
        busy_sum = 0
        now = start
        while now < start + SECONDS:
            if arriving[now - start]:
                queue.arrive(now, arriving[now - start])
            if queue.hidden and queue.hidden[0][0] <= now:
                queue.reappear(now)
            while running and running[0][0] <= now:
                _, _, ok = heapq.heappop(running)
                in_slots -= ok
                run.jobs_done += ok
            free = slots(now) - len(running)
            while free > 0 and queue.visible:
                if queue.visible < batch and queue.oldest_age(now) < batch_window:
                    break  # a partial batch waits for the batching window
                in_slots += _receive(now, queue, batch, service_seconds, failures, running, run)
                free -= 1
            # Until the next arrival, reappearance, finish or change of the fleet, the queue only ages: the seconds
            # up to it are sampled at once (the same samples, one per second, as a second-by-second loop takes).
            age = queue.oldest_age(now)
            quiet = _quiet_seconds(now, next_arrival[now - start], queue, running)
            if free > 0 and queue.visible:  # a partial batch waits until the oldest message is batch_window old
                quiet = min(quiet, batch_window - age)
            ageing = 2 if queue.visible else None
            if in_service is not None:
                count, changes_at = in_service(now)
                quiet = max(1, min(quiet, changes_at - now))
                clock.sample(queue.visible, in_slots + queue.hidden_count, age, count, seconds=quiet, ageing=ageing)
            else:
                quiet = max(1, quiet)
                clock.sample(queue.visible, in_slots + queue.hidden_count, age, seconds=quiet, ageing=ageing)
            busy_sum += len(running) * quiet
            if run.drained_at is None and not (queue.visible or running or queue.hidden):
                drained = max(now, last_arrival * SECONDS + SECONDS - 1)
                if drained < now + quiet:
                    run.drained_at = drained
            now += quiet
        end = start + SECONDS
        run.jobs_expired += queue.expire(end, retention)
        clock.close_minute(end)
        run.series["visible"].append(queue.visible)
        run.series["in_flight"].append(in_slots + queue.hidden_count)
        run.series["oldest_age"].append(queue.oldest_age(end))
        run.series["busy"].append(busy_sum / SECONDS)
        on_minute(end, queue, len(running))
    return queue, in_slots + queue.hidden_count


def _next_arrivals(start: int, arriving: list[int]) -> list[int]:
    """For each second of the minute that began at ``start``: the next second with an arrival, or the minute's end."""
    following, next_arrival = start + SECONDS, [0] * SECONDS
    for offset in range(SECONDS - 1, -1, -1):
        next_arrival[offset] = following
        if arriving[offset]:
            following = start + offset
    return next_arrival


def _quiet_seconds(now: int, next_arrival: int, queue: Queue, running: list[tuple[int, int, int]]) -> int:
    """Seconds from ``now`` to the next second at which something happens (at least 1): an arrival, a failed message
    visible again, a batch finishing, or the minute's end (``next_arrival`` is the first arrival or the end)."""
    quiet = next_arrival - now
    if queue.hidden:
        quiet = min(quiet, queue.hidden[0][0] - now)
    if running:
        quiet = min(quiet, running[0][0] - now)
    return quiet


def _receive(
    now: int,
    queue: Queue,
    batch: int,
    service_seconds: Callable[[int], float],
    failures: Failures,
    running: list[tuple[int, int, int]],
    run: Run,
) -> int:
    """One consumer receives a batch at ``now`` and starts on it; returns how many of its messages will succeed."""
    parts = queue.take(now, batch)
    if run.first_receive_at is None:
        run.first_receive_at = now
    n = sum(p[1] for p in parts)
    seconds = service_seconds(n)
    finish = now + max(1, math.ceil(seconds))
    failed = failures.of(n)
    run.failed_receives += failed
    left = failed
    for arrival, count, receives in parts:
        if left <= 0:
            break
        k = min(left, count)
        # not deleted: visible again when the visibility timeout that started at the receive ends
        queue.hide(max(finish, now + queue.visibility_seconds), arrival, k, receives + 1)
        left -= k
    heapq.heappush(running, (finish, n, n - failed))
    run.busy_seconds += seconds
    run.invocations += 1
    return n - failed  # the failing ones are counted as hidden already


@dataclass
class Instance:
    launched: int
    in_service_at: int
    ready_at: int
    warm: bool = False


@dataclass
class FleetState:
    """The group: desired capacity, its instances (launch, InService and first-receive seconds), the warm pool's
    prepared instances (the second each is ready in the pool), and the alarms' datapoint histories."""

    desired: int
    instances: list[Instance] = field(default_factory=list)
    pool: list[int] = field(default_factory=list)
    history: dict[str, deque[float | None]] = field(default_factory=dict)
    warm_starts: int = 0
    pool_seconds: float = 0.0
    last_activity: int | None = None  # when the last launch finished (InService) or the last termination was
    _cache: tuple[int, int, int, int] = (-1, 0, 0, -1)  # (valid until, in service, ready, computed at)

    def counts(self, now: int) -> tuple[int, int]:
        """(InService instances, instances that have started their worker) at second ``now``."""
        valid_until, in_service, ready, computed_at = self._cache
        if computed_at <= now < valid_until:
            return in_service, ready
        in_service = sum(1 for i in self.instances if i.in_service_at <= now)
        ready = sum(1 for i in self.instances if i.ready_at <= now)
        later = [t for i in self.instances for t in (i.in_service_at, i.ready_at) if t > now]
        self._cache = (min(later, default=1 << 62), in_service, ready, now)
        return in_service, ready

    def in_service(self, now: int) -> tuple[int, int]:
        """(InService instances at second ``now``, the next second at which the counts change)."""
        in_service, _ = self.counts(now)
        return in_service, self._cache[0]

    def changed(self) -> None:
        self._cache = (-1, 0, 0, -1)


def simulate_fleet(
    fleet: Fleet,
    workload: Workload,
    *,
    job_seconds: float,
    startup_seconds: int | None = None,
    horizon_minutes: int,
    name: str | None = None,
    metric_delay_seconds: int = DEFAULT_METRIC_DELAY_SECONDS,
    warm_pool: WarmPool | None = None,
    warm_start_seconds: int | None = None,
    fail_fraction: float = 0.0,
) -> tuple[Run, dict[str, Any]]:
    """The worker fleet on ``workload`` with the scaling rules in ``fleet``; returns the run and its summary.

    ``startup_seconds``: launch to first receive (default ``DEFAULT_STARTUP_SECONDS``); ``warm_pool``: simulate
    this warm pool instead of the template's (``fleet.warm_pool``); ``warm_start_seconds``: a warm start's
    duration (default ``WARM_START_SECONDS`` of the pool's state).
    """
    startup = DEFAULT_STARTUP_SECONDS if startup_seconds is None else startup_seconds
    pool = warm_pool or fleet.warm_pool
    warm_start = (
        warm_start_seconds
        if warm_start_seconds is not None
        else WARM_START_SECONDS.get(pool.pool_state, WARM_START_SECONDS["Stopped"])
        if pool
        else startup
    )
    run = Run(name or fleet.mode)
    state = FleetState(desired=fleet.desired)
    timing = _Timing(startup, min(warm_start, startup), metric_delay_seconds)
    long_ago = -(1 << 40)  # the group's desired capacity at the start: running and warmed up already
    state.instances = [Instance(long_ago, long_ago, long_ago) for _ in range(fleet.desired)]
    if pool:
        state.pool = [0] * pool.size(fleet.desired, fleet.max_size)
    clock = MetricClock(metric_delay_seconds, ("visible", "in_flight", "oldest_age", "in_service"))

    def slots(now: int) -> int:
        return state.counts(now)[1] * fleet.worker_concurrency

    def on_minute(now: int, queue: Queue, busy_jobs: int) -> None:
        # Billed: every instance that ran during the minute that just ended (launches and terminations happen
        # at minute boundaries, after this line).
        run.capacity_seconds += len(state.instances) * SECONDS
        state.pool_seconds += len(state.pool) * SECONDS
        for datapoint in clock.new_datapoints(now):
            _scale(fleet, state, datapoint, now, busy_jobs, timing, pool)
        run.series["capacity"].append(len(state.instances))

    queue = Queue(visibility_seconds=fleet.visibility_timeout_seconds, max_receives=fleet.max_receive_count)
    queue, in_flight = _run(
        workload,
        horizon_minutes,
        run,
        slots,
        lambda n: n * job_seconds,
        1,
        0,
        fleet.retention_seconds,
        on_minute,
        queue,
        Failures(fail_fraction),
        clock,
        state.in_service,
    )
    summary = run.summary(queue, in_flight, horizon_minutes * SECONDS)
    summary["instance_hours"] = round(run.capacity_seconds / 3600, 2)
    summary["peak_instances"] = summary.pop("peak_capacity")
    # From the first arrival to the first job an instance receives (from an empty group: metric delay, the
    # alarm's reaction and the instance's start-up).
    first_arrival = next((m * SECONDS for m, n in enumerate(workload.arrivals) if n), None)
    summary["scale_out_delay_seconds"] = (
        None if first_arrival is None or run.first_receive_at is None else run.first_receive_at - first_arrival
    )
    summary.update(
        startup_seconds=startup,
        metric_delay_seconds=metric_delay_seconds,
        warm_pool=None if pool is None else {**dataclasses.asdict(pool), "warm_start_seconds": timing.warm},
        warm_starts=state.warm_starts,
        warm_pool_instance_hours=round(state.pool_seconds / 3600, 2),
    )
    return run, summary


@dataclass(frozen=True)
class _Timing:
    startup: int
    warm: int
    metric_delay: int

    def cold(self, now: int) -> Instance:
        return Instance(now, now + min(IN_SERVICE_SECONDS, self.startup), now + self.startup)

    def from_pool(self, now: int) -> Instance:
        return Instance(now, now + min(IN_SERVICE_SECONDS, self.warm), now + self.warm, warm=True)


def _scale(
    fleet: Fleet,
    state: FleetState,
    datapoint: dict[str, Any],
    now: int,
    busy_jobs: int,
    timing: _Timing,
    pool: WarmPool | None,
) -> None:
    """One new datapoint of CloudWatch + Auto Scaling: every rule in ALARM proposes a capacity; out beats in."""
    proposals = _proposals(fleet, state, datapoint, now)
    ups = [p for p, _ in proposals if p > state.desired]
    downs = [(p, source) for p, source in proposals if p < state.desired]
    # No scale-in while an instance warms up (EC2 Auto Scaling User Guide, "Set the default instance warmup").
    warming = any(now < i.in_service_at + _warmup(fleet) for i in state.instances)
    if ups:
        state.desired = max(ups)
    elif downs and not warming:
        state.desired, source = min(downs)
        if source is not None:
            state.history[source].clear()  # the low alarm needs its datapoints again before the next step in
    _resize(fleet, state, now, busy_jobs, timing, pool)


def _warmup(fleet: Fleet) -> int:
    """The longest warm-up an instance of the group may have: the group's default or a policy's own."""
    policies = [r.policy.warmup_seconds for r in fleet.step_rules] + [t.policy.warmup_seconds for t in fleet.tracking]
    return max([fleet.default_warmup_seconds, *policies])


def _proposals(fleet: Fleet, state: FleetState, datapoint: dict[str, Any], now: int) -> list[tuple[int, str | None]]:
    """The desired capacity each rule in ALARM asks for (with the target tracking policy's name, else None)."""
    in_service, _ = state.counts(now)
    proposals: list[tuple[int, str | None]] = []
    for rule in fleet.step_rules:
        history = state.history.setdefault(rule.alarm.name, deque(maxlen=HISTORY))
        value = rule.metric.value(datapoint)
        history.append(value)
        if value is None or not rule.alarm.in_alarm(list(history)):
            continue
        if rule.policy.cooling_down(now, state.last_activity):
            continue  # a simple policy waits out its cooldown after the group's last launch or termination
        warmup = rule.policy.warmup_seconds or fleet.default_warmup_seconds
        # The warm-up counts from InService (default instance warm-up, EC2 Auto Scaling User Guide).
        warming = sum(1 for i in state.instances if now < i.in_service_at + warmup)
        decision = evaluate_step_policy(
            rule.policy,
            rule.alarm,
            value,
            desired=state.desired,
            minimum=fleet.min_size,
            maximum=fleet.max_size,
            warming=warming,
        )
        proposals.append((decision.desired, None))
    for tracking in fleet.tracking:
        history = state.history.setdefault(tracking.policy.name, deque(maxlen=HISTORY))
        history.append(tracking.metric.value(datapoint))
        wanted = tracking.policy.desired(
            list(history), in_service=in_service, desired=state.desired, maximum=fleet.max_size
        )
        proposals.append((max(fleet.min_size, wanted), tracking.policy.name))
    return proposals


def _resize(fleet: Fleet, state: FleetState, now: int, busy_jobs: int, timing: _Timing, pool: WarmPool | None) -> None:
    """Launch (warm pool first) or terminate instances until the group has its desired capacity, as far as scale-in
    protection lets it: a busy worker is protected, so only starting and idle instances go."""
    current = len(state.instances)
    _, ready = state.counts(now)
    if state.desired > current:
        prepared = [t for t in state.pool if t <= now]
        warm = min(state.desired - current, len(prepared))
        for t in prepared[:warm]:
            state.pool.remove(t)
        state.instances += [timing.from_pool(now) for _ in range(warm)]
        state.instances += [timing.cold(now) for _ in range(state.desired - current - warm)]
        state.warm_starts += warm
        state.last_activity = max(i.in_service_at for i in state.instances)
    elif state.desired < current:
        # Starting instances go first (newest first), then idle ones; a busy worker is protected from scale-in.
        excess = current - state.desired
        starting = sorted((i for i in state.instances if i.ready_at > now), key=lambda i: -i.launched)[:excess]
        idle_ready = max(0, ready - math.ceil(busy_jobs / fleet.worker_concurrency))
        ready_ones = [i for i in state.instances if i.ready_at <= now][: min(excess - len(starting), idle_ready)]
        gone = {id(i) for i in [*starting, *ready_ones]}
        state.instances = [i for i in state.instances if id(i) not in gone]
        if gone:
            # An idle worker completes the termination lifecycle hook at once, so the termination ends now.
            state.last_activity = now
    if pool:
        target = pool.size(state.desired, fleet.max_size)
        if len(state.pool) < target:  # Auto Scaling launches new instances into the pool; they run user data first
            state.pool += [now + timing.startup] * (target - len(state.pool))
        del state.pool[target:]
    state.changed()


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
            cap = min(PROVISIONED_MAX_CONCURRENCY, high * PROVISIONED_BATCHES_PER_POLLER)
            return cls(min(cap, low * PROVISIONED_BATCHES_PER_POLLER), PROVISIONED_RAMP_PER_MINUTE, cap)
        cap = min(LAMBDA_MAX_CONCURRENCY, consumer.max_concurrency or LAMBDA_MAX_CONCURRENCY)
        return cls(min(LAMBDA_START_CONCURRENCY, cap), LAMBDA_RAMP_PER_MINUTE, cap)


def simulate_lambda(
    consumer: LambdaConsumer,
    workload: Workload,
    *,
    record_seconds: float,
    horizon_minutes: int,
    provisioned: tuple[int, int] | None = None,
    fail_fraction: float = 0.0,
) -> tuple[Run, dict[str, Any]]:
    """The Lambda path on ``workload``: the event source's scaling, batches, the batching window.

    ``provisioned`` (MIN, MAX pollers) overrides the template's ProvisionedPollerConfig (read when present).
    """
    scaling = LambdaScaling.of(consumer, provisioned)
    run = Run("lambda (provisioned)" if provisioned or consumer.provisioned_pollers else "lambda")
    concurrency = [scaling.start]

    def on_minute(now: int, queue: Queue, running: int) -> None:
        if queue.visible:
            concurrency[0] = min(scaling.cap, concurrency[0] + scaling.ramp)
        elif not running:
            concurrency[0] = scaling.start
        run.series["capacity"].append(concurrency[0])

    queue = Queue(visibility_seconds=consumer.visibility_timeout_seconds, max_receives=consumer.max_receive_count)
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
        queue,
        Failures(fail_fraction),
        MetricClock(0),
    )
    summary = run.summary(queue, in_flight, horizon_minutes * SECONDS)
    summary["peak_concurrency"] = summary.pop("peak_capacity")
    summary["peak_batches_running"] = math.ceil(max(run.series["busy"], default=0))  # per-minute average
    summary["invocations"] = run.invocations
    summary["gb_seconds"] = round(run.busy_seconds * consumer.memory_mb / 1024, 1)
    summary["timeouts_expected"] = math.ceil(consumer.batch_size * record_seconds) > consumer.timeout_seconds
    return run, summary
