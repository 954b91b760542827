"""What a workload costs per month on each consumer path, from the synthesized templates (what would be deployed).

Prices are one dated table (cost/prices.py). What the stacks deploy (instance type, root volume, worker
concurrency, scaling rules, Lambda memory/timeout/architecture/batching, the queue's KMS data-key reuse, bucket
lifecycle rules, alarms, dashboards, endpoints, KMS keys) is read from the templates in cdk.out by
``scaling.template``. Every other number is an ASSUMPTION constant below, named and explained.

- Lambda runs the ``preview`` profile (metadata.json + thumbnail.jpg): its seconds per record are the measured
  handler time (bench/results/handler.json) plus the download of the upload.
- The fleet runs the ``transcode`` profile: its instance-hours come from the scaling simulator on a day of
  steady arrivals with the template's own step scaling; jobs the capped group cannot start are unmet backlog.
- Storage follows the buckets' lifecycle rules: a current version that never expires keeps growing.
No free tier; no data transfer out of the region (results stay in the bucket).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cost.prices import (
    CLOUDWATCH_ALARM_METRIC_PER_MONTH,
    CLOUDWATCH_DASHBOARD_PER_MONTH,
    HOURS_PER_MONTH,
    KMS_KEY_PER_MONTH,
    KMS_PER_10K_REQUESTS,
    LAMBDA_GB_SECOND,
    LAMBDA_PER_MILLION_REQUESTS,
    PRICES_DATE,
    PRICES_REGION,
    PUBLIC_IPV4_PER_HOUR,
    S3_GET_PER_1000,
    S3_PUT_PER_1000,
    S3_STANDARD_PER_GB_MONTH,
    SQS_STANDARD_PER_MILLION_REQUESTS,
    VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR,
    instance_vcpus,
)
from scaling.report import fleet_cost
from scaling.simulate import simulate_fleet
from scaling.template import (
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
from scaling.workload import MINUTES_PER_DAY, build, measured_handler_seconds

ConsumerPath = Literal["lambda", "fleet"]
PATHS: tuple[ConsumerPath, ...] = ("lambda", "fleet")

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS (not prices, not read from a template)
# ---------------------------------------------------------------------------------------------------------------
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # 30.4166...
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SQS_CHUNK_BYTES = 64 * 1024
LONG_POLL_WAIT_SECONDS = 20  # every empty receive waits 20 s, so one poller makes 3 empty receives a minute
LAMBDA_SQS_POLLERS = 5  # the event source mapping starts with 5 pollers, which long-poll even when the queue is empty
ASSUMED_NOTIFICATION_BYTES = 1_200  # one S3 event notification body
ASSUMED_S3_DOWNLOAD_MB_PER_SECOND = 50.0
# Transcode (fleet): seconds of compute per second of video for one vCPU (thumbnail + 2 renditions with ffmpeg),
# plus a fixed overhead. Not measured here; measure your own and pass it to `make scaling --job-seconds`.
ASSUMED_SECONDS_PER_VIDEO_SECOND_PER_VCPU = 0.5
ASSUMED_JOB_OVERHEAD_SECONDS = 1.0
ASSUMED_TRANSCODE_OUTPUT_RATIO = 0.5  # 720p + 480p renditions + thumbnail take half the input's bytes
ASSUMED_TRANSCODE_OUTPUT_OBJECTS = 4  # metadata.json, thumbnail.jpg, 720p.mp4, 480p.mp4
ASSUMED_PREVIEW_OUTPUT_MB = 0.1  # metadata.json + thumbnail.jpg
ASSUMED_PREVIEW_OUTPUT_OBJECTS = 2
ASSUMED_S3_GETS_PER_VIDEO = 2  # HEAD + GET of the upload
STORAGE_MONTH = 12  # default: the month whose storage bill the breakdown shows when nothing expires
# The simulated day runs on this long so that the day's last arrivals are not counted as unmet.
DRAIN_MINUTES = 60
PRINCIPALS_PRODUCERS = 1  # s3.amazonaws.com sends the notifications
PRINCIPALS_CONSUMERS = 1  # the function's role, or the instance role


class CostInputError(ValueError):
    """A workload value the model cannot price (the message names it and the allowed range)."""


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


@dataclass
class CostBreakdown:
    workload: Workload
    lines: dict[str, float] = field(default_factory=dict)  # item -> USD per month
    quantities: dict[str, float] = field(default_factory=dict)  # item -> monthly quantity, for the printout
    notes: list[str] = field(default_factory=list)
    unmet_jobs_per_day: int = 0

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    def add(self, item: str, quantity: float, usd: float) -> None:
        self.quantities[item] = quantity
        self.lines[item] = usd

    def table(self) -> str:
        w = self.workload
        rows = [
            f"{w.path} path: {w.videos_per_day:g} videos/day, {w.average_size_mb:g} MB, "
            f"{w.average_duration_seconds:g} s  ({PRICES_REGION} list prices, {PRICES_DATE})",
            f"{'item':<40}{'quantity / month':>20}{'USD / month':>14}",
        ]
        for item, usd in self.lines.items():
            rows.append(f"{item:<40}{self.quantities.get(item, 0):>20,.1f}{usd:>14,.2f}")
        rows.append(f"{'TOTAL':<40}{'':>20}{self.total:>14,.2f}")
        rows.extend(f"note: {n}" for n in self.notes)
        return "\n".join(rows)


@dataclass(frozen=True)
class Deployed:
    """What the templates in one cloud assembly deploy, as far as cost goes."""

    fleet: Fleet
    consumer: LambdaConsumer
    idle: dict[ConsumerPath, IdleResources]
    alarm_metrics: dict[ConsumerPath, int]
    kms_reuse_seconds: dict[ConsumerPath, int]

    @classmethod
    def read(cls, cdk_out: Path) -> Deployed:
        idle: dict[ConsumerPath, IdleResources] = {}
        metrics: dict[ConsumerPath, int] = {}
        reuse: dict[ConsumerPath, int] = {}
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
        return cls(read_fleet(cdk_out), read_lambda(cdk_out), idle, metrics, reuse)


def chunks(payload_bytes: float) -> int:
    """SQS bills each 64 KB chunk of a payload as one request."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def transcode_seconds(w: Workload, vcpus: float) -> float:
    """Estimated wall time of one transcode job on ``vcpus`` CPUs (an ASSUMPTION, see above)."""
    return (
        ASSUMED_JOB_OVERHEAD_SECONDS
        + w.average_size_mb / ASSUMED_S3_DOWNLOAD_MB_PER_SECOND
        + w.average_duration_seconds * ASSUMED_SECONDS_PER_VIDEO_SECOND_PER_VCPU / vcpus
    )


def preview_seconds(w: Workload, measured_record_seconds: float) -> float:
    """One preview record: the measured handler time plus downloading the upload."""
    return measured_record_seconds + w.average_size_mb / ASSUMED_S3_DOWNLOAD_MB_PER_SECOND


def kept_days(rules: list[dict[str, Any]]) -> float | None:
    """Days a current object version stays, from a bucket's enabled lifecycle rules (None: forever)."""
    days = [r["ExpirationInDays"] for r in rules if r.get("Status") == "Enabled" and "ExpirationInDays" in r]
    return float(min(days)) if days else None


def _storage(
    out: CostBreakdown, idle: IdleResources, uploads_gb_per_day: float, outputs_gb_per_day: float, month: int
) -> None:
    for prefix, gb_per_day in (("Uploads", uploads_gb_per_day), ("Processed", outputs_gb_per_day)):
        bucket = next((lid for lid in idle.lifecycle if lid.startswith(prefix)), None)
        if bucket is None:
            continue
        days = kept_days(idle.lifecycle[bucket]["Rules"])
        if days is None:
            monthly = gb_per_day * DAYS_PER_MONTH
            stored = gb_per_day * DAYS_PER_MONTH * (month - 0.5)
            label = f"S3 {prefix.lower()} (GB-month, month {month})"
            out.notes.append(
                f"{bucket}: current versions never expire (template lifecycle), so storage grows by "
                f"{monthly:,.0f} GB (${monthly * S3_STANDARD_PER_GB_MONTH:,.2f}) every month; shown: month {month}"
            )
        else:
            stored = gb_per_day * days
            label = f"S3 {prefix.lower()} (GB-month, kept {days:g} days)"
        out.add(label, stored, stored * S3_STANDARD_PER_GB_MONTH)


def _idle(out: CostBreakdown, deployed: Deployed, path: ConsumerPath) -> None:
    idle = deployed.idle[path]
    metrics = deployed.alarm_metrics[path]
    out.add("CloudWatch alarms (alarm metrics)", metrics, metrics * CLOUDWATCH_ALARM_METRIC_PER_MONTH)
    out.add("CloudWatch dashboards", idle.dashboards, idle.dashboards * CLOUDWATCH_DASHBOARD_PER_MONTH)
    out.add("KMS customer-managed keys", idle.kms_keys, idle.kms_keys * KMS_KEY_PER_MONTH)
    if idle.interface_endpoint_azs:
        hours = idle.interface_endpoint_azs * HOURS_PER_MONTH
        out.add("VPC interface endpoint-AZ-hours", hours, hours * VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR)


def _lambda(out: CostBreakdown, deployed: Deployed, measured: float) -> tuple[float, float, float]:
    """Lambda lines; returns (receives, messages per receive, empty receives) for the SQS line."""
    w, c = out.workload, deployed.consumer
    messages = w.videos_per_day * DAYS_PER_MONTH
    seconds = preview_seconds(w, measured)
    if seconds * c.batch_size > c.timeout_seconds:
        out.notes.append(
            f"a full batch of {c.batch_size} takes {seconds * c.batch_size:.0f} s, over the function's "
            f"{c.timeout_seconds} s timeout: raise lambda_timeout_seconds or lower lambda_batch_size"
        )
    arrivals_per_window = w.videos_per_day / 86_400 * c.batching_window_seconds
    per_invocation = min(c.batch_size, max(1.0, arrivals_per_window))
    invocations = messages / per_invocation
    gb_seconds = messages * seconds * c.memory_mb / 1024
    out.add("Lambda GB-seconds", gb_seconds, gb_seconds * LAMBDA_GB_SECOND[c.architecture])
    out.add("Lambda requests", invocations, invocations / 1e6 * LAMBDA_PER_MILLION_REQUESTS)
    out.notes.append(
        f"preview profile: {seconds:.2f} s per record (measured handler {measured:.3f} s + download), "
        f"{c.memory_mb} MB {c.architecture}"
    )
    return invocations, per_invocation, LAMBDA_SQS_POLLERS * SECONDS_PER_MONTH / LONG_POLL_WAIT_SECONDS


def _fleet(out: CostBreakdown, deployed: Deployed) -> tuple[float, float, float]:
    """Fleet lines from one simulated day of steady arrivals (plus DRAIN_MINUTES); returns what SQS needs."""
    w, f = out.workload, deployed.fleet
    seconds = transcode_seconds(w, instance_vcpus(f.instance_type) / f.worker_concurrency)
    day = build(videos_per_day=w.videos_per_day, minutes=MINUTES_PER_DAY)
    sim, summary = simulate_fleet(
        f,
        day,
        job_seconds=seconds,
        startup_seconds=f.default_warmup_seconds,
        horizon_minutes=MINUTES_PER_DAY + DRAIN_MINUTES,
    )
    # The drain hour belongs to the next day's bill in a steady state; a group never bills more than max x 24 h.
    hours = min(summary["instance_hours"], f.max_size * 24) * DAYS_PER_MONTH
    usd = fleet_cost(f, hours)
    out.add(f"EC2 {f.instance_type} + {f.root_volume_gb} GB gp3 (instance-hours)", hours, usd)
    if not deployed.idle["fleet"].interface_endpoint_azs:
        out.add("public IPv4 address-hours", hours, hours * PUBLIC_IPV4_PER_HOUR)
    out.unmet_jobs_per_day = summary["jobs_not_started"]
    if out.unmet_jobs_per_day:
        needed = math.ceil(w.videos_per_day / 86_400 * seconds / f.worker_concurrency)
        out.notes.append(
            f"UNMET: {out.unmet_jobs_per_day:,} of {day.total:,} jobs a day not started (the group's max is "
            f"{f.max_size}, about {needed} instances needed): the backlog grows; raise worker_max_instances"
        )
    out.notes.append(
        f"transcode profile: {seconds:.1f} s per job, {f.worker_concurrency} per {f.instance_type}; instance-hours "
        f"from `scaling` on one simulated day ({summary['instance_hours']:.1f} h/day, peak {summary['peak_instances']})"
    )
    idle_seconds = max(0.0, sim.capacity_seconds - sim.busy_seconds / f.worker_concurrency) * DAYS_PER_MONTH
    done = summary["jobs_done"] * DAYS_PER_MONTH
    return done / 10, 10, idle_seconds / LONG_POLL_WAIT_SECONDS  # the worker receives up to 10 at a time


def estimate_monthly_cost(
    workload: Workload,
    deployed: Deployed,
    *,
    measured_record_seconds: float | None = None,
    storage_month: int = STORAGE_MONTH,
) -> CostBreakdown:
    """The monthly cost of ``workload`` on its consumer path with the stacks as synthesized in ``deployed``.

    Storage that never expires is priced as it stands in month ``storage_month`` (default 12).
    """
    w = workload
    out = CostBreakdown(workload=w)
    messages = w.videos_per_day * DAYS_PER_MONTH
    if w.path == "lambda":
        measured = measured_handler_seconds() if measured_record_seconds is None else measured_record_seconds
        receives, batch, empty_receives = _lambda(out, deployed, measured)
        output_mb, output_objects = ASSUMED_PREVIEW_OUTPUT_MB, ASSUMED_PREVIEW_OUTPUT_OBJECTS
    else:
        receives, batch, empty_receives = _fleet(out, deployed)
        output_mb = w.average_size_mb * ASSUMED_TRANSCODE_OUTPUT_RATIO
        output_objects = ASSUMED_TRANSCODE_OUTPUT_OBJECTS

    sqs_requests = (
        messages * chunks(w.notification_bytes)
        + receives * chunks(batch * w.notification_bytes)
        + receives  # DeleteMessageBatch of the same size as the receive
        + empty_receives
    )
    out.add("SQS requests (64 KB chunks)", sqs_requests, sqs_requests / 1e6 * SQS_STANDARD_PER_MILLION_REQUESTS)
    out.quantities["  of which empty receives"] = empty_receives

    # AWS-NOTES: requests ~= seconds / reuse period x (2 x producers + consumers); never more than one per message.
    per_principal = min(messages, SECONDS_PER_MONTH / deployed.kms_reuse_seconds[w.path])
    kms_requests = per_principal * (2 * PRINCIPALS_PRODUCERS + PRINCIPALS_CONSUMERS)
    out.add("KMS requests", kms_requests, kms_requests / 10_000 * KMS_PER_10K_REQUESTS)

    _storage(
        out,
        deployed.idle[w.path],
        w.videos_per_day * w.average_size_mb / 1024,
        w.videos_per_day * output_mb / 1024,
        storage_month,
    )
    puts = messages * (1 + output_objects)
    gets = messages * ASSUMED_S3_GETS_PER_VIDEO
    out.add("S3 PUT requests", puts, puts / 1000 * S3_PUT_PER_1000)
    out.add("S3 GET/HEAD requests", gets, gets / 1000 * S3_GET_PER_1000)
    _idle(out, deployed, w.path)
    return out
