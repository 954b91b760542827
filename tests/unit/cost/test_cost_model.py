"""The cost model against hand-worked cases, on the templates the app really synthesizes (cdk-nag on, no bundling).

Each expected value is written out as its derivation (month = 730 h = 30.4167 days; prices from tools/cost/prices.py;
GB = 1024^3 bytes). The capacity cases are worked from the event source's documented scaling: at most
MaximumConcurrency batches at once, each batch of 10 records taking 10 x the record time.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SynthesizedApp
from tools.cost import Deployed, Workload, estimate_monthly_cost
from tools.cost.model import (
    ASSUMED_LAMBDA_PLATFORM_LOG_BYTES,
    ASSUMED_LOG_BYTES_PER_JOB,
    CostInputError,
    Measured,
    _extras,
    kept_days,
    transcode_cpu_per_video_second,
    xray_traces_per_second,
)
from tools.cost.prices import PRICES, SOURCES, s3_standard_usd

REPO = Path(__file__).resolve().parents[3]
DAYS = 730 / 24
GB = 1024**3
# Fixed figures, so the hand calculations do not move when a benchmark is rerun.
MEASURED = Measured(lambda_record_seconds=0.05, lambda_init_seconds=0.8, transcode_cpu_per_video_second=0.7)


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
    lam, fleet = deployed.extras["lambda"], deployed.extras["fleet"]
    # active tracing on the function; detailed monitoring in the launch template; 365-day log groups; two rotating
    # keys per stack; an access-log bucket that keeps records 90 days for the uploads and processed buckets
    assert lam.tracing_active and not lam.detailed_monitoring
    assert fleet.detailed_monitoring and fleet.warm_pool is None
    assert lam.log_retention_days == fleet.log_retention_days == 365
    assert (lam.rotating_keys, lam.rotation_period_days, lam.access_log_days, lam.logged_buckets) == (2, 365, 90, 2)
    assert fleet.tracking_alarm_metrics == 0  # step mode: no target tracking alarms


def test_a_path_that_keeps_up_is_priced_for_every_job(deployed: Deployed) -> None:
    # GIVEN 240 videos/day of 50 MB, a handler time of 0.05 s per record (preview profile)
    b = estimate_monthly_cost(Workload(240, 50, 60, "lambda"), deployed, measured=MEASURED)
    # THEN the simulated day serves all 240, each alone (240/day is 0.014 arrivals per 5 s batching window)
    assert b.keeps_up and b.capacity.unmet_jobs == 0 and b.capacity.jobs_done == 240
    # 240 x 30.4167 = 7,300 records x (0.05 + 50 MB / 50 MB/s = 1.05 s) x 2 GB = 15,330 GB-s x $0.0000133334
    assert b.lines["Lambda GB-seconds (INVOKE)"].quantity == pytest.approx(7300 * 1.05 * 2)
    assert b.lines["Lambda GB-seconds (INVOKE)"].usd == pytest.approx(15_330 * 0.0000133334)
    assert b.lines["Lambda requests"].quantity == pytest.approx(7300)
    # preview outputs: metadata.json + thumbnail.jpg -> 3 PUTs per video (upload + 2), not a transcode's 5
    assert b.lines["S3 PUT requests"].quantity == pytest.approx(7300 * 3)
    assert not any(item.startswith("EC2") for item in b.lines)


def test_lambda_at_a_million_a_day_does_not_keep_up_and_is_not_priced_as_if_it_did(deployed: Deployed) -> None:
    # GIVEN 1,000,000 videos a day at 1.05 s a record and the template's MaximumConcurrency of 10
    assert deployed.consumer.max_concurrency == 10
    b = estimate_monthly_cost(Workload(1_000_000, 50, 60, "lambda"), deployed, measured=MEASURED)
    # THEN at most 10 batches x 10 records / 10.5 s = 9.52 records a second are served: over the 1,440 minutes
    # of arrivals and the 60 of the drain, at most 9.52 x 90,000 s = 857,143 of the 1,000,000
    served_at_most = 10 * 10 / 10.5 * 90_000
    assert not b.keeps_up
    assert b.capacity.unmet_jobs >= 1_000_000 - served_at_most
    assert b.capacity.max_age_seconds > 3600  # the backlog is hours old by the end
    # AND the GB-seconds are those of the records served, not of all 1,000,000 (the old model's $852)
    assert b.lines["Lambda GB-seconds (INVOKE)"].quantity <= served_at_most * 1.05 * 2 * DAYS
    assert b.lines["Lambda GB-seconds (INVOKE)"].usd < 0.9 * 1_000_000 * DAYS * 1.05 * 2 * 0.0000133334
    assert b.notes[0].startswith("UNMET:") and "lambda_max_concurrency" in b.notes[0]
    assert "DOES NOT KEEP UP" in b.table()
    reported = b.to_json()
    assert {"monthly_usd", "keeps_up", "unmet_jobs", "max_age_seconds", "lines"} <= reported.keys()
    assert reported["keeps_up"] is False and reported["unmet_jobs"] == b.capacity.unmet_jobs


def test_fleet_hours_come_from_the_simulation_with_every_line_of_an_instance(deployed: Deployed) -> None:
    # GIVEN 1,000 videos/day; a job = 1 s + 50 MB / 50 MB/s + 60 s x 0.7 CPU-s / 1 vCPU (2 vCPUs, 2 jobs) = 44 s
    b = estimate_monthly_cost(Workload(1000, 50, 60, "fleet"), deployed, measured=MEASURED)
    assert b.keeps_up
    assert "44.0 s per job" in " ".join(b.notes)
    hours = b.lines["EC2 c7g.large instance-hours"].quantity
    assert hours == pytest.approx(b.capacity.instance_hours * DAYS)
    # THEN each instance-hour pays the instance, its 30 GB gp3 root volume and 7 detailed-monitoring metrics
    assert b.lines["EC2 c7g.large instance-hours"].usd == pytest.approx(hours * 0.0725)
    assert b.lines["EBS gp3 root volumes"].usd == pytest.approx(hours / 730 * 30 * 0.08)
    assert b.lines["EC2 detailed monitoring (metrics)"].usd == pytest.approx(hours / 730 * 7 * 0.30)
    # the worker's SQS and log traffic crosses the interface endpoints: 30,417 jobs x (1,500 + 2 x 1,200) bytes
    assert b.lines["VPC interface endpoint data processed"].quantity == pytest.approx(1000 * DAYS * 3900 / GB)


def test_fleet_over_its_maximum_reports_the_instances_needed(deployed: Deployed) -> None:
    # 100,000/day x 44 s jobs on 2 slots per instance needs 100,000 / 86,400 x 44 / 2 = 25.5 -> 26 instances; max 4
    b = estimate_monthly_cost(Workload(100_000, 50, 60, "fleet"), deployed, measured=MEASURED)
    assert not b.keeps_up
    # 4 instances x 2 slots x 90,000 s / 44 s = 16,364 jobs at most
    assert b.capacity.unmet_jobs >= 100_000 - 16_364
    assert "about 26 needed" in b.notes[0]
    assert b.lines["EC2 c7g.large instance-hours"].quantity <= 4 * 730


def test_observability_lines(deployed: Deployed) -> None:
    b = estimate_monthly_cost(Workload(240, 50, 60, "lambda"), deployed, measured=MEASURED)
    # logs: 7,300 records x 1,500 bytes + 7,300 invocations x 350 bytes, at $0.50/GB
    ingested = (7300 * ASSUMED_LOG_BYTES_PER_JOB + 7300 * ASSUMED_LAMBDA_PLATFORM_LOG_BYTES) / GB
    assert b.lines["CloudWatch Logs ingestion"].usd == pytest.approx(ingested * 0.50)
    # kept 365 days: in month 12 the groups hold 11.5 months of logs (less than 365 / 30.4167 = 12)
    assert b.lines["CloudWatch Logs storage (kept 365 days)"].quantity == pytest.approx(ingested * 11.5)
    # X-Ray: 240 a day (r = 0.0028/s) is far below the 1-a-second reservoir: all but the 0.14% (~ r/2) that share
    # their second with another request, of which 5% are kept, are recorded
    r = 240 / 86_400
    assert b.lines["X-Ray traces recorded (active tracing)"].quantity == pytest.approx(
        7300 * (1 - 0.95 * r / 2), rel=1e-4
    )
    # EMF: 2 metrics, billed for the hours they are sent: 10 jobs an hour -> 1 - e^-10 of the hours
    assert b.lines["CloudWatch custom metrics (EMF)"].quantity == pytest.approx(2 * (1 - math.exp(-10)))
    # INIT: 0.8 s at 2 GB on each cold start
    init = b.lines["Lambda GB-seconds (INIT, cold starts)"]
    assert init.quantity > 0 and init.rate == "LAMBDA_GB_SECOND"


def test_xray_sampling_records_one_a_second_and_five_percent_of_the_rest() -> None:
    assert xray_traces_per_second(0.001) == pytest.approx(0.001, rel=1e-3)
    assert xray_traces_per_second(100) == pytest.approx(1 + 0.05 * 99)


def test_key_rotations_are_billed_after_year_one(deployed: Deployed) -> None:
    def rotations(month: int) -> float:
        b = estimate_monthly_cost(Workload(1, 1, 1, "lambda"), deployed, measured=MEASURED, storage_month=month)
        return b.lines["KMS key rotations (key material)"].usd

    # 2 keys rotating every 365 days: none billed in month 12, one each in month 13, two each from month 25 on
    assert (rotations(12), rotations(13), rotations(25), rotations(60)) == (0, 2.0, 4.0, 4.0)


def test_storage_follows_the_lifecycle_rules_and_the_volume_tiers(deployed: Deployed) -> None:
    assert kept_days([{"Status": "Enabled", "ExpirationInDays": 90}]) == 90
    assert kept_days([{"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]) is None
    b = estimate_monthly_cost(Workload(1000, 50, 60, "lambda"), deployed, measured=MEASURED, storage_month=3)
    # uploads never expire (only noncurrent versions do): month 3 holds 2.5 months of uploads on average
    assert b.lines["S3 uploads storage"].quantity == pytest.approx(1000 * 50 / 1024 * DAYS * 2.5)
    assert any("never expire" in note for note in b.notes)
    # the access-log bucket keeps 90 days: ~2.96 months of 400-byte records, one per PUT and GET
    assert b.lines["S3 access-log bucket storage"].quantity > 0
    # tiers: 50 TB at $0.023, the next 450 TB at $0.022
    assert s3_standard_usd(51_200 + 1_000) == pytest.approx(51_200 * 0.023 + 1_000 * 0.022)


def test_idle_costs_are_summed(deployed: Deployed) -> None:
    b = estimate_monthly_cost(Workload(1, 1, 1, "fleet"), deployed, measured=MEASURED)
    # fleet stack: 5 alarms reading 8 metrics (the idle scale-in alarm is metric math over 2, the spare-capacity one
    # over 3), 1 dashboard, 2 keys (the queues' and the log groups'), 10 interface endpoint-AZs x 730 h x $0.01
    assert b.lines["CloudWatch alarms (alarm metrics)"].usd == pytest.approx(8 * 0.10)
    assert b.lines["CloudWatch dashboards"].usd == pytest.approx(3.00)
    assert b.lines["KMS customer-managed keys"].usd == pytest.approx(2.00)
    assert b.lines["VPC interface endpoint-AZ-hours"].usd == pytest.approx(73.00)


def test_target_tracking_pays_for_the_two_alarms_aws_creates() -> None:
    # GIVEN a backlog policy whose metric math reads 2 metrics (visible messages, in-service instances)
    stat = {"MetricStat": {"Metric": {"Namespace": "AWS/SQS", "MetricName": "x"}, "Stat": "Sum"}}
    policy = {
        "Type": "AWS::AutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "CustomizedMetricSpecification": {"Metrics": [{"Id": "e", "Expression": "v / n"}, stat, stat]}
            },
        },
    }
    # THEN 2 alarms (high and low) x 2 metrics each = 4 alarm metrics
    assert _extras({"Policy": policy}).tracking_alarm_metrics == 4


def test_a_warm_pool_of_stopped_instances_pays_their_volumes_only(deployed: Deployed) -> None:
    pooled = dataclasses.replace(
        deployed,
        extras={**deployed.extras, "fleet": dataclasses.replace(deployed.extras["fleet"], warm_pool={"MinSize": 2})},
    )
    b = estimate_monthly_cost(Workload(1, 1, 1, "fleet"), pooled, measured=MEASURED)
    # prepared capacity defaults to the group's max (4); 1 video a day keeps the group near 0 instances
    hours = b.lines["EC2 c7g.large instance-hours"].quantity
    waiting = max(2, 4 - hours / 730)
    assert b.lines["warm pool, stopped instances' EBS"].usd == pytest.approx(waiting * 30 * 0.08)
    assert "warm pool, running instance-hours" not in b.lines


def test_provisioned_pollers_pay_event_poller_units(deployed: Deployed) -> None:
    consumer = dataclasses.replace(deployed.consumer, provisioned_pollers=(2, 20))
    b = estimate_monthly_cost(
        Workload(1000, 50, 60, "lambda"), dataclasses.replace(deployed, consumer=consumer), measured=MEASURED
    )
    assert b.lines["Lambda event poller unit-hours (min)"].usd == pytest.approx(2 * 730 * 0.00925)


def test_the_transcode_speed_is_the_projects_own_benchmark(tmp_path: Path) -> None:
    # bench/results/transcode.json: 6.98 ffmpeg CPU-s per 10 s video in the worker
    committed = json.loads((REPO / "bench/results/transcode.json").read_text())
    per_video = committed["runs"]["worker"]["ffmpeg_cpu_seconds_per_video"]
    assert transcode_cpu_per_video_second(REPO / "bench/results/transcode.json") == pytest.approx(per_video / 10)
    # a file written by today's bench names the video length itself
    newer = tmp_path / "transcode.json"
    runs = {"worker": {"ffmpeg_cpu_seconds_per_video": 9}}
    newer.write_text(json.dumps({"video_seconds": 20, "source": "?", "runs": runs}))
    assert transcode_cpu_per_video_second(newer) == pytest.approx(0.45)


def test_every_price_and_every_line_names_its_source(deployed: Deployed) -> None:
    assert set(PRICES) - {"PRICES_DATE", "PRICES_REGION", "HOURS_PER_MONTH"} <= set(SOURCES)
    for path in ("lambda", "fleet"):
        b = estimate_monthly_cost(Workload(1000, 50, 60, path), deployed, measured=MEASURED)
        for line in b.to_json()["lines"]:
            assert line["source"].startswith("https://aws.amazon.com/") and line["region"] == "us-east-1"


@pytest.mark.parametrize("volume", [0, -5, float("nan")])
def test_volumes_must_be_positive(volume: float) -> None:
    with pytest.raises(CostInputError, match="--videos-per-day must be a number > 0"):
        Workload(volume, 50, 60, "fleet")


def test_the_cost_and_scaling_clis_do_not_import_aws_cdk() -> None:
    # jsii starts Node.js when aws_cdk is imported: the CLIs must not need it
    code = (
        "import sys, tools.cost.__main__, tools.cost.chart, tools.scaling.__main__; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import json; {code}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    # (of the product, only the contracts: the instance-type catalogue and the SQS and media limits, standard library
    # only by design)
    product = [m for m in json.loads(out) if m.split(".")[0] == "sqs_decoupling" and m != "sqs_decoupling"]
    assert not [m for m in json.loads(out) if m.split(".")[0] in ("aws_cdk", "jsii", "constructs")]
    assert not [m for m in product if not m.startswith("sqs_decoupling.contracts")]
