"""The one scaling rule: how CloudWatch alarms and EC2 Auto Scaling policies decide, as AWS documents them.

Everything that needs a scaling decision (the simulator, the demo's scaling line, the cost model through the
simulator, the stack's tests) calls ``evaluate_step_policy`` or ``TargetTracking.desired`` with what
``tools.scaling.template`` read from a synthesized template. Nothing here imports aws_cdk.

AWS behaviour implemented (EC2 Auto Scaling User Guide, "Step and simple scaling policies"; API reference
"StepAdjustment"; CloudWatch User Guide, "Alarm evaluation"):

- An alarm is in ALARM when at least DatapointsToAlarm of the last EvaluationPeriods datapoints breach. While it
  stays in ALARM, CloudWatch invokes an Auto Scaling action again every minute (the exception to "actions on state
  change only").
- Step bounds are relative to the alarm threshold. AWS applies the ONE step whose interval contains
  ``value - threshold``; steps are not summed. For an alarm that fires above its threshold the lower bound is
  inclusive and the upper bound exclusive; for one that fires below, the other way round.
- Adjustment types: ChangeInCapacity (add), ExactCapacity (set), PercentChangeInCapacity (a share of the current
  capacity: between 0 and 1 rounds to 1, above 1 rounds down, between -1 and 0 rounds to -1, below -1 rounds up),
  then MinAdjustmentMagnitude (percent only), then the group's min and max.
- Instance warm-up: instances still warming up from an earlier scale-out count against the next one, so repeated
  breaches in the same step make one scaling activity and a higher step adds only the difference.
- The breach value is the latest datapoint, under the statistic the alarm names (the simulator's ``MetricClock``
  folds a minute's per-second samples into Maximum, Minimum and Average, and delivers the datapoint late).
- Simple scaling (PolicyType SimpleScaling, one ScalingAdjustment): one step that contains every breach. After the
  group launches or terminates instances, a simple policy waits for its Cooldown (default: the group's default
  cooldown, 300 s) before it acts again; step and target tracking policies do not wait for it ("Scaling cooldowns
  for Amazon EC2 Auto Scaling"). ``StepPolicy.cooling_down`` says whether a simple policy is still waiting.
- Scale-in waits for warm-up: while instances are warming up, dynamic scaling does not scale in ("Set the default
  instance warmup for an Auto Scaling group": it "blocks scale-in activities for dynamic scaling until the new
  instances finish warming up").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CHANGE_IN_CAPACITY = "ChangeInCapacity"
EXACT_CAPACITY = "ExactCapacity"
PERCENT_CHANGE_IN_CAPACITY = "PercentChangeInCapacity"
STEP_SCALING, SIMPLE_SCALING = "StepScaling", "SimpleScaling"
DEFAULT_COOLDOWN_SECONDS = 300  # a group's DefaultCooldown when the template sets none
ADJUSTMENT_TYPES = (CHANGE_IN_CAPACITY, EXACT_CAPACITY, PERCENT_CHANGE_IN_CAPACITY)

_ABOVE = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")
_BELOW = ("LessThanThreshold", "LessThanOrEqualToThreshold")

# Target tracking's own alarms for a 1-minute metric (see TargetTracking).
TARGET_TRACKING_OUT_DATAPOINTS = 3
TARGET_TRACKING_IN_DATAPOINTS = 15
# Share of the capacity one target tracking scale-in may remove (at least 1 instance). ASSUMPTION, see below.
TARGET_TRACKING_IN_SHARE = 0.10


@dataclass(frozen=True)
class StepAdjustment:
    """One step: bounds relative to the alarm threshold (None = unbounded) and the adjustment."""

    lower: float | None
    upper: float | None
    adjustment: int

    def contains(self, breach: float, *, above: bool) -> bool:
        lower_ok = self.lower is None or (breach >= self.lower if above else breach > self.lower)
        upper_ok = self.upper is None or (breach < self.upper if above else breach <= self.upper)
        return lower_ok and upper_ok

    def describe(self, threshold: float, *, above: bool = True) -> str:
        low = "-inf" if self.lower is None else f"{threshold + self.lower:g}"
        high = "inf" if self.upper is None else f"{threshold + self.upper:g}"
        brackets = ("[", ")") if above else ("(", "]")
        return f"{brackets[0]}{low}, {high}{brackets[1]} {self.adjustment:+d}"


@dataclass(frozen=True)
class StepPolicy:
    """An AWS::AutoScaling::ScalingPolicy of PolicyType StepScaling, or SimpleScaling (one step, and a cooldown)."""

    name: str
    adjustment_type: str
    steps: tuple[StepAdjustment, ...]
    min_adjustment_magnitude: int | None = None
    warmup_seconds: int = 0
    policy_type: str = STEP_SCALING
    cooldown_seconds: int | None = None  # SimpleScaling only; None: the group's default cooldown

    def __post_init__(self) -> None:
        if self.adjustment_type not in ADJUSTMENT_TYPES:
            raise ValueError(f"{self.name}: AdjustmentType {self.adjustment_type!r} is not one of {ADJUSTMENT_TYPES}")
        if self.policy_type not in (STEP_SCALING, SIMPLE_SCALING):
            raise ValueError(f"{self.name}: PolicyType {self.policy_type!r} is not StepScaling or SimpleScaling")

    def cooling_down(self, now: float, last_activity: float | None) -> bool:
        """True when this is a simple policy and the cooldown after the group's last launch or termination (at
        ``last_activity``, None: none yet) has not ended at ``now``; step policies never wait."""
        if self.policy_type != SIMPLE_SCALING or last_activity is None:
            return False
        cooldown = DEFAULT_COOLDOWN_SECONDS if self.cooldown_seconds is None else self.cooldown_seconds
        return now < last_activity + cooldown


@dataclass(frozen=True)
class Alarm:
    """An AWS::CloudWatch::Alarm as it decides: threshold, comparison, M of N, missing-data treatment."""

    name: str
    threshold: float
    comparison: str
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    treat_missing_data: str = "missing"

    @property
    def fires_above(self) -> bool:
        if self.comparison in _ABOVE:
            return True
        if self.comparison in _BELOW:
            return False
        raise ValueError(f"{self.name}: ComparisonOperator {self.comparison!r} is not supported by the simulator")

    def breaches(self, value: float) -> bool:
        strict = self.comparison in ("GreaterThanThreshold", "LessThanThreshold")
        if self.fires_above:
            return value > self.threshold if strict else value >= self.threshold
        return value < self.threshold if strict else value <= self.threshold

    def in_alarm(self, datapoints: Sequence[float | None]) -> bool:
        """State after the latest of ``datapoints`` (oldest first; None = missing)."""
        needed = self.datapoints_to_alarm or self.evaluation_periods
        if self.treat_missing_data in ("ignore", "missing"):
            # Missing points do not count; the alarm looks at the latest ones it has.
            window = [v for v in datapoints if v is not None][-self.evaluation_periods :]
            if not window:
                return False  # INSUFFICIENT_DATA: no action
        else:
            window = [
                (self.treat_missing_data == "breaching") if v is None else self.breaches(v)
                for v in datapoints[-self.evaluation_periods :]
            ]
            return sum(window) >= needed
        return sum(self.breaches(v) for v in window) >= needed


@dataclass(frozen=True)
class Decision:
    """What one invocation of a step policy does."""

    step: StepAdjustment | None
    desired: int
    change: int

    def explain(self, policy: StepPolicy, alarm: Alarm, value: float, before: int, maximum: int) -> str:
        step = (
            "no step contains it"
            if self.step is None
            else f"step {self.step.describe(alarm.threshold, above=alarm.fires_above)}"
        )
        return (
            f"{alarm.name}: metric {value:g} vs threshold {alarm.threshold:g}: {step} ({policy.adjustment_type}); "
            f"desired {before} -> {self.desired} (max {maximum})"
        )


def select_step(policy: StepPolicy, alarm: Alarm, value: float) -> StepAdjustment | None:
    """The single step whose interval contains the breach (value - threshold), or None."""
    breach = value - alarm.threshold
    for step in policy.steps:
        if step.contains(breach, above=alarm.fires_above):
            return step
    return None


def capacity_change(policy: StepPolicy, adjustment: int, current: int) -> int:
    """Instances to add (negative: remove) for ``adjustment`` under the policy's adjustment type."""
    if policy.adjustment_type == CHANGE_IN_CAPACITY:
        return adjustment
    if policy.adjustment_type == EXACT_CAPACITY:
        return adjustment - current
    raw = current * adjustment / 100
    if 0 < raw < 1:
        change = 1
    elif -1 < raw < 0:
        change = -1
    else:
        change = math.floor(raw) if raw > 0 else math.ceil(raw)
    if policy.min_adjustment_magnitude and change != 0 and abs(change) < policy.min_adjustment_magnitude:
        change = policy.min_adjustment_magnitude if change > 0 else -policy.min_adjustment_magnitude
    return change


def evaluate_step_policy(
    policy: StepPolicy,
    alarm: Alarm,
    value: float,
    *,
    desired: int,
    minimum: int,
    maximum: int,
    warming: int = 0,
) -> Decision:
    """The group's new desired capacity when ``alarm`` (in ALARM, latest datapoint ``value``) invokes ``policy``.

    ``desired`` is the group's desired capacity now; ``warming`` the instances this policy launched that are still
    within its warm-up (they count against a further scale-out).
    """
    step = select_step(policy, alarm, value)
    if step is None:
        return Decision(None, desired, 0)
    change = capacity_change(policy, step.adjustment, desired)
    if change > 0 and policy.adjustment_type == CHANGE_IN_CAPACITY:
        change = max(0, change - warming)
    new = min(maximum, max(minimum, desired + change))
    return Decision(step, new, new - desired)


@dataclass(frozen=True)
class TargetTracking:
    """An AWS::AutoScaling::ScalingPolicy of PolicyType TargetTrackingScaling on a customized metric.

    AWS creates and manages the alarms of a target tracking policy; their settings are not in the template. The
    approximation here: for a 1-minute metric, scale out after 3 consecutive datapoints above the target and scale
    in after 15 consecutive datapoints below it (the alarms AWS creates, AlarmHigh 3 of 3 and AlarmLow 15 of 15,
    as the EC2 Auto Scaling console shows them); scale-out goes to the proportional capacity, ceil(capacity x
    metric / target), as the user guide describes ("adds or removes capacity as required to keep the metric at, or
    close to, the specified target value"). Scale-in is gradual: the guide says a target tracking policy is more
    aggressive in adding capacity than in removing it, and gives no formula. The approximation: one scale-in
    removes at most ``TARGET_TRACKING_IN_SHARE`` (10 %) of the capacity, at least 1 instance, never below the
    proportional value, and the low alarm needs 15 new datapoints before the next one (the simulator clears its
    history after a scale-in). No data (no instance in service) means no decision.
    """

    name: str
    target: float
    expression: str
    warmup_seconds: int = 0

    def desired(self, recent: Sequence[float | None], *, in_service: int, desired: int, maximum: int) -> int:
        """The new desired capacity after the latest of ``recent`` datapoints (oldest first)."""
        latest = recent[-1] if recent else None
        if latest is None or in_service == 0:
            return desired
        wanted = math.ceil(in_service * latest / self.target - 1e-9)
        out = recent[-TARGET_TRACKING_OUT_DATAPOINTS:]
        if len(out) == TARGET_TRACKING_OUT_DATAPOINTS and all(v is not None and v > self.target for v in out):
            return min(maximum, max(desired, wanted))
        back = recent[-TARGET_TRACKING_IN_DATAPOINTS:]
        if len(back) == TARGET_TRACKING_IN_DATAPOINTS and all(v is not None and v < self.target for v in back):
            step = max(1, math.ceil(desired * TARGET_TRACKING_IN_SHARE))
            return max(0, min(desired, max(wanted, desired - step)))
        return desired
