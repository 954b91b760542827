"""The simulator on the synthesized fleet and pipeline: hand-worked timelines, conservation, and proof that it
reads the template (other thresholds, other result)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from scaling.__main__ import main
from scaling.simulate import simulate_fleet, simulate_lambda
from scaling.template import Fleet, LambdaConsumer, read_fleet, read_lambda
from scaling.workload import Workload, build
from tests.conftest import SynthesizedApp, synthesize

STARTUP = 180


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


def _fleet_run(fleet: Fleet, workload: Workload, job_seconds: float = 60, minutes: int = 120) -> Any:
    return simulate_fleet(fleet, workload, job_seconds=job_seconds, startup_seconds=STARTUP, horizon_minutes=minutes)


def test_a_burst_of_25_adds_two_instances_then_waits_for_their_warm_up(fleet: Fleet) -> None:
    # GIVEN 25 videos in minute 0 and an empty group
    run, _ = _fleet_run(fleet, build(burst=25, minutes=1), minutes=30)
    # THEN after minute 0 the alarm sees 25 -> one step, +2; the same step during the 180 s warm-up adds nothing;
    # after the warm-up the backlog (still >= 20, 4 jobs at a time) is in the +2 step again -> 4 = max
    assert run.series["capacity"][:5] == [2, 2, 2, 4, 4]


def test_scale_to_zero_only_after_10_minutes_with_nothing_visible_and_nothing_in_flight(fleet: Fleet) -> None:
    # GIVEN one 20-minute job: from minute 4 (instance in service) to minute 24 it is in flight, nothing visible
    run, summary = _fleet_run(fleet, build(burst=1, minutes=1), job_seconds=20 * 60, minutes=60)
    in_flight = run.series["in_flight"]
    last_busy = max(m for m, n in enumerate(in_flight) if n)
    capacity = run.series["capacity"]
    # THEN the group keeps instances while the job runs, although nothing is visible from minute 4 on ...
    assert all(capacity[m] >= 1 for m in range(last_busy + 1))
    # ... and goes exactly when the 10th empty datapoint arrives, never before
    first_zero = capacity.index(0)
    assert first_zero == last_busy + 10
    assert summary["jobs_done"] == 1


def test_backlog_mode_starts_from_zero_then_tracks_backlog_per_instance(backlog_assembly: Path) -> None:
    backlog = read_fleet(backlog_assembly)
    assert backlog.mode == "backlog"
    run, summary = _fleet_run(backlog, build(burst=200, minutes=1), minutes=180)
    # StartFromZero sets exactly 1 while nothing is in service; target tracking then needs 3 datapoints above 10
    # per instance once the first one is in service (minute 4), so the group grows from minute 6 on
    assert run.series["capacity"][:5] == [1, 1, 1, 1, 1]
    assert max(run.series["capacity"]) == backlog.max_size
    assert summary["jobs_done"] == 200


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
    uncapped = dataclasses.replace(consumer, max_concurrency=None)
    run, _ = simulate_lambda(uncapped, build(burst=50_000, minutes=1), record_seconds=10, horizon_minutes=30)
    assert run.series["capacity"][:3] == [305, 605, 905]
    # provisioned mode: 2..200 pollers (assumed 10 batches each), 900 more a minute
    run, _ = simulate_lambda(
        consumer, build(burst=50_000, minutes=1), record_seconds=10, horizon_minutes=3, provisioned=(2, 200)
    )
    assert run.series["capacity"][:3] == [920, 1820, 2000]


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
    # THEN 25 visible is in the top step there: +4 at once instead of +2
    assert default_run.series["capacity"][0] == 2
    assert other_run.series["capacity"][0] == 4


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


def test_cli_bad_workload_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "arrivals.csv"
    bad.write_text("minute,arrivals\n0,5\n1,lots\n")
    assert main(["--arrivals-csv", str(bad), "--cdk-out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 3: 'lots' is not a number" in err
