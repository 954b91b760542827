"""The cost model against hand-worked cases, on the templates the app really synthesizes (cdk-nag on, no bundling).

Each expected value is written out as its derivation (month = 730 h = 30.4167 days; prices from cost/prices.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cost import Deployed, Workload, estimate_monthly_cost
from cost.__main__ import main
from cost.model import CostInputError, kept_days
from tests.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parents[3]
DAYS = 730 / 24


@pytest.fixture(scope="module")
def deployed(synthesized: SynthesizedApp) -> Deployed:
    return Deployed.read(synthesized.outdir)


def test_what_the_model_reads_from_the_templates(deployed: Deployed) -> None:
    assert (deployed.fleet.instance_type, deployed.fleet.root_volume_gb, deployed.fleet.worker_concurrency) == (
        "c7g.large",
        30,
        2,
    )
    assert (deployed.consumer.memory_mb, deployed.consumer.architecture, deployed.consumer.batch_size) == (
        2048,
        "arm64",
        10,
    )
    # isolated network: 5 interface endpoints (SQS, Auto Scaling, Logs, SSM, SSM messages) x 2 subnets
    assert deployed.idle["fleet"].interface_endpoint_azs == 10
    assert deployed.kms_reuse_seconds == {"lambda": 3600, "fleet": 3600}


def test_lambda_path_is_priced_as_the_preview_it_runs(deployed: Deployed) -> None:
    # GIVEN 240 videos/day of 50 MB, and a measured handler time of 0.05 s per record (preview profile)
    b = estimate_monthly_cost(Workload(240, 50, 60, "lambda"), deployed, measured_record_seconds=0.05)
    # 240 x 30.4167 = 7,300 records x (0.05 + 50 MB / 50 MB/s = 1.05 s) x 2 GB = 15,330 GB-s x $0.0000133334
    assert b.quantities["Lambda GB-seconds"] == pytest.approx(7300 * 1.05 * 2)
    assert b.lines["Lambda GB-seconds"] == pytest.approx(15_330 * 0.0000133334)
    # 240/day is 0.014 arrivals per 5 s batching window -> one record per invocation
    assert b.quantities["Lambda requests"] == pytest.approx(7300)
    # preview outputs: metadata.json + thumbnail.jpg -> 3 PUTs per video (upload + 2), not a transcode's 5
    assert b.quantities["S3 PUT requests"] == pytest.approx(7300 * 3)
    assert not any(item.startswith("EC2") for item in b.lines)


def test_storage_follows_the_lifecycle_rules(deployed: Deployed) -> None:
    assert kept_days([{"Status": "Enabled", "ExpirationInDays": 90}]) == 90
    assert kept_days([{"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]) is None
    b = estimate_monthly_cost(Workload(1000, 50, 60, "lambda"), deployed, measured_record_seconds=0.05, storage_month=3)
    # uploads never expire (only noncurrent versions do): month 3 holds 2.5 months of uploads on average
    # 1000 x 50 MB / 1024 = 48.828 GB/day x 30.4167 x 2.5 = 3,713.0 GB-month
    assert b.quantities["S3 uploads (GB-month, month 3)"] == pytest.approx(1000 * 50 / 1024 * DAYS * 2.5)
    assert any("never expire" in note for note in b.notes)


def test_idle_costs_are_summed(deployed: Deployed) -> None:
    b = estimate_monthly_cost(Workload(1, 1, 1, "fleet"), deployed)
    # fleet stack: 4 alarms reading 5 metrics (the scale-in alarm is metric math over 2), 1 dashboard, 2 keys (the
    # queues' and the log groups'), 10 interface endpoint-AZs x 730 h x $0.01
    assert b.lines["CloudWatch alarms (alarm metrics)"] == pytest.approx(5 * 0.10)
    assert b.lines["CloudWatch dashboards"] == pytest.approx(3.00)
    assert b.lines["KMS customer-managed keys"] == pytest.approx(2.00)
    assert b.lines["VPC interface endpoint-AZ-hours"] == pytest.approx(73.00)


def test_fleet_hours_come_from_the_simulation_and_the_capped_region_is_unmet(deployed: Deployed) -> None:
    # 100,000/day x 32 s jobs (1 + 50/50 + 60 x 0.5 / 1 vCPU) on 2 slots per instance needs 19 instances; the
    # group's max is 4, so it runs 4 nearly all day and leaves most jobs unstarted
    b = estimate_monthly_cost(Workload(100_000, 50, 60, "fleet"), deployed)
    hours = b.quantities["EC2 c7g.large + 30 GB gp3 (instance-hours)"]
    assert 0.99 * 4 * 730 < hours <= 4 * 730
    # the day is simulated for 1,440 + 60 minutes: 4 x 2 slots x 1,500 x 60 / 32 s = 22,500 jobs at most
    assert b.unmet_jobs_per_day >= 100_000 - 22_500
    assert any(note.startswith("UNMET") and "about 19 instances needed" in note for note in b.notes)
    # the 30 GB gp3 root volume from the launch template is priced with each instance-hour
    assert b.lines["EC2 c7g.large + 30 GB gp3 (instance-hours)"] == pytest.approx(
        hours * 0.0725 + hours / 730 * 30 * 0.08
    )


@pytest.mark.parametrize("volume", [0, -5, float("nan")])
def test_volumes_must_be_positive(volume: float) -> None:
    with pytest.raises(CostInputError, match="--videos-per-day must be a number > 0"):
        Workload(volume, 50, 60, "fleet")


@pytest.mark.slow  # renders the chart (matplotlib)
def test_cli_prints_both_paths_and_writes_the_chart_where_asked(
    synthesized: SynthesizedApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "cost.png"
    args = ["--videos-per-day", "240", "--size-mb", "50", "--duration-s", "60", "--chart", str(chart)]
    assert main([*args, "--cdk-out", str(synthesized.outdir)]) == 0
    out = capsys.readouterr().out
    assert "lambda path: 240 videos/day" in out and "fleet path: 240 videos/day" in out
    assert out.count("TOTAL") == 2
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_are_one_line_on_stderr_with_documented_exit_codes(
    synthesized: SynthesizedApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--videos-per-day", "-3", "--size-mb", "50", "--duration-s", "60", "--no-chart"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--videos-per-day must be a number > 0, got -3" in err
    # an instance type without a price, in an otherwise real assembly
    assembly = tmp_path / "cdk.out"
    shutil.copytree(synthesized.outdir, assembly, ignore=shutil.ignore_patterns("asset.*"))
    fleet_template = assembly / "WorkerFleetStack.template.json"
    fleet_template.write_text(fleet_template.read_text().replace('"c7g.large"', '"x9.huge"'))
    code = main(["--videos-per-day", "10", "--size-mb", "5", "--duration-s", "6", "--cdk-out", str(assembly)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no price for instance type 'x9.huge'; priced types:" in err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exit codes:" in capsys.readouterr().out


def test_the_cost_and_scaling_clis_do_not_import_aws_cdk() -> None:
    # jsii starts Node.js when aws_cdk is imported: the CLIs must not need it
    code = "import sys, cost.__main__, cost.chart, scaling.__main__; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", f"import json; {code}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    # (of the stacks package, only the instance-type catalogue, standard library only by design)
    dependency_free = {"stacks", "stacks.instance_types"}
    assert not [
        m
        for m in json.loads(out)
        if m.split(".")[0] in ("aws_cdk", "jsii", "constructs", "stacks") and m not in dependency_free
    ]
