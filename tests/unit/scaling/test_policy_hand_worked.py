"""The one scaling rule (tools.scaling.policy) on the policies the stacks really synthesize, against hand-worked cases.

Default configuration (cdk.json): scale_out_thresholds 1/20/100 -> +1/+2/+4, worker_max_instances 4, 2 jobs per
c7g.large, scale-in of one instance after 5 minutes with one spare (300 s cooldown), scale_in_empty_minutes 10;
backlog mode: target = 600 s / 60 s = 10 visible messages per in-service instance.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tools.scaling.policy import TargetTracking, evaluate_step_policy
from tools.scaling.template import Fleet, fleet_from_template


@pytest.fixture(scope="module")
def fleet(templates: dict[str, Template]) -> Fleet:
    return fleet_from_template(templates["WorkerFleetStack"].to_json())


@pytest.fixture(scope="module")
def tracking(synth_with: Any) -> TargetTracking:
    backlog = fleet_from_template(synth_with(scaling_mode="backlog")["WorkerFleetStack"].to_json())
    return backlog.tracking[0].policy


def _scale_out(fleet: Fleet, visible: int, *, desired: int = 0, warming: int = 0) -> int:
    rule = fleet.rule("ScaleOutOnBacklog")
    return evaluate_step_policy(
        rule.policy,
        rule.alarm,
        visible,
        desired=desired,
        minimum=fleet.min_size,
        maximum=fleet.max_size,
        warming=warming,
    ).desired


@pytest.mark.parametrize(
    ("visible", "added"),
    [(1, 1), (19, 1), (20, 2), (25, 2), (99, 2), (100, 4), (5000, 4)],
)
def test_the_single_step_containing_the_backlog_applies(fleet: Fleet, visible: int, added: int) -> None:
    # GIVEN the synthesized scale-out policy (bounds relative to the alarm threshold 1: [0,19) [19,99) [99,inf))
    # WHEN the alarm sees `visible` messages with no instance running
    # THEN exactly one step's adjustment applies: 25 -> +2, not +1 +2 = 3
    assert _scale_out(fleet, visible) == added


def test_no_step_below_the_alarm_threshold(fleet: Fleet) -> None:
    rule = fleet.rule("ScaleOutOnBacklog")
    assert not rule.alarm.breaches(0)
    assert _scale_out(fleet, 0) == 0


def test_worker_max_instances_caps_the_step(fleet: Fleet) -> None:
    # 3 running + 4 for a backlog of 100 = 7, capped at worker_max_instances = 4
    assert fleet.max_size == 4
    assert _scale_out(fleet, 100, desired=3) == 4


def test_instances_in_warm_up_count_against_the_next_step(fleet: Fleet) -> None:
    # GIVEN 2 instances still warming up from the +2 step
    # WHEN the alarm fires again: in the same step nothing is added; in the +4 step only the difference (2)
    assert _scale_out(fleet, 25, desired=2, warming=2) == 2
    assert _scale_out(fleet, 150, desired=2, warming=2) == 4


def test_scale_in_policy_removes_every_instance_when_nothing_is_visible_or_in_flight(fleet: Fleet) -> None:
    rule = fleet.rule("ScaleInWhenIdle")
    # the alarm reads visible + in flight, 10 of 10 one-minute datapoints at or below 0
    assert rule.metric.value({"visible": 0, "in_flight": 0}) == 0
    assert rule.metric.value({"visible": 0, "in_flight": 3}) == 3
    assert (rule.alarm.evaluation_periods, rule.alarm.datapoints_to_alarm) == (10, 10)
    assert not rule.alarm.in_alarm([0.0] * 9)
    assert rule.alarm.in_alarm([0.0] * 10)
    assert not rule.alarm.in_alarm([0.0] * 9 + [1.0])
    # -100 % of 3 instances = -3 -> 0
    decision = evaluate_step_policy(rule.policy, rule.alarm, 0, desired=3, minimum=0, maximum=4)
    assert decision.desired == 0


@pytest.mark.parametrize(
    ("visible", "in_flight", "in_service", "spare"),
    [(0, 2, 2, 1.0), (0, 3, 2, 0.5), (1, 4, 4, 1.5), (0, 0, 4, 4.0), (0, 0, 1, 0.0), (0, 0, 0, 0.0)],
)
def test_spare_capacity_counts_whole_instances_idle_at_the_busiest_second(
    fleet: Fleet, visible: int, in_flight: int, in_service: int, spare: float
) -> None:
    # GIVEN the synthesized spare-capacity alarm: InService - (visible + in flight) / 2 jobs per instance, 0 when
    # one instance or none is in service (the last one goes with ScaleInWhenIdle)
    rule = fleet.rule("ScaleInOnSpareCapacity")
    signals = {"visible": visible, "in_flight": in_flight, "in_service": in_service}
    # THEN 2 instances running 2 jobs have one to spare; 3 jobs leave half of one; a single instance is never spare
    assert rule.metric.value(signals) == spare
    assert rule.alarm.breaches(spare) == (spare >= 1)


def test_spare_capacity_removes_one_instance_after_5_minutes_then_waits_out_its_cooldown(fleet: Fleet) -> None:
    rule = fleet.rule("ScaleInOnSpareCapacity")
    # GIVEN 5 of 5 one-minute datapoints with a spare instance
    assert (rule.alarm.evaluation_periods, rule.alarm.datapoints_to_alarm) == (5, 5)
    assert not rule.alarm.in_alarm([1.5] * 4) and not rule.alarm.in_alarm([1.5] * 4 + [0.5])
    assert rule.alarm.in_alarm([1.5] * 5)
    # WHEN it invokes the simple scaling policy THEN one instance goes: 3 -> 2, and 1 -> 0 at most (never below min)
    assert evaluate_step_policy(rule.policy, rule.alarm, 3.0, desired=3, minimum=0, maximum=4).desired == 2
    # AND after the group's last launch or termination, the policy acts again only once its 300 s cooldown is over
    assert rule.policy.cooling_down(now=1000 + 299, last_activity=1000)
    assert not rule.policy.cooling_down(now=1000 + 300, last_activity=1000)
    # while the step policies never wait for it
    assert not fleet.rule("ScaleOutOnBacklog").policy.cooling_down(now=1001, last_activity=1000)


def test_target_tracking_on_backlog_per_instance(tracking: TargetTracking) -> None:
    # GIVEN target 10 visible messages per in-service instance (600 s acceptable latency / 60 s per job)
    assert tracking.target == 10
    assert tracking.expression == "visible / inservice"
    # WHEN 1 instance sees 25 per instance for 3 minutes THEN ceil(1 x 25 / 10) = 3 instances
    assert tracking.desired([25.0, 25.0, 25.0], in_service=1, desired=1, maximum=4) == 3
    # two datapoints above the target are not enough yet
    assert tracking.desired([25.0, 25.0], in_service=1, desired=1, maximum=4) == 1
    # 80 per instance on 2 instances wants 16, capped at 4
    assert tracking.desired([80.0] * 3, in_service=2, desired=2, maximum=4) == 4
    # 15 minutes at 5 per instance on 2 instances: ceil(2 x 5 / 10) = 1; 14 minutes: no change yet
    assert tracking.desired([5.0] * 15, in_service=2, desired=2, maximum=4) == 1
    assert tracking.desired([5.0] * 14, in_service=2, desired=2, maximum=4) == 2
    # no instance in service: the metric has no data, target tracking decides nothing (StartFromZero does)
    assert tracking.desired([None, None, None], in_service=0, desired=0, maximum=4) == 0


def test_target_tracking_scales_in_gradually(tracking: TargetTracking) -> None:
    # GIVEN 20 in-service instances and 15 minutes at 1 message per instance (proportional value: ceil(20 x 1 / 10))
    quiet = [1.0] * 15
    # THEN one scale-in removes 10 % of the capacity (2), not the 18 the proportional value would remove
    assert tracking.desired(quiet, in_service=20, desired=20, maximum=40) == 18
    # and at least one instance; never below the proportional value
    assert tracking.desired(quiet, in_service=3, desired=3, maximum=40) == 2
    assert tracking.desired([9.0] * 15, in_service=20, desired=20, maximum=40) == 18
    assert tracking.desired([9.5] * 15, in_service=20, desired=20, maximum=40) == 19
