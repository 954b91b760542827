"""The simulator on the synthesized fleet and pipeline: hand-worked timelines, conservation, and proof that it
reads the template (other thresholds, other result)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SynthesizedApp, synthesize
from tools.scaling import simulate
from tools.scaling.__main__ import main
from tools.scaling.simulate import DEFAULT_STARTUP_SECONDS, WARM_START_SECONDS, simulate_fleet, simulate_lambda
from tools.scaling.template import (
    FLEET_STACK,
    PIPELINE_STACK,
    Fleet,
    LambdaConsumer,
    WarmPool,
    fleet_from_template,
    lambda_from_template,
    load_template,
    read_fleet,
    read_lambda,
)
from tools.scaling.workload import Workload, build

STARTUP = DEFAULT_STARTUP_SECONDS  # 120 s launch to first receive; InService at 30 s; warm-up 180 s from InService


@pytest.fixture(scope="module")
def fleet(synthesized: SynthesizedApp) -> Fleet:
    return read_fleet(synthesized.outdir)


@pytest.fixture(scope="module")
def backlog_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app synthesized with -c scaling_mode=backlog."""
    return synthesize(
        tmp_path_factory.mktemp("backlog"),
        {"scaling_mode": "backlog"},
        control_tower_checks=False,
        stacks=["WorkerFleetStack"],
    ).outdir


@pytest.fixture(scope="module")
def consumer(synthesized: SynthesizedApp) -> LambdaConsumer:
    return read_lambda(synthesized.outdir)


def _fleet_run(fleet: Fleet, workload: Workload, job_seconds: float = 60, minutes: int = 120, **options: Any) -> Any:
    return simulate_fleet(
        fleet, workload, job_seconds=job_seconds, startup_seconds=STARTUP, horizon_minutes=minutes, **options
    )


def test_the_500_message_burst_worked_by_hand_with_the_metric_lag_and_warm_up(fleet: Fleet) -> None:
    """Worked by hand with the defaults (thresholds 1/20/100 -> +1/+2/+4, max 4, 2 jobs per instance, 60 s jobs,
    120 s start-up, InService 30 s after launch, warm-up 180 s from InService, datapoints delivered 60 s after their
    minute; scale-in: one instance when one is spare for 5 minutes, 300 s cooldown; zero after 10 empty minutes):

    - 0 s: 500 messages arrive at once. Minute 0's datapoint (Maximum visible = 500) reaches the alarm at 120 s.
    - 120 s: ALARM (1 of 1); 500 - threshold 1 = 499 is in the [99, inf) step: +4 -> desired 4 (the maximum).
    - 240 s: the 4 instances receive their first jobs; 8 jobs every 60 s.
    - 500 / 8 = 62.5 -> 63 rounds; the last (4 jobs) starts at 240 + 62 x 60 = 3,960 s and ends at 4,020 s: minute 67.
    - Spare instances = InService - (visible + in flight) / 2: minute 65 has 4 visible and 8 in flight (-2); minute
      66 has 0 visible and 4 in flight (4 - 2 = 2), minutes 67-70 nothing (4). Minute 70's datapoint is the 5th of 5
      at or above 1 and reaches ScaleInOnSpareCapacity at 4,320 s: -1 -> 3 (the last launch was InService at 150 s,
      so neither its warm-up nor the 300 s cooldown holds it back).
    - 4,380 s: minute 71's datapoint (spare 3, one minute old) keeps the alarm in ALARM, but the cooldown lasts until
      4,620 s: nothing. 4,620 s: minutes 71-75 all spare -> -1 -> 2.
    - Minutes 67-76 are the first 10 with nothing visible or in flight at any second; minute 76's datapoint reaches
      ScaleInWhenIdle (10 of 10) at 4,680 s: -100 % -> 0 instances, entered at the end of minute 77.
    - Instance-hours: 4 x (4,320 - 120) + 3 x 300 + 2 x 60 = 17,820 s = 4.95 h (5.07 h before the spare-capacity
      rule, when all 4 stayed until 4,680 s).
    """
    # GIVEN the synthesized fleet and 500 messages at once
    run, summary = _fleet_run(fleet, build(burst=500, minutes=1), minutes=120)
    capacity = run.series["capacity"]
    # THEN the simulator agrees with the hand-worked timeline within one minute
    assert abs(summary["drain_minutes"] - 67.0) <= 1
    assert summary["peak_instances"] == 4 and capacity[0] == 0 and capacity[1] == 4
    assert abs(capacity.index(3) - 71) <= 1 and abs(capacity.index(2) - 76) <= 1
    assert abs(capacity.index(0, 1) - 77) <= 1
    assert summary["instance_hours"] == pytest.approx((4 * (4320 - 120) + 3 * 300 + 2 * 60) / 3600, abs=4 / 60)
    assert summary["scale_out_delay_seconds"] == 240 and summary["max_age_seconds"] == 3960
    # AND the stale datapoint right after a scale-in removes nothing: the cooldown holds 3 for 5 minutes
    assert capacity[71:76] == [3] * 5


def test_a_burst_of_25_adds_two_instances_then_waits_for_their_warm_up_from_in_service(fleet: Fleet) -> None:
    # GIVEN 25 videos at once and an empty group
    run, _ = _fleet_run(fleet, build(burst=25, minutes=1), minutes=30)
    # THEN minute 0's datapoint (25) reaches the alarm at 120 s: one step, +2. The two are InService at 150 s and
    # warm up until 330 s, so the datapoints at 180, 240 and 300 s (25 visible, same step) add nothing. At 360 s
    # minute 4's datapoint (21 visible: 4 jobs started at 240 s) is in the +2 step again -> 4 = max.
    assert run.series["capacity"][:7] == [0, 2, 2, 2, 2, 4, 4]


def test_alarms_see_the_minute_s_maximum_not_its_last_second(fleet: Fleet) -> None:
    # GIVEN one instance already running (desired 1 at the start), 30-s jobs and 3 messages at once: 2 start,
    # 1 waits 30 s for a slot, so minute 0 ends with nothing visible
    running = dataclasses.replace(fleet, desired=1)
    assert running.step_rules[0].metric.statistics == {"": "Maximum"}  # read from the alarm in the template
    burst = Workload((3,), "3 at once", at_once=3)
    run, _ = simulate_fleet(running, burst, job_seconds=30, horizon_minutes=4)
    # THEN the alarm (statistic Maximum, as the template says) sees the backlog of 1 and adds an instance at 120 s
    assert run.series["visible"][0] == 0
    assert run.series["capacity"][:2] == [1, 2]
    # WHEN the same alarm read only the minute's last sample (statistic Sum: one sample a minute)
    rule = running.step_rules[0]
    last_sample = dataclasses.replace(rule, metric=dataclasses.replace(rule.metric, statistics={"": "Sum"}))
    other = dataclasses.replace(running, step_rules=(last_sample, *running.step_rules[1:]))
    run, _ = simulate_fleet(other, burst, job_seconds=30, horizon_minutes=4)
    # THEN the backlog that appeared and cleared within the minute is never seen
    assert run.series["capacity"][:2] == [1, 1]


@pytest.mark.parametrize(("delay", "launch_minute"), [(0, 0), (60, 1), (180, 3)])
def test_the_metric_delay_postpones_every_reaction(fleet: Fleet, delay: int, launch_minute: int) -> None:
    # GIVEN 25 at once: minute 0's datapoint is complete at 60 s and reaches the alarm `delay` seconds later
    run, summary = _fleet_run(fleet, build(burst=25, minutes=1), minutes=10, metric_delay_seconds=delay)
    # THEN the first launch is at the end of minute `launch_minute` and the first job starts 120 s after it
    assert run.series["capacity"].index(2) == launch_minute
    assert summary["scale_out_delay_seconds"] == 60 + delay + STARTUP


def test_1000_a_day_instance_hours_follow_the_warm_up_and_scale_in_rules(fleet: Fleet, backlog_assembly: Path) -> None:
    """Worked by hand: arrivals (carried remainders of 0.694 a minute) in minutes 1, 2, 4, 5, 7, 8, ...

    - Minute 1's datapoint (Maximum visible 1) reaches the alarm at 180 s: +1, InService at 210 s, warm-up over at
      390 s, first receive at 300 s.
    - At 300 s three messages wait (minutes 1, 2, 4): two start, one waits until 360 s, so minute 5's Maximum
      visible is 1; at 420 s the alarm is in ALARM, the warm-up is over: +1 -> 2 instances (InService at 450 s).
    - Then 4 slots take each message within its second, and a 60-s job every 86 s never overlaps the next: at most
      1 in flight, so spare = 2 - 1 / 2 = 1.5 in every minute with both InService all minute (minutes 8-12; minute 7
      has the Minimum of 1 InService: IF(...) gives 0). Minute 12's datapoint is the 5th of 5 and reaches
      ScaleInOnSpareCapacity at 840 s: -1 -> 1 (warm-up over at 630 s, cooldown from 450 s over at 750 s).
    - One instance has 2 slots for at most 1 job: nothing waits, the scale-out alarm stays OK, and with one instance
      the spare rule reads 0: one instance all day. The queue is empty from minute 1,441; minute 1,450's datapoint
      reaches ScaleInWhenIdle at 87,120 s -> 0.
    - Instance-hours: (87,120 - 180) + (840 - 420) = 87,360 s = 24.27 h (48.2 h before the spare-capacity rule).
    """
    day = build(videos_per_day=1000)
    run, summary = _fleet_run(fleet, day, minutes=1440 + 240)
    capacity = run.series["capacity"]
    assert capacity[:8] == [0, 0, 1, 1, 1, 1, 2, 2]
    assert summary["peak_instances"] == 2
    # THEN the second instance goes at 840 s and the group keeps one instance, without flapping, until the day ends
    assert capacity[12:14] == [2, 1]
    assert set(capacity[13:1451]) == {1} and capacity[1451] == 0
    assert summary["instance_hours"] == pytest.approx((87120 - 180 + 840 - 420) / 3600, abs=1 / 60)
    assert summary["jobs_done"] == 1000 and summary["max_age_seconds"] <= 181
    # A start-up short enough for one instance to clear its backlog before its warm-up ends needs 1 instance only
    _, fast = simulate_fleet(fleet, day, job_seconds=60, startup_seconds=60, horizon_minutes=1440 + 240)
    assert fast["peak_instances"] == 1 and fast["instance_hours"] == pytest.approx(24, abs=0.5)
    # Backlog mode (10 messages per InService instance) lets messages wait, and scales in gradually to zero
    _, backlog = _fleet_run(read_fleet(backlog_assembly), day, minutes=1440 + 240)
    assert backlog["peak_instances"] == 1 and backlog["instance_hours"] < 24


@pytest.mark.parametrize(
    "workload", [build(videos_per_day=5_000, shape="daily"), build(videos_per_day=3_000, poisson=True)]
)
def test_scale_in_never_takes_a_busy_instance(fleet: Fleet, workload: Workload) -> None:
    # GIVEN loads that rise and fall, so the spare-capacity rule scales in while jobs still run (with the worker's
    # protection left out of the simulator, both of these put jobs on instances already gone)
    run, summary = _fleet_run(fleet, workload, minutes=len(workload.arrivals) + 120)
    capacity, in_flight = run.series["capacity"], run.series["in_flight"]
    assert any(later < earlier for earlier, later in itertools.pairwise(capacity))
    # THEN right after every scaling decision, the jobs still running fit in the job slots of the instances left
    # (a busy worker protects itself from scale-in), and every job is done
    assert all(
        jobs <= instances * fleet.worker_concurrency for jobs, instances in zip(in_flight, capacity, strict=True)
    )
    assert summary["jobs_done"] == workload.total


def test_backlog_mode_starts_from_zero_then_tracks_backlog_per_in_service_instance(backlog_assembly: Path) -> None:
    backlog = read_fleet(backlog_assembly)
    assert backlog.mode == "backlog"
    run, summary = _fleet_run(backlog, build(burst=200, minutes=1), minutes=180)
    # StartFromZero sets exactly 1 at 120 s (minute 0's datapoint); it is InService at 150 s, so minute 2's
    # datapoint is 200 / 0.5 (Average in service) and minutes 3 and 4 are 200 and 198 per instance: the third
    # datapoint above 10 reaches the policy at 360 s -> ceil(1 x 198 / 10) capped at 4
    assert run.series["capacity"][:6] == [0, 1, 1, 1, 1, 4]
    assert summary["jobs_done"] == 200


def test_a_warm_pool_in_the_template_shortens_the_scale_out(synthesized: SynthesizedApp, fleet: Fleet) -> None:
    # GIVEN the fleet template with an AWS::AutoScaling::WarmPool added (Stopped instances, default size)
    template = load_template(synthesized.outdir, FLEET_STACK)
    group = next(lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup")
    template["Resources"]["Pool"] = {
        "Type": "AWS::AutoScaling::WarmPool",
        "Properties": {"AutoScalingGroupName": {"Ref": group}, "MinSize": 1, "PoolState": "Stopped"},
    }
    pooled = fleet_from_template(template)
    assert pooled.warm_pool == WarmPool(min_size=1, pool_state="Stopped")
    # WHEN 500 arrive at once
    _, cold = _fleet_run(fleet, build(burst=500, minutes=1))
    _, warm = _fleet_run(pooled, build(burst=500, minutes=1))
    # THEN the 4 instances come from the pool (max 4 - desired 0 prepared) and start in 40 s instead of 120 s
    assert warm["warm_starts"] == 4
    assert (cold["scale_out_delay_seconds"], warm["scale_out_delay_seconds"]) == (
        240,
        120 + WARM_START_SECONDS["Stopped"],
    )
    assert warm["drain_minutes"] < cold["drain_minutes"]
    # and the pool refills behind them: 4 prepared instances, then 1 (MinSize) while the group runs at its maximum
    assert warm["warm_pool_instance_hours"] > 0


def test_failed_jobs_are_retried_after_the_visibility_timeout_then_dead_lettered(fleet: Fleet) -> None:
    assert fleet.max_receive_count == 3  # the jobs queue's RedrivePolicy
    # GIVEN every receive failing
    _, summary = _fleet_run(fleet, build(burst=10, minutes=1), minutes=240, fail_fraction=1.0)
    # THEN each message is received 3 times (each after the visibility timeout), then moved to the DLQ
    assert summary["jobs_dead_lettered"] == 10 and summary["failed_receives"] == 30 and summary["jobs_done"] == 0
    # GIVEN 1 receive in 4 failing: retries succeed, the p95 wait and the DLQ come from the same run
    _, summary = _fleet_run(fleet, build(videos_per_day=20_000, minutes=60), minutes=600, fail_fraction=0.25)
    assert summary["failed_receives"] > 0
    total = summary["jobs_done"] + summary["jobs_in_flight_at_end"] + summary["jobs_not_started"]
    assert summary["jobs_in"] == total + summary["jobs_expired"] + summary["jobs_dead_lettered"]


def test_poisson_arrivals_are_seeded_and_keep_the_mean() -> None:
    steady = build(videos_per_day=100_000, minutes=600)
    first, again = (build(videos_per_day=100_000, minutes=600, poisson=True, seed=7) for _ in range(2))
    assert first == again  # the same seed, the same run
    assert first.arrivals != steady.arrivals and len(set(first.arrivals)) > 5
    assert first.total == pytest.approx(steady.total, rel=0.02)


@pytest.mark.parametrize(
    "workload",
    [
        build(burst=3000, minutes=1),
        build(videos_per_day=20_000, minutes=180),
        build(videos_per_day=20_000, burst=500, shape="daily", minutes=300),
        Workload((0, 7, 0, 0, 90, 1, 0, 0, 0, 33), "csv-like"),
    ],
    ids=["burst", "steady", "daily+burst", "sparse"],
)
def test_with_enough_capacity_every_workload_drains_and_jobs_are_conserved(fleet: Fleet, workload: Workload) -> None:
    roomy = dataclasses.replace(fleet, max_size=100)
    _, summary = _fleet_run(roomy, workload, minutes=len(workload.arrivals) + 120)
    assert summary["jobs_in"] == workload.total
    assert summary["jobs_in"] == summary["jobs_done"] + summary["jobs_in_flight_at_end"] + summary["jobs_not_started"]
    assert summary["jobs_not_started"] == 0 and summary["jobs_in_flight_at_end"] == 0
    assert summary["drain_minutes"] is not None


def test_a_capped_group_leaves_jobs_not_started_and_still_conserves_them(fleet: Fleet) -> None:
    # 4 instances x 2 slots x 1 job/min = at most 8 jobs a minute; 20,000/day is 13.9 a minute
    _, summary = _fleet_run(fleet, build(videos_per_day=20_000, minutes=120), minutes=120)
    assert summary["jobs_not_started"] > 0
    assert summary["jobs_in"] == summary["jobs_done"] + summary["jobs_in_flight_at_end"] + summary["jobs_not_started"]
    assert summary["p95_wait_is_lower_bound"] is True
    assert summary["jobs_expired"] == 0  # the run is far shorter than the queue's 4-day retention


def test_messages_older_than_the_queue_retention_are_lost_and_counted(fleet: Fleet) -> None:
    assert fleet.retention_seconds == 4 * 86_400  # read from the jobs queue's MessageRetentionPeriod
    # GIVEN a capped group (8 jobs a minute) and, for the test, a retention of 10 minutes
    short = dataclasses.replace(fleet, retention_seconds=600)
    _, summary = _fleet_run(short, build(videos_per_day=20_000, minutes=120), minutes=120)
    # THEN what waited longer than 10 minutes is gone, and counted as such
    assert summary["jobs_expired"] > 0
    assert summary["max_age_seconds"] <= 600
    total = summary["jobs_done"] + summary["jobs_in_flight_at_end"] + summary["jobs_not_started"]
    assert summary["jobs_in"] == total + summary["jobs_expired"]


def test_lambda_path_ramps_as_documented_and_is_capped_by_maximum_concurrency(consumer: LambdaConsumer) -> None:
    assert consumer.max_concurrency == 10 and consumer.batch_size == 10
    # 10 s per record: a batch of 10 runs 100 s; 50,000 at once
    run, summary = simulate_lambda(consumer, build(burst=50_000, minutes=1), record_seconds=10, horizon_minutes=30)
    # starts with 5 concurrent batches, + up to 300 a minute, capped at MaximumConcurrency = 10
    assert run.series["capacity"][0] == 10 and max(run.series["capacity"]) == 10
    assert summary["jobs_in"] == summary["jobs_done"] + summary["jobs_in_flight_at_end"] + summary["jobs_not_started"]
    # without MaximumConcurrency: + 300 a minute up to the documented 1,250
    uncapped = dataclasses.replace(consumer, max_concurrency=None)
    run, _ = simulate_lambda(uncapped, build(burst=50_000, minutes=1), record_seconds=10, horizon_minutes=6)
    assert run.series["capacity"] == [305, 605, 905, 1205, 1250, 1250]


def test_provisioned_mode_is_read_from_the_template_and_the_flag_overrides_it(consumer: LambdaConsumer) -> None:
    burst = build(burst=50_000, minutes=1)
    # GIVEN the event source mapping's ProvisionedPollerConfig 2..200: 20 batches ready, + 1,000 a minute, at most
    # 200 pollers x 10
    pollers = dataclasses.replace(consumer, provisioned_pollers=(2, 200))
    run, _ = simulate_lambda(pollers, burst, record_seconds=10, horizon_minutes=3)
    assert run.name == "lambda (provisioned)" and run.series["capacity"] == [1020, 2000, 2000]
    # WHEN the flag asks for 5..50 pollers THEN it wins over the template
    run, _ = simulate_lambda(pollers, burst, record_seconds=10, horizon_minutes=2, provisioned=(5, 50))
    assert run.series["capacity"] == [500, 500]


def test_provisioned_pollers_are_read_from_the_event_source_mapping(synthesized: SynthesizedApp) -> None:
    # GIVEN the pipeline template with ProvisionedPollerConfig on its SQS event source mapping
    template = load_template(synthesized.outdir, PIPELINE_STACK)
    mapping = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
    mapping["Properties"].pop("ScalingConfig", None)  # exclusive with provisioned mode
    mapping["Properties"]["ProvisionedPollerConfig"] = {"MinimumPollers": 3, "MaximumPollers": 30}
    # THEN the simulator reads it, and runs the provisioned scaling without any flag
    consumer = lambda_from_template(template)
    assert consumer.provisioned_pollers == (3, 30)
    run, _ = simulate_lambda(consumer, build(burst=50_000, minutes=1), record_seconds=10, horizon_minutes=2)
    assert run.series["capacity"] == [300, 300]


def test_a_lambda_burst_arrives_at_once(consumer: LambdaConsumer) -> None:
    # GIVEN 500 at once, 0.5 s a record: 50 batches of 5 s, 5 at a time in minute 0 (the ramp comes at its end)
    _, summary = simulate_lambda(consumer, build(burst=500, minutes=1), record_seconds=0.5, horizon_minutes=5)
    # THEN the last 50 start after 9 rounds of 5 s: p95 = 45 s (spread over the minute it would be ~0 s)
    assert summary["p95_wait_seconds"] == 45


def test_other_scale_out_thresholds_give_another_simulation(fleet: Fleet, tmp_path: Path) -> None:
    # GIVEN the same app synthesized with -c scale_out_thresholds=1,5,10 (a real template, not a config object)
    other = read_fleet(
        synthesize(
            tmp_path, {"scale_out_thresholds": "1,5,10"}, control_tower_checks=False, stacks=["WorkerFleetStack"]
        ).outdir
    )
    burst = build(burst=25, minutes=1)
    default_run, _ = _fleet_run(fleet, burst, minutes=5)
    other_run, _ = _fleet_run(other, burst, minutes=5)
    # THEN 25 visible is in the top step there: +4 at once instead of +2 (at 120 s, the first datapoint's arrival)
    assert default_run.series["capacity"][1] == 2
    assert other_run.series["capacity"][1] == 4


@pytest.mark.slow  # renders the chart (matplotlib)
def test_cli_writes_both_policies_the_lambda_path_a_chart_and_a_table(
    synthesized: SynthesizedApp, backlog_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output, chart = tmp_path / "scaling.json", tmp_path / "scaling.png"
    args = ["--cdk-out", str(synthesized.outdir), "--other-cdk-out", str(backlog_assembly), "--burst", "500"]
    args += ["--videos-per-day", "2000", "--minutes", "60", "--drain-minutes", "60", "--lambda-job-seconds", "1"]
    assert main([*args, "--output", str(output), "--chart", str(chart)]) == 0
    result = json.loads(output.read_text())
    keys = {"drain_minutes", "max_age_seconds", "p95_wait_seconds", "instance_hours", "cost_usd", "jobs_not_started"}
    assert set(result["policies"]) == {"step", "backlog"}
    assert all(keys <= set(summary) for summary in result["policies"].values())
    assert {"drain_minutes", "max_age_seconds", "cost_usd", "jobs_not_started"} <= set(result["lambda"])
    assert len(result["series_per_minute"]["fleet: step"]["visible"]) == 120
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "fleet: step" in table and "fleet: backlog" in table and "p95 wait (s)" in table


@pytest.mark.parametrize(
    "workload",
    [
        build(burst=500, minutes=1),
        build(videos_per_day=20_000, shape="daily", minutes=240),
        build(videos_per_day=3_000, poisson=True, seed=7, minutes=240),
    ],
    ids=["burst", "daily", "poisson"],
)
def test_quiet_seconds_sampled_at_once_give_what_a_second_by_second_run_gives(
    fleet: Fleet, consumer: LambdaConsumer, workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN each path with failures (messages visible again later), a warm pool and Lambda's batching window
    def runs() -> list[Any]:
        return [
            _fleet_run(fleet, workload, minutes=300, fail_fraction=0.1),
            _fleet_run(fleet, workload, minutes=300, warm_pool=WarmPool(min_size=2)),
            simulate_lambda(consumer, workload, record_seconds=20, horizon_minutes=300, fail_fraction=0.1),
        ]

    # WHEN the engine samples the seconds in which nothing but the queue's age changes at once (as it does), and
    # when it is made to step through every second one by one
    at_once = runs()
    monkeypatch.setattr(simulate, "_quiet_seconds", lambda *_: 1)
    one_by_one = runs()
    # THEN every summary and every per-minute series is the same
    for (run, summary), (reference, reference_summary) in zip(at_once, one_by_one, strict=True):
        assert summary == reference_summary
        assert run.series == reference.series


def test_a_minute_folded_as_it_is_sampled_gives_the_statistics_of_its_per_second_samples() -> None:
    # GIVEN a minute sampled as the engine samples it: single seconds, runs of unchanged values, and runs in which the
    # oldest message's age (index 2) grows by one a second
    clock = simulate.MetricClock(90, ("visible", "in_flight", "oldest_age"))
    runs = [((5, 0, 0), 1, None), ((5, 2, 3), 10, 2), ((7, 1, 0), 1, None), ((4, 4, 9), 47, 2), ((0, 3, 0), 1, 2)]
    per_second: list[list[int]] = [[], [], []]
    for values, seconds, ageing in runs:
        clock.sample(*values, seconds=seconds, ageing=ageing)
        for index, value in enumerate(values):
            per_second[index] += list(range(value, value + seconds)) if index == ageing else [value] * seconds
    # WHEN the minute closes at second 60
    clock.close_minute(60)
    # THEN its datapoint, delivered 90 s later, holds each signal's statistics over its 60 per-second samples
    assert clock.new_datapoints(149) == []
    (datapoint,) = clock.new_datapoints(150)
    assert all(len(samples) == 60 for samples in per_second)
    assert datapoint == {
        name: {
            "Maximum": max(samples),
            "Minimum": min(samples),
            "Average": sum(samples) / len(samples),
            "Sum": samples[-1],
            "SampleCount": 1,
        }
        for name, samples in zip(("visible", "in_flight", "oldest_age"), per_second, strict=True)
    }
    assert datapoint["oldest_age"]["Maximum"] == 9 + 46  # the ageing run's last second
    # AND the next minute starts empty
    clock.close_minute(120)
    assert clock.new_datapoints(210) == [{}]
