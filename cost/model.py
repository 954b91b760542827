"""What a workload costs per month on each consumer path, from the stack's real configuration.

Every price is in the one table below (PRICES), with its date, region and source. Every other number that is not a
price and not configuration is an ASSUMPTION constant, named and explained. The model is deliberately simple
arithmetic, so that a reader can redo it by hand (the unit tests do): steady, uniform arrivals over the day; no free
tier; no data transfer out of the region (results stay in the bucket).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stacks.config import AppConfig
from stacks.constructs.fleet_network import GATEWAY_SERVICES, worker_aws_services

ConsumerPath = Literal["lambda", "fleet"]

# ---------------------------------------------------------------------------------------------------------------
# PRICES: us-east-1 on-demand list prices, as published on the AWS pricing pages in November 2026
# (https://aws.amazon.com/sqs/pricing/, /kms/pricing/, /lambda/pricing/, /ec2/pricing/on-demand/, /s3/pricing/,
# /privatelink/pricing/, /vpc/pricing/ (public IPv4), /ebs/pricing/). Free tiers are ignored. Check your region.
# ---------------------------------------------------------------------------------------------------------------
PRICES_DATE = "2026-11"
PRICES_REGION = "us-east-1"
SQS_STANDARD_PER_MILLION_REQUESTS = 0.40  # each 64 KB chunk of a payload is one request
KMS_PER_10K_REQUESTS = 0.03
KMS_KEY_PER_MONTH = 1.00  # customer-managed key
LAMBDA_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
LAMBDA_PER_MILLION_REQUESTS = 0.20
EC2_ON_DEMAND_PER_HOUR = {  # Linux, on-demand
    "c7g.medium": 0.0363,
    "c7g.large": 0.0725,
    "c7g.xlarge": 0.145,
    "c7g.2xlarge": 0.29,
    "c6g.large": 0.068,
    "m7g.large": 0.0816,
    "c7i.large": 0.08925,
    "c6i.large": 0.085,
}
EBS_GP3_PER_GB_MONTH = 0.08
S3_STANDARD_PER_GB_MONTH = 0.023
S3_PUT_PER_1000 = 0.005  # PUT, COPY, POST, LIST
S3_GET_PER_1000 = 0.0004  # GET, HEAD and others
VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR = 0.01
PUBLIC_IPV4_PER_HOUR = 0.005

PRICES: dict[str, Any] = {
    name: value
    for name, value in globals().items()
    if name.isupper()  # every constant defined so far is a price (or its date and region)
}

# ---------------------------------------------------------------------------------------------------------------
# ASSUMPTIONS (not prices, not configuration)
# ---------------------------------------------------------------------------------------------------------------
HOURS_PER_MONTH = 730  # AWS's own billing convention
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # 30.4166...
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SQS_CHUNK_BYTES = 64 * 1024
LONG_POLL_WAIT_SECONDS = 20  # every empty receive waits 20 s, so one poller makes 3 empty receives a minute
LAMBDA_SQS_POLLERS = 5  # the event source mapping starts with 5 pollers, which long-poll even when the queue is empty
ASSUMED_NOTIFICATION_BYTES = 1_200  # one S3 event notification body
# Processing speed: seconds of compute per second of video for one vCPU (thumbnail + 2 renditions with ffmpeg),
# plus a fixed overhead and the S3 download at a steady rate.
ASSUMED_SECONDS_PER_VIDEO_SECOND_PER_VCPU = 0.5
ASSUMED_JOB_OVERHEAD_SECONDS = 1.0
ASSUMED_S3_DOWNLOAD_MB_PER_SECOND = 50.0
LAMBDA_MB_PER_VCPU = 1769  # Lambda allots one vCPU per 1,769 MB, up to 6
LAMBDA_MAX_VCPUS = 6
ASSUMED_OUTPUT_RATIO = 0.5  # renditions + thumbnail take half the input's bytes
ASSUMED_OUTPUT_OBJECTS = 3  # thumbnail + 2 renditions
ASSUMED_S3_GETS_PER_VIDEO = 2  # HEAD + GET of the upload
ASSUMED_INSTANCE_BOOT_SECONDS = 120  # launch to first receive, billed
ASSUMED_ROOT_VOLUME_GB = 8
EC2_VCPUS = {"medium": 1, "large": 2, "xlarge": 4, "2xlarge": 8}  # Graviton/Intel c/m sizes
VPC_AZS = 2
PRINCIPALS_PRODUCERS = 1  # s3.amazonaws.com sends the notifications
PRINCIPALS_CONSUMERS = 1  # the function's role, or the instance role


@dataclass(frozen=True)
class Workload:
    videos_per_day: float
    average_size_mb: float
    average_duration_seconds: float
    path: ConsumerPath
    notification_bytes: int = ASSUMED_NOTIFICATION_BYTES


@dataclass
class CostBreakdown:
    workload: Workload
    lines: dict[str, float] = field(default_factory=dict)  # item -> USD per month
    quantities: dict[str, float] = field(default_factory=dict)  # item -> monthly quantity, for the printout
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    def table(self) -> str:
        w = self.workload
        rows = [
            f"{w.path} path: {w.videos_per_day:g} videos/day, {w.average_size_mb:g} MB, "
            f"{w.average_duration_seconds:g} s"
            f"  ({PRICES_REGION} list prices, {PRICES_DATE})",
            f"{'item':<34}{'quantity / month':>20}{'USD / month':>14}",
        ]
        for item, usd in self.lines.items():
            rows.append(f"{item:<34}{self.quantities.get(item, 0):>20,.1f}{usd:>14,.2f}")
        rows.append(f"{'TOTAL':<34}{'':>20}{self.total:>14,.2f}")
        rows.extend(f"note: {n}" for n in self.notes)
        return "\n".join(rows)


def load_config(cdk_json: Path | str = "cdk.json", overrides: dict[str, Any] | None = None) -> AppConfig:
    """AppConfig from cdk.json's context (only AppConfig's keys; the feature flags are skipped) plus overrides."""
    context = json.loads(Path(cdk_json).read_text())["context"]
    names = {f.name for f in dataclasses.fields(AppConfig)}
    values = {k: v for k, v in context.items() if k in names}
    values.update(overrides or {})
    return AppConfig.from_mapping(values)


def chunks(payload_bytes: float) -> int:
    """SQS bills each 64 KB chunk of a payload as one request."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def job_seconds(w: Workload, vcpus: float) -> float:
    """Estimated wall time of one video job on `vcpus` CPUs."""
    return (
        ASSUMED_JOB_OVERHEAD_SECONDS
        + w.average_size_mb / ASSUMED_S3_DOWNLOAD_MB_PER_SECOND
        + w.average_duration_seconds * ASSUMED_SECONDS_PER_VIDEO_SECOND_PER_VCPU / vcpus
    )


def interface_endpoints(config: AppConfig) -> int:
    """Interface endpoints of the fleet's isolated network: every service its instances call, except gateways."""
    services = worker_aws_services(client_side_encryption=config.client_side_encryption)
    return len([s for s in services if s not in GATEWAY_SERVICES])


def instances_for_backlog(backlog: float, config: AppConfig) -> int:
    """Instances step scaling settles on for a visible backlog: each threshold crossed adds its adjustment."""
    added = sum(
        a for t, a in zip(config.scale_out_thresholds, config.scale_out_adjustments, strict=True) if backlog >= t
    )
    return min(config.worker_max_instances, added)


def instance_vcpus(instance_type: str) -> int:
    size = instance_type.split(".")[-1]
    if size not in EC2_VCPUS:
        raise ValueError(f"No vCPU count for instance size {size!r}; known sizes {sorted(EC2_VCPUS)}.")
    return EC2_VCPUS[size]


def estimate_monthly_cost(workload: Workload, config: AppConfig) -> CostBreakdown:
    """The monthly cost of `workload` on its consumer path with the stacks configured as `config`."""
    w, c = workload, config
    out = CostBreakdown(workload=w)
    messages = w.videos_per_day * DAYS_PER_MONTH
    body_chunks = chunks(w.notification_bytes)

    def add(item: str, quantity: float, usd: float) -> None:
        out.quantities[item] = quantity
        out.lines[item] = usd

    # --- consumer: Lambda or fleet -----------------------------------------------------------------------------
    if w.path == "lambda":
        vcpus = min(LAMBDA_MAX_VCPUS, c.lambda_memory_mb / LAMBDA_MB_PER_VCPU)
        seconds = job_seconds(w, vcpus)
        if seconds > c.lambda_timeout_seconds:
            out.notes.append(
                f"estimated job time {seconds:.0f} s exceeds lambda_timeout_seconds={c.lambda_timeout_seconds}: "
                "jobs would time out; raise memory or timeout, or use the fleet"
            )
        # Messages that arrive within one batching window share an invocation, up to the batch size.
        arrivals_per_window = w.videos_per_day / 86_400 * c.lambda_batching_window_seconds
        per_invocation = min(c.lambda_batch_size, max(1.0, arrivals_per_window))
        invocations = messages / per_invocation
        gb_seconds = messages * seconds * c.lambda_memory_mb / 1024
        add("Lambda GB-seconds", gb_seconds, gb_seconds * LAMBDA_GB_SECOND[c.lambda_architecture])
        add("Lambda requests", invocations, invocations / 1e6 * LAMBDA_PER_MILLION_REQUESTS)
        receives = invocations
        receive_batch = per_invocation
        empty_receives = LAMBDA_SQS_POLLERS * SECONDS_PER_MONTH / LONG_POLL_WAIT_SECONDS
        out.notes.append(f"job time {seconds:.1f} s at {vcpus:.2f} vCPU ({c.lambda_memory_mb} MB)")
    else:
        vcpus_per_job = instance_vcpus(c.worker_instance_type) / c.worker_concurrency
        seconds = job_seconds(w, vcpus_per_job)
        gap = 86_400 / w.videos_per_day if w.videos_per_day else math.inf
        idle_window = c.scale_in_empty_minutes * 60
        sparse = gap > seconds + idle_window
        if sparse:
            # Sparse: each video starts one instance, which runs the job, then idles until scale-in.
            episode = ASSUMED_INSTANCE_BOOT_SECONDS + seconds + idle_window
            instance_hours = messages * episode / 3600
            running_share = instance_hours / HOURS_PER_MONTH
            out.notes.append(
                f"sparse arrivals (one every {gap:.0f} s): each video runs an instance for {episode:.0f} s "
                f"(boot {ASSUMED_INSTANCE_BOOT_SECONDS} + job {seconds:.0f} + scale-in {idle_window})"
            )
        else:
            # Continuous: never idle long enough to scale in. Busy workers (Little's law) set the floor; the
            # backlog those jobs make sets the step-scaling level.
            busy = w.videos_per_day / 86_400 * seconds
            needed = math.ceil(busy / c.worker_concurrency - 1e-9)
            instances = min(c.worker_max_instances, max(1, needed, instances_for_backlog(busy, c)))
            if needed > c.worker_max_instances:
                out.notes.append(
                    f"needs {needed} instances but worker_max_instances={c.worker_max_instances}: the backlog grows"
                )
            instance_hours = instances * HOURS_PER_MONTH
            running_share = float(instances)
            out.notes.append(f"continuous arrivals: {instances} instance(s) all month")
        price = EC2_ON_DEMAND_PER_HOUR.get(c.worker_instance_type)
        if price is None:
            raise ValueError(f"No price for {c.worker_instance_type!r}; add it to EC2_ON_DEMAND_PER_HOUR.")
        add(f"EC2 {c.worker_instance_type} instance-hours", instance_hours, instance_hours * price)
        add(
            "EBS gp3 root volumes (GB-month)",
            running_share * ASSUMED_ROOT_VOLUME_GB,
            running_share * ASSUMED_ROOT_VOLUME_GB * EBS_GP3_PER_GB_MONTH,
        )
        if c.network_mode == "isolated":
            endpoint_hours = interface_endpoints(c) * VPC_AZS * HOURS_PER_MONTH
            add("VPC interface endpoint-AZ-hours", endpoint_hours, endpoint_hours * VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR)
        else:
            add("public IPv4 address-hours", instance_hours, instance_hours * PUBLIC_IPV4_PER_HOUR)
        receives = messages / 10  # the worker receives 10 at a time
        receive_batch = 10
        # A running instance long-polls (one poller each) whenever its workers are idle: in the sparse case for the
        # whole episode (boot included, a simplification), else for the idle share of its worker slots.
        if sparse:
            empty_receives = instance_hours * 3600 / LONG_POLL_WAIT_SECONDS
        else:
            idle_share = max(0.0, 1 - busy / (running_share * c.worker_concurrency))
            empty_receives = running_share * idle_share * SECONDS_PER_MONTH / LONG_POLL_WAIT_SECONDS
        out.notes.append(f"job time {seconds:.1f} s at {vcpus_per_job:g} vCPU per job")

    # --- SQS ------------------------------------------------------------------------------------------------------
    sends = messages * body_chunks  # S3 notification sends, one per upload
    receive_requests = receives * chunks(receive_batch * w.notification_bytes)
    deletes = messages / receive_batch  # DeleteMessageBatch of the same size as the receive
    sqs_requests = sends + receive_requests + deletes + empty_receives
    add("SQS requests (64 KB chunks)", sqs_requests, sqs_requests / 1e6 * SQS_STANDARD_PER_MILLION_REQUESTS)
    out.quantities["  of which empty receives"] = empty_receives

    # --- KMS ------------------------------------------------------------------------------------------------------
    # AWS-NOTES: requests ~= seconds / reuse period x (2 x producers + consumers); never more than one per message.
    per_principal = min(messages, SECONDS_PER_MONTH / c.kms_data_key_reuse_seconds)
    kms_requests = per_principal * (2 * PRINCIPALS_PRODUCERS + PRINCIPALS_CONSUMERS)
    add("KMS requests", kms_requests, kms_requests / 10_000 * KMS_PER_10K_REQUESTS)
    add("KMS customer-managed key", 1, KMS_KEY_PER_MONTH)

    # --- S3 -------------------------------------------------------------------------------------------------------
    stored_gb = messages * w.average_size_mb * (1 + ASSUMED_OUTPUT_RATIO) / 1024
    add("S3 storage (GB-month, 1 month kept)", stored_gb, stored_gb * S3_STANDARD_PER_GB_MONTH)
    puts = messages * (1 + ASSUMED_OUTPUT_OBJECTS)
    gets = messages * ASSUMED_S3_GETS_PER_VIDEO
    add("S3 PUT requests", puts, puts / 1000 * S3_PUT_PER_1000)
    add("S3 GET/HEAD requests", gets, gets / 1000 * S3_GET_PER_1000)
    return out
