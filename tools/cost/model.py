"""What a workload costs per month on each consumer path, from the synthesized templates, as AWS would bill it.

Prices are one dated table (tools/cost/prices.py, each with its source). What the stacks deploy (instance type, root
volume, detailed monitoring, warm pool, worker concurrency, scaling rules, Lambda memory/architecture/batching/
tracing/pollers, the queue's KMS data-key reuse, key rotation, bucket lifecycle rules, access logging, log
retention, alarms, dashboards, endpoints) is read from the templates in cdk.out. Measured figures come from the
project's own benchmark files in bench/results/. Every other number is an ASSUMPTION constant below.

Capacity is part of the price: each path is simulated on one day of the workload (``tools.cost.capacity``). A path that
leaves jobs unstarted is reported as not keeping up, with its unmet jobs and the oldest message's age, and is priced
for the work it really did, never as if it had served every job.

- Lambda runs the ``preview`` profile: seconds per record = the measured handler time
  (bench/results/handler.json) + the download of the upload; INIT seconds = the measured import of the handler
  (bench/results/handler_import.json), billed on each cold start since 2025-08-01.
- The fleet runs the ``transcode`` profile: seconds per job = the measured ffmpeg CPU seconds per second of video
  (bench/results/transcode.json) on the vCPUs one job gets + the download + a fixed overhead.
- Storage, log storage and key rotations are priced as they stand in month ``storage_month`` (default 12).
No free tier; no data transfer out of the region (results stay in the bucket).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.cost import prices
from tools.cost.capacity import DayOfWork, simulate_day
from tools.cost.prices import (
    HOURS_PER_MONTH,
    PRICES,
    PRICES_DATE,
    PRICES_REGION,
    SOURCES,
    instance_price,
    instance_vcpus,
)
from tools.localcloud.paths import REPO_ROOT
from tools.scaling.template import (
    FLEET_STACK,
    PIPELINE_STACK,
    Fleet,
    IdleResources,
    LambdaConsumer,
    load_template,
    of_type,
    read_fleet,
    read_lambda,
)
from tools.scaling.workload import WorkloadError, measured_handler_seconds

ConsumerPath = Literal["lambda", "fleet"]
PATHS: tuple[ConsumerPath, ...] = ("lambda", "fleet")

# ---------------------------------------------------------------------------------------------------------------
# MEASURED (the project's own benchmark files; rerun the bench with --update-bench to refresh them)
# ---------------------------------------------------------------------------------------------------------------
TRANSCODE_BENCH = REPO_ROOT / "bench" / "results" / "transcode.json"
IMPORT_BENCH = REPO_ROOT / "bench" / "results" / "handler_import.json"
# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS (not prices, not read from a template, not measured here)
# ---------------------------------------------------------------------------------------------------------------
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # 30.4166...
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1024**3
SQS_CHUNK_BYTES = 64 * 1024
LONG_POLL_WAIT_SECONDS = 20  # every empty receive waits 20 s, so one poller makes 3 empty receives a minute
LAMBDA_SQS_POLLERS = 5  # the event source mapping starts with 5 pollers, which long-poll even when the queue is empty
ASSUMED_NOTIFICATION_BYTES = 1_200  # one S3 event notification body
ASSUMED_S3_DOWNLOAD_MB_PER_SECOND = 50.0
ASSUMED_JOB_OVERHEAD_SECONDS = 1.0  # fleet: receive, probe, uploads, delete
ASSUMED_TRANSCODE_OUTPUT_RATIO = 0.5  # 720p + 480p renditions + thumbnail take half the input's bytes
ASSUMED_TRANSCODE_OUTPUT_OBJECTS = 4  # metadata.json, thumbnail.jpg, 720p.mp4, 480p.mp4
ASSUMED_PREVIEW_OUTPUT_MB = 0.1  # metadata.json + thumbnail.jpg
ASSUMED_PREVIEW_OUTPUT_OBJECTS = 2
ASSUMED_S3_GETS_PER_VIDEO = 2  # HEAD + GET of the upload
# Logs: one structured JSON line and one EMF metric document per job (about 0.7 KB each), and Lambda's START, END
# and REPORT lines per invocation. Calibrate with the log group's IncomingBytes / jobs.
ASSUMED_LOG_BYTES_PER_JOB = 1_500
ASSUMED_LAMBDA_PLATFORM_LOG_BYTES = 350
# Custom metrics sent on a job's success path (sqs_decoupling.contracts.telemetry): VideosProcessed and
# ProcessingSeconds under the service dimension; the worker adds JobsInFlight. Failures add a metric per reason / error
# type.
LAMBDA_METRIC_SERIES = 2
FLEET_METRIC_SERIES = 3
# X-Ray: Lambda's active tracing records the first request each second and 5% of the others (Lambda Developer
# Guide, "Visualize Lambda function invocations using AWS X-Ray").
XRAY_RESERVOIR_PER_SECOND = 1
XRAY_FIXED_RATE = 0.05
# Cold starts: AWS documents neither how long an idle execution environment is kept nor how often a busy one is
# replaced. ASSUMED: an invocation after a gap longer than 10 minutes starts cold, and each environment in use is
# replaced every 2 hours. Calibrate with the count of REPORT lines that carry an "Init Duration".
ASSUMED_ENVIRONMENT_IDLE_SECONDS = 600
ASSUMED_ENVIRONMENT_LIFETIME_HOURS = 2.0
# S3 server access logs: one record per request to a logged bucket; AWS charges no delivery, only the storage.
ASSUMED_ACCESS_LOG_RECORD_BYTES = 400
STORAGE_MONTH = 12  # default: the month whose bill the breakdown shows (storage that grows, key rotations)
PRINCIPALS_PRODUCERS = 1  # s3.amazonaws.com sends the notifications
PRINCIPALS_CONSUMERS = 1  # the function's role, or the instance role


class CostInputError(ValueError):
    """A workload value the model cannot price (the message names it and the allowed range)."""


class MissingMeasurement(ValueError):
    """A benchmark file the model reads is missing or lacks a figure (the message says which and how to make it)."""


@dataclass(frozen=True)
class Workload:
    videos_per_day: float
    average_size_mb: float
    average_duration_seconds: float
    path: ConsumerPath
    notification_bytes: int = ASSUMED_NOTIFICATION_BYTES

    def __post_init__(self) -> None:
        for name, value in (
            ("--videos-per-day", self.videos_per_day),
            ("--size-mb", self.average_size_mb),
            ("--duration-s", self.average_duration_seconds),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise CostInputError(f"{name} must be a number > 0, got {value:g}")


@dataclass(frozen=True)
class Line:
    """One item of the bill: how much, at what unit price (per ``per`` units), from which price constant."""

    item: str
    quantity: float
    unit: str
    usd: float
    rate: str  # the constant in tools/cost/prices.py
    unit_price_usd: float
    per: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "quantity": round(self.quantity, 4),
            "unit": self.unit,
            "unit_price_usd": self.unit_price_usd,
            "per_units": self.per,
            "usd": round(self.usd, 4),
            "price": self.rate,
            "source": SOURCES[self.rate],
            "region": PRICES_REGION,
        }


@dataclass
class CostBreakdown:
    workload: Workload
    capacity: DayOfWork
    lines: dict[str, Line] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines.values())

    @property
    def keeps_up(self) -> bool:
        return self.capacity.keeps_up

    def add(
        self, item: str, quantity: float, unit: str, rate: str, *, per: float = 1.0, price: float | None = None
    ) -> Line:
        """A line of ``quantity`` at the constant ``rate`` (or ``price``, for a table entry or a blended tier)."""
        unit_price = float(PRICES[rate]) if price is None else price
        line = Line(item, quantity, unit, quantity / per * unit_price, rate, unit_price, per)
        self.lines[item] = line
        return line

    def to_json(self) -> dict[str, Any]:
        c = self.capacity
        return {
            "monthly_usd": round(self.total, 2),
            "keeps_up": c.keeps_up,
            "unmet_jobs": c.unmet_jobs,
            "unmet_jobs_per": "simulated day (1,440 minutes of arrivals + the drain)",
            "max_age_seconds": c.max_age_seconds,
            "jobs_per_day": c.jobs_in,
            "jobs_done_per_day": c.jobs_done,
            "peak": c.peak,
            "lines": [line.to_json() for line in self.lines.values()],
            "notes": self.notes,
        }

    def table(self) -> str:
        w, c = self.workload, self.capacity
        verdict = (
            "keeps up"
            if c.keeps_up
            else f"DOES NOT KEEP UP: {c.unmet_jobs:,} of {c.jobs_in:,} jobs a day unmet, oldest message "
            f"{c.max_age_seconds / 3600:,.1f} h old; priced for the {c.jobs_done:,} it does"
        )
        rows = [
            f"{w.path} path: {w.videos_per_day:g} videos/day, {w.average_size_mb:g} MB, "
            f"{w.average_duration_seconds:g} s  ({PRICES_REGION} list prices, {PRICES_DATE})  [{verdict}]",
            f"{'item':<46}{'quantity / month':>22} {'unit':<16}{'USD / month':>12}",
        ]
        for line in self.lines.values():
            rows.append(f"{line.item:<46}{line.quantity:>22,.1f} {line.unit:<16}{line.usd:>12,.2f}")
        rows.append(f"{'TOTAL':<46}{'':>22} {'':<16}{self.total:>12,.2f}")
        rows.extend(f"note: {n}" for n in self.notes)
        return "\n".join(rows)


@dataclass(frozen=True)
class Extras:
    """What a stack's template says beyond ``IdleResources``, for the lines a bill shows."""

    log_retention_days: float | None  # the longest retention of the stack's log groups; None: a group never expires
    tracking_alarm_metrics: int  # the alarms target tracking creates (2 per policy) x the metrics each reads
    rotating_keys: int
    rotation_period_days: int
    access_log_days: float | None  # how long the access-log bucket keeps its records (None: no such bucket)
    logged_buckets: int
    tracing_active: bool = False  # Lambda: the consumer function's TracingConfig
    detailed_monitoring: bool = False  # fleet: the launch template's Monitoring
    warm_pool: dict[str, Any] | None = None  # fleet: the AWS::AutoScaling::WarmPool's properties


def _extras(resources: dict[str, dict[str, Any]]) -> Extras:
    retentions = [props.get("RetentionInDays") for _, props in of_type(resources, "AWS::Logs::LogGroup")]
    forever = any(days is None for days in retentions)
    tracking = 0
    for _, props in of_type(resources, "AWS::AutoScaling::ScalingPolicy"):
        if props.get("PolicyType") == "TargetTrackingScaling":
            spec = props["TargetTrackingConfiguration"].get("CustomizedMetricSpecification", {})
            tracking += 2 * max(1, sum(1 for q in spec.get("Metrics", []) if "MetricStat" in q))
    keys = [props for _, props in of_type(resources, "AWS::KMS::Key") if props.get("EnableKeyRotation")]
    buckets = dict(of_type(resources, "AWS::S3::Bucket"))
    targets = [
        props["LoggingConfiguration"].get("DestinationBucketName", {}).get("Ref")
        for props in buckets.values()
        if "LoggingConfiguration" in props
    ]
    log_bucket = buckets.get(next((t for t in targets if t), ""))
    mappings = [p for _, p in of_type(resources, "AWS::Lambda::EventSourceMapping")]
    function = resources.get(mappings[0]["FunctionName"].get("Ref", ""), {}) if mappings else {}
    launch = [p["LaunchTemplateData"] for _, p in of_type(resources, "AWS::EC2::LaunchTemplate")]
    pools = [p for _, p in of_type(resources, "AWS::AutoScaling::WarmPool")]
    return Extras(
        log_retention_days=None if forever else float(max((int(d or 0) for d in retentions), default=0)),
        tracking_alarm_metrics=tracking,
        rotating_keys=len(keys),
        rotation_period_days=min((int(k.get("RotationPeriodInDays", 365)) for k in keys), default=365),
        access_log_days=None if log_bucket is None else kept_days(_rules(log_bucket)),
        logged_buckets=sum(1 for t in targets if t),
        tracing_active=function.get("Properties", {}).get("TracingConfig", {}).get("Mode") == "Active",
        detailed_monitoring=any(data.get("Monitoring", {}).get("Enabled") for data in launch),
        warm_pool=pools[0] if pools else None,
    )


def _rules(bucket: dict[str, Any]) -> list[dict[str, Any]]:
    return list(bucket.get("LifecycleConfiguration", {}).get("Rules", []))


@dataclass(frozen=True)
class Deployed:
    """What the templates in one cloud assembly deploy, as far as cost goes."""

    fleet: Fleet
    consumer: LambdaConsumer
    idle: dict[ConsumerPath, IdleResources]
    alarm_metrics: dict[ConsumerPath, int]
    kms_reuse_seconds: dict[ConsumerPath, int]
    extras: dict[ConsumerPath, Extras]

    @classmethod
    def read(cls, cdk_out: Path) -> Deployed:
        idle: dict[ConsumerPath, IdleResources] = {}
        metrics: dict[ConsumerPath, int] = {}
        reuse: dict[ConsumerPath, int] = {}
        extras: dict[ConsumerPath, Extras] = {}
        stacks: tuple[tuple[ConsumerPath, str], ...] = (("lambda", PIPELINE_STACK), ("fleet", FLEET_STACK))
        for path, stack in stacks:
            resources = load_template(cdk_out, stack)["Resources"]
            idle[path] = IdleResources()
            idle[path].add(resources)
            metrics[path] = sum(
                max(1, sum(1 for q in props.get("Metrics", []) if "MetricStat" in q))
                for _, props in of_type(resources, "AWS::CloudWatch::Alarm")
            )
            jobs = [p for _, p in of_type(resources, "AWS::SQS::Queue") if "RedrivePolicy" in p]
            reuse[path] = int(jobs[0].get("KmsDataKeyReusePeriodSeconds", 300)) if jobs else 300
            extras[path] = _extras(resources)
        return cls(read_fleet(cdk_out), read_lambda(cdk_out), idle, metrics, reuse, extras)


@dataclass(frozen=True)
class Measured:
    """The benchmark figures the model prices from (or the caller's own, from a real deployment)."""

    lambda_record_seconds: float  # handler seconds per record, without the download
    lambda_init_seconds: float
    transcode_cpu_per_video_second: float

    @classmethod
    def read(cls) -> Measured:
        try:
            record = measured_handler_seconds()
        except WorkloadError as error:
            raise MissingMeasurement(str(error)) from None
        return cls(record, _import_seconds(IMPORT_BENCH), transcode_cpu_per_video_second(TRANSCODE_BENCH))


def _bench(path: Path, how: str) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise MissingMeasurement(f"cannot read {path} ({error}): run `{how} --update-bench`") from None


def _import_seconds(path: Path) -> float:
    try:
        return float(_bench(path, "python bench/import_bench.py")["handler"]["median_s"])
    except (KeyError, TypeError) as error:
        raise MissingMeasurement(f"{path} has no handler.median_s ({error})") from None


def transcode_cpu_per_video_second(path: Path) -> float:
    """ffmpeg CPU seconds per second of video in the worker's transcode, from bench/transcode_bench.py's result."""
    data = _bench(path, "python bench/transcode_bench.py")
    try:
        per_video = float(data["runs"]["worker"]["ffmpeg_cpu_seconds_per_video"])
        seconds = data.get("video_seconds")
        if seconds is None:  # written before the field existed: "camera: 10 s 1920x1080 ..."
            found = re.search(r":\s*([\d.]+) s\b", str(data["source"]))
            seconds = float(found.group(1)) if found else None
        if not seconds:
            raise KeyError("video_seconds")
        return per_video / float(seconds)
    except (KeyError, TypeError, ValueError) as error:
        raise MissingMeasurement(
            f"{path} lacks {error}: run `python bench/transcode_bench.py --update-bench`"
        ) from None


def chunks(payload_bytes: float) -> int:
    """SQS bills each 64 KB chunk of a payload as one request."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def transcode_seconds(w: Workload, vcpus: float, cpu_per_video_second: float) -> float:
    """Wall time of one transcode job on ``vcpus`` CPUs, from the measured CPU seconds per second of video."""
    return (
        ASSUMED_JOB_OVERHEAD_SECONDS
        + w.average_size_mb / ASSUMED_S3_DOWNLOAD_MB_PER_SECOND
        + w.average_duration_seconds * cpu_per_video_second / vcpus
    )


def preview_seconds(w: Workload, measured_record_seconds: float) -> float:
    """One preview record: the measured handler time plus downloading the upload."""
    return measured_record_seconds + w.average_size_mb / ASSUMED_S3_DOWNLOAD_MB_PER_SECOND


def kept_days(rules: list[dict[str, Any]]) -> float | None:
    """Days a current object version stays, from a bucket's enabled lifecycle rules (None: forever)."""
    days = [r["ExpirationInDays"] for r in rules if r.get("Status") == "Enabled" and "ExpirationInDays" in r]
    return float(min(days)) if days else None


def held_months(kept: float | None, month: int) -> float:
    """Months of daily additions a store holds in month ``month`` when each addition is kept ``kept`` days."""
    grown = month - 0.5  # the average day of month N holds N - 0.5 months of additions
    return grown if kept is None else min(grown, kept / DAYS_PER_MONTH)


def xray_traces_per_second(rate: float) -> float:
    """Traces recorded per second at ``rate`` Poisson requests a second: the reservoir's one, 5% of the rest."""
    reservoir = min(XRAY_RESERVOIR_PER_SECOND, 1 - math.exp(-rate))
    return reservoir + XRAY_FIXED_RATE * max(0.0, rate - reservoir)


def cold_starts_per_day(invocations: float, busy_seconds: float) -> float:
    """INIT phases a day (ASSUMED idle timeout and environment lifetime, see above)."""
    if not invocations:
        return 0.0
    rate = invocations / 86_400
    after_idle = invocations * math.exp(-rate * ASSUMED_ENVIRONMENT_IDLE_SECONDS)
    environments = math.ceil(busy_seconds / 86_400)
    return min(invocations, after_idle + environments * 24 / ASSUMED_ENVIRONMENT_LIFETIME_HOURS)


class _Bill:
    """Builds one breakdown; each method adds the lines of one part of the bill."""

    def __init__(
        self, out: CostBreakdown, deployed: Deployed, month: int, job_seconds: float, measured: Measured
    ) -> None:
        self.out, self.deployed, self.month, self.job_seconds, self.measured = (
            out,
            deployed,
            month,
            job_seconds,
            measured,
        )
        w, c = out.workload, out.capacity
        self.path: ConsumerPath = w.path
        self.extras = deployed.extras[w.path]
        self.arrived = w.videos_per_day * DAYS_PER_MONTH  # messages a month
        self.done = self.arrived * c.served_share  # jobs a month the path really does

    def lambda_compute(self) -> tuple[float, float, float]:
        """Lambda lines; returns (receives, messages per receive, empty receives) for the SQS line."""
        out, c, consumer = self.out, self.out.capacity, self.deployed.consumer
        gb = consumer.memory_mb / 1024
        invocations = c.invocations * DAYS_PER_MONTH
        gb_seconds = c.busy_seconds * DAYS_PER_MONTH * gb
        price = prices.LAMBDA_GB_SECOND[consumer.architecture]
        out.add("Lambda GB-seconds (INVOKE)", gb_seconds, "GB-second", "LAMBDA_GB_SECOND", price=price)
        colds = cold_starts_per_day(c.invocations, c.busy_seconds) * DAYS_PER_MONTH
        init = colds * self.measured.lambda_init_seconds * gb
        out.add("Lambda GB-seconds (INIT, cold starts)", init, "GB-second", "LAMBDA_GB_SECOND", price=price)
        out.add("Lambda requests", invocations, "requests", "LAMBDA_PER_MILLION_REQUESTS", per=1e6)
        if self.extras.tracing_active:
            traces = xray_traces_per_second(invocations / SECONDS_PER_MONTH) * SECONDS_PER_MONTH
            out.add(
                "X-Ray traces recorded (active tracing)", traces, "traces", "XRAY_TRACES_RECORDED_PER_MILLION", per=1e6
            )
        if consumer.provisioned_pollers:
            low, _ = consumer.provisioned_pollers
            hours = low * HOURS_PER_MONTH
            out.add("Lambda event poller unit-hours (min)", hours, "EPU-hours", "LAMBDA_SQS_EVENT_POLLER_UNIT_HOUR")
            out.notes.append(
                f"provisioned pollers: priced at the minimum {low} (one EPU each, ASSUMED); scaling above it adds more"
            )
        if self.job_seconds * consumer.batch_size > consumer.timeout_seconds:
            out.notes.append(
                f"a full batch of {consumer.batch_size} takes {self.job_seconds * consumer.batch_size:.0f} s, over "
                f"the function's {consumer.timeout_seconds} s timeout: raise lambda_timeout_seconds or lower "
                "lambda_batch_size"
            )
        out.notes.append(
            f"preview profile: {self.job_seconds:.2f} s per record, {consumer.memory_mb} MB {consumer.architecture}; "
            f"{colds / DAYS_PER_MONTH:,.1f} cold starts a day x {self.measured.lambda_init_seconds:.2f} s INIT "
            "(bench/results/handler_import.json)"
        )
        per_receive = c.jobs_done / c.invocations if c.invocations else 1.0
        return invocations, per_receive, LAMBDA_SQS_POLLERS * SECONDS_PER_MONTH / LONG_POLL_WAIT_SECONDS

    def fleet_compute(self) -> tuple[float, float, float]:
        """Fleet lines from the simulated day; returns what SQS needs."""
        out, c, f = self.out, self.out.capacity, self.deployed.fleet
        # The drain hour belongs to the next day's bill in a steady state; a group never bills more than max x 24 h.
        hours = min(c.instance_hours, f.max_size * 24) * DAYS_PER_MONTH
        out.add(
            f"EC2 {f.instance_type} instance-hours",
            hours,
            "instance-hours",
            "EC2_ON_DEMAND_PER_HOUR",
            price=instance_price(f.instance_type),
        )
        out.add("EBS gp3 root volumes", hours / HOURS_PER_MONTH * f.root_volume_gb, "GB-month", "EBS_GP3_PER_GB_MONTH")
        if self.extras.detailed_monitoring:
            metric_months = hours / HOURS_PER_MONTH * prices.EC2_DETAILED_MONITORING_METRICS
            out.add(
                "EC2 detailed monitoring (metrics)",
                metric_months,
                "metric-months",
                "CLOUDWATCH_CUSTOM_METRIC_PER_MONTH",
            )
        if not self.deployed.idle["fleet"].interface_endpoint_azs:
            out.add("public IPv4 address-hours", hours, "address-hours", "PUBLIC_IPV4_PER_HOUR")
        pool = self.extras.warm_pool
        if pool is not None:
            prepared = int(pool.get("MaxGroupPreparedCapacity", f.max_size))
            waiting = max(int(pool.get("MinSize", 0)), prepared - hours / HOURS_PER_MONTH)
            if pool.get("PoolState", "Stopped") == "Running":
                out.add(
                    "warm pool, running instance-hours",
                    waiting * HOURS_PER_MONTH,
                    "instance-hours",
                    "EC2_ON_DEMAND_PER_HOUR",
                    price=instance_price(f.instance_type),
                )
            out.add("warm pool, stopped instances' EBS", waiting * f.root_volume_gb, "GB-month", "EBS_GP3_PER_GB_MONTH")
        out.notes.append(
            f"transcode profile: {self.job_seconds:.1f} s per job ({self.measured.transcode_cpu_per_video_second:.2f} "
            f"CPU-s per video-second, bench/results/transcode.json), {f.worker_concurrency} per {f.instance_type}; "
            f"{c.instance_hours:.1f} instance-hours a day, peak {c.peak}"
        )
        idle_seconds = max(0.0, c.instance_hours * 3600 * f.worker_concurrency - c.busy_seconds) * DAYS_PER_MONTH
        return self.done / 10, 10, idle_seconds / LONG_POLL_WAIT_SECONDS  # the worker receives up to 10 at a time

    def requests(self, receives: float, batch: float, empty_receives: float) -> None:
        w, out = self.out.workload, self.out
        sqs = (
            self.arrived * chunks(w.notification_bytes)
            + receives * chunks(batch * w.notification_bytes)
            + receives  # DeleteMessageBatch of the same size as the receive
            + empty_receives
        )
        out.add("SQS requests (64 KB chunks)", sqs, "requests", "SQS_STANDARD_PER_MILLION_REQUESTS", per=1e6)
        out.notes.append(f"SQS: {empty_receives:,.0f} of the requests are empty long-poll receives")
        # AWS-NOTES: requests ~= seconds / reuse period x (2 x producers + consumers); never more than one per message.
        per_principal = min(self.arrived, SECONDS_PER_MONTH / self.deployed.kms_reuse_seconds[self.path])
        kms = per_principal * (2 * PRINCIPALS_PRODUCERS + PRINCIPALS_CONSUMERS)
        out.add("KMS requests", kms, "requests", "KMS_PER_10K_REQUESTS", per=1e4)

    def storage(self, output_mb: float, output_objects: int) -> None:
        w, out = self.out.workload, self.out
        idle = self.deployed.idle[self.path]
        per_day = {
            "Uploads": w.videos_per_day * w.average_size_mb / 1024,
            "Processed": w.videos_per_day * self.out.capacity.served_share * output_mb / 1024,
        }
        stored: dict[str, float] = {}
        for prefix, gb_per_day in per_day.items():
            bucket = next((lid for lid in idle.lifecycle if lid.startswith(prefix)), None)
            if bucket is None:
                continue
            days = kept_days(idle.lifecycle[bucket]["Rules"])
            held = held_months(days, self.month)
            stored[f"S3 {prefix.lower()} storage"] = gb_per_day * DAYS_PER_MONTH * held
            if days is None:
                out.notes.append(
                    f"{bucket}: current versions never expire (template lifecycle), so storage grows by "
                    f"{gb_per_day * DAYS_PER_MONTH:,.0f} GB every month; shown: month {self.month}"
                )
        puts = self.arrived + self.done * output_objects
        gets = self.done * ASSUMED_S3_GETS_PER_VIDEO
        if self.extras.access_log_days is not None or self.extras.logged_buckets:
            records_per_month = puts + gets
            monthly_gb = records_per_month * ASSUMED_ACCESS_LOG_RECORD_BYTES / GB
            stored["S3 access-log bucket storage"] = monthly_gb * held_months(self.extras.access_log_days, self.month)
        total = sum(stored.values())
        blended = prices.s3_standard_usd(total) / total if total else prices.S3_STANDARD_PER_GB_MONTH
        for item, gb_month in stored.items():
            out.add(item, gb_month, "GB-month", "S3_STANDARD_TIERS", price=blended)
        out.add("S3 PUT requests", puts, "requests", "S3_PUT_PER_1000", per=1000)
        out.add("S3 GET/HEAD requests", gets, "requests", "S3_GET_PER_1000", per=1000)

    def observability(self) -> None:
        out, c = self.out, self.out.capacity
        invocations = c.invocations * DAYS_PER_MONTH if self.path == "lambda" else 0.0
        log_gb = (self.done * ASSUMED_LOG_BYTES_PER_JOB + invocations * ASSUMED_LAMBDA_PLATFORM_LOG_BYTES) / GB
        out.add("CloudWatch Logs ingestion", log_gb, "GB", "CLOUDWATCH_LOGS_INGESTION_PER_GB")
        retention = self.extras.log_retention_days
        out.add(
            f"CloudWatch Logs storage (kept {'forever' if retention is None else f'{retention:g} days'})",
            log_gb * held_months(retention, self.month),
            "GB-month",
            "CLOUDWATCH_LOGS_STORAGE_PER_GB_MONTH",
        )
        series = LAMBDA_METRIC_SERIES if self.path == "lambda" else FLEET_METRIC_SERIES
        jobs_per_hour = self.done / HOURS_PER_MONTH
        metric_months = series * (1 - math.exp(-jobs_per_hour))  # billed for the hours a metric is sent
        out.add("CloudWatch custom metrics (EMF)", metric_months, "metric-months", "CLOUDWATCH_CUSTOM_METRIC_PER_MONTH")

    def idle(self) -> None:
        out, idle = self.out, self.deployed.idle[self.path]
        metrics = self.deployed.alarm_metrics[self.path]
        out.add("CloudWatch alarms (alarm metrics)", metrics, "alarm metrics", "CLOUDWATCH_ALARM_METRIC_PER_MONTH")
        if self.extras.tracking_alarm_metrics:
            out.add(
                "CloudWatch alarms of target tracking (AWS-managed)",
                self.extras.tracking_alarm_metrics,
                "alarm metrics",
                "CLOUDWATCH_ALARM_METRIC_PER_MONTH",
            )
        out.add("CloudWatch dashboards", idle.dashboards, "dashboards", "CLOUDWATCH_DASHBOARD_PER_MONTH")
        out.add("KMS customer-managed keys", idle.kms_keys, "keys", "KMS_KEY_PER_MONTH")
        days_elapsed = (self.month - 0.5) * DAYS_PER_MONTH
        rotations = min(prices.KMS_ROTATIONS_BILLED, int(days_elapsed // self.extras.rotation_period_days))
        out.add(
            "KMS key rotations (key material)",
            self.extras.rotating_keys * rotations,
            "rotations",
            "KMS_ROTATION_PER_MONTH",
        )
        if self.extras.rotating_keys and rotations < prices.KMS_ROTATIONS_BILLED:
            out.notes.append(
                f"KMS: {self.extras.rotating_keys} keys rotate every {self.extras.rotation_period_days} days; each of "
                f"the first {prices.KMS_ROTATIONS_BILLED} rotations adds $1/month a key (month {self.month}: "
                f"{rotations} so far)"
            )
        if idle.interface_endpoint_azs:
            hours = idle.interface_endpoint_azs * HOURS_PER_MONTH
            out.add("VPC interface endpoint-AZ-hours", hours, "endpoint-AZ-hours", "VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR")
            if self.path == "fleet":  # the worker's SQS and Logs traffic crosses the endpoints; S3 uses the gateway
                gb = self.done * (ASSUMED_LOG_BYTES_PER_JOB + 2 * self.out.workload.notification_bytes) / GB
                out.add("VPC interface endpoint data processed", gb, "GB", "VPC_INTERFACE_ENDPOINT_PER_GB")


def estimate_monthly_cost(
    workload: Workload,
    deployed: Deployed,
    *,
    measured: Measured | None = None,
    measured_record_seconds: float | None = None,
    job_seconds: float | None = None,
    storage_month: int = STORAGE_MONTH,
) -> CostBreakdown:
    """The monthly cost of ``workload`` on its consumer path with the stacks as synthesized in ``deployed``.

    ``measured`` defaults to the benchmark files; ``measured_record_seconds`` replaces the handler's time per record
    (the download is added); ``job_seconds`` replaces the whole job (fleet) or record (Lambda) time.
    """
    w = workload
    figures = measured or Measured.read()
    if measured_record_seconds is not None:
        figures = Measured(measured_record_seconds, figures.lambda_init_seconds, figures.transcode_cpu_per_video_second)
    if w.path == "lambda":
        seconds = job_seconds or preview_seconds(w, figures.lambda_record_seconds)
        capacity = simulate_day(deployed.consumer, w.videos_per_day, seconds)
        output_mb, output_objects = ASSUMED_PREVIEW_OUTPUT_MB, ASSUMED_PREVIEW_OUTPUT_OBJECTS
    else:
        f = deployed.fleet
        vcpus_per_job = instance_vcpus(f.instance_type) / f.worker_concurrency
        seconds = job_seconds or transcode_seconds(w, vcpus_per_job, figures.transcode_cpu_per_video_second)
        capacity = simulate_day(f, w.videos_per_day, seconds)
        output_mb = w.average_size_mb * ASSUMED_TRANSCODE_OUTPUT_RATIO
        output_objects = ASSUMED_TRANSCODE_OUTPUT_OBJECTS
    out = CostBreakdown(workload=w, capacity=capacity)
    bill = _Bill(out, deployed, storage_month, seconds, figures)
    compute = bill.lambda_compute() if w.path == "lambda" else bill.fleet_compute()
    if not capacity.keeps_up:
        out.notes.insert(
            0,
            f"UNMET: {capacity.unmet_jobs:,} of {capacity.jobs_in:,} jobs a day not done (oldest message "
            f"{capacity.max_age_seconds / 3600:,.1f} h old); the backlog grows: "
            + (
                "raise lambda_max_concurrency (or use provisioned pollers)"
                if w.path == "lambda"
                else "raise worker_max_instances (about "
                f"{math.ceil(w.videos_per_day / 86_400 * seconds / deployed.fleet.worker_concurrency)} needed)"
            ),
        )
    bill.requests(*compute)
    bill.storage(output_mb, output_objects)
    bill.observability()
    bill.idle()
    return out
