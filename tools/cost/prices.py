"""PRICES: us-east-1 on-demand list prices, one constant per billed unit, each with the page it comes from.

Every constant below has an entry in ``SOURCES``: the AWS pricing page (or AWS announcement) to check it against,
and whether the figure was seen there (see the comment above ``SOURCES``). Free tiers are ignored. Prices change
and differ per region: check yours.
The cost model and the scaling simulator both price from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqs_decoupling.contracts.instance_types import lookup

PRICES_DATE = "2026-11"
PRICES_REGION = "us-east-1"
HOURS_PER_MONTH = 730  # AWS's own billing convention

# --- SQS, KMS ---------------------------------------------------------------------------------------------------
SQS_STANDARD_PER_MILLION_REQUESTS = 0.40  # each 64 KB chunk of a payload is one request
KMS_PER_10K_REQUESTS = 0.03
KMS_KEY_PER_MONTH = 1.00  # customer-managed key
KMS_ROTATION_PER_MONTH = 1.00  # each of the first two rotations of a key's material; later rotations are free
KMS_ROTATIONS_BILLED = 2
# --- Lambda -----------------------------------------------------------------------------------------------------
LAMBDA_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}  # INVOKE and (since 2025-08-01) INIT phases
LAMBDA_PER_MILLION_REQUESTS = 0.20
# Provisioned mode of an SQS event source mapping: billed per Event Poller Unit-hour. The page gives no EPUs per
# SQS poller: the model counts one EPU per poller (an ASSUMPTION).
LAMBDA_SQS_EVENT_POLLER_UNIT_HOUR = 0.00925
# --- EC2, EBS ---------------------------------------------------------------------------------------------------
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
EBS_GP3_PER_GB_MONTH = 0.08  # also what a stopped instance of a warm pool pays: its volumes only
# --- S3 ---------------------------------------------------------------------------------------------------------
S3_STANDARD_PER_GB_MONTH = 0.023  # the first tier of S3_STANDARD_TIERS
S3_STANDARD_TIERS = ((50 * 1024, 0.023), (450 * 1024, 0.022), (float("inf"), 0.021))  # (GB in the tier, USD/GB)
S3_PUT_PER_1000 = 0.005  # PUT, COPY, POST, LIST
S3_GET_PER_1000 = 0.0004  # GET, HEAD and others
# --- Network ----------------------------------------------------------------------------------------------------
VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR = 0.01
VPC_INTERFACE_ENDPOINT_PER_GB = 0.01  # data processed, first PB a month in the region
PUBLIC_IPV4_PER_HOUR = 0.005
# --- CloudWatch, X-Ray ------------------------------------------------------------------------------------------
CLOUDWATCH_ALARM_METRIC_PER_MONTH = 0.10  # standard resolution; a metric math alarm pays per metric it reads
CLOUDWATCH_DASHBOARD_PER_MONTH = 3.00
CLOUDWATCH_LOGS_INGESTION_PER_GB = 0.50  # Standard log class
CLOUDWATCH_LOGS_STORAGE_PER_GB_MONTH = 0.03  # "archival": what the retention keeps (AWS stores it compressed)
CLOUDWATCH_CUSTOM_METRIC_PER_MONTH = 0.30  # first 10,000 metrics; prorated by the hour a metric is sent
EC2_DETAILED_MONITORING_METRICS = 7  # the pricing page's example: 7 metrics per instance, billed as custom metrics
XRAY_TRACES_RECORDED_PER_MILLION = 5.00

# The pages. "seen" says where the figure was read while this table was checked (the page, a copy of it, or a
# third-party summary of it); "not found here" means the page could not be retrieved: the figure is AWS's list price
# as the project last knew it, so check those first.
CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/"
EBS = "https://aws.amazon.com/ebs/pricing/"
KMS = "https://aws.amazon.com/kms/pricing/"
LAMBDA = "https://aws.amazon.com/lambda/pricing/"
LAMBDA_INIT = "https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/"
PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/"
S3 = "https://aws.amazon.com/s3/pricing/"
SQS = "https://aws.amazon.com/sqs/pricing/"
VPC = "https://aws.amazon.com/vpc/pricing/"
WARM_POOLS = "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html"
XRAY = "https://aws.amazon.com/xray/pricing/"
THIRD_PARTY = "seen in a third-party summary of the page"
SOURCES: dict[str, str] = {
    "SQS_STANDARD_PER_MILLION_REQUESTS": f"{SQS} (not found here)",
    "KMS_PER_10K_REQUESTS": f"{KMS} (not found here)",
    "KMS_KEY_PER_MONTH": f"{KMS} ({THIRD_PARTY}: $1/month a key)",
    "KMS_ROTATION_PER_MONTH": f"{KMS} (not found here; third parties report AWS's April 2024 cut of rotation "
    "charges; its terms, $1/month for each of the first two rotations and none after, as the project knows them)",
    "KMS_ROTATIONS_BILLED": f"{KMS} (as KMS_ROTATION_PER_MONTH)",
    "LAMBDA_GB_SECOND": f"{LAMBDA} (not found here); INIT billed since 2025-08-01: {LAMBDA_INIT} (seen, a copy)",
    "LAMBDA_PER_MILLION_REQUESTS": f"{LAMBDA} ({THIRD_PARTY}: $0.20 per 1M requests)",
    "LAMBDA_SQS_EVENT_POLLER_UNIT_HOUR": f"{LAMBDA} (not found here; the SQS EPU-hour rate a third-party summary "
    "of AWS's Price List API gives: check it)",
    "EC2_ON_DEMAND_PER_HOUR": f"{EC2} (not found here)",
    "EBS_GP3_PER_GB_MONTH": f"{EBS} (not found here); a stopped warm-pool instance pays its volumes: {WARM_POOLS}",
    "S3_STANDARD_PER_GB_MONTH": f"{S3} ({THIRD_PARTY}: $0.023, first 50 TB)",
    "S3_STANDARD_TIERS": f"{S3} (first 50 TB, next 450 TB, over 500 TB a month; the lower two not found here)",
    "S3_PUT_PER_1000": f"{S3} ({THIRD_PARTY})",
    "S3_GET_PER_1000": f"{S3} ({THIRD_PARTY})",
    "VPC_INTERFACE_ENDPOINT_PER_AZ_HOUR": f"{PRIVATELINK} ({THIRD_PARTY}: $0.01 an hour)",
    "VPC_INTERFACE_ENDPOINT_PER_GB": f"{PRIVATELINK} (seen, a copy of the page: first 1 PB $0.01/GB)",
    "PUBLIC_IPV4_PER_HOUR": f"{VPC} (not found here)",
    "CLOUDWATCH_ALARM_METRIC_PER_MONTH": f"{CLOUDWATCH} (not found here)",
    "CLOUDWATCH_DASHBOARD_PER_MONTH": f"{CLOUDWATCH} ({THIRD_PARTY}: $3 a dashboard)",
    "CLOUDWATCH_LOGS_INGESTION_PER_GB": f"{CLOUDWATCH} ({THIRD_PARTY}: $0.50/GB)",
    "CLOUDWATCH_LOGS_STORAGE_PER_GB_MONTH": f"{CLOUDWATCH} (not found here)",
    "CLOUDWATCH_CUSTOM_METRIC_PER_MONTH": f"{CLOUDWATCH} ({THIRD_PARTY}: $0.30 a metric, first 10,000)",
    "EC2_DETAILED_MONITORING_METRICS": f"{CLOUDWATCH} (the page's detailed-monitoring example; not found here)",
    "XRAY_TRACES_RECORDED_PER_MILLION": f"{XRAY} (seen, the German page: $5 per million traces recorded)",
}
PAGES = ("CLOUDWATCH", "EC2", "EBS", "KMS", "LAMBDA", "LAMBDA_INIT", "PRIVATELINK", "S3", "SQS", "VPC", "WARM_POOLS")

PRICES: dict[str, Any] = {
    name: value
    for name, value in globals().items()
    if name.isupper() and name not in (*PAGES, "XRAY", "THIRD_PARTY", "SOURCES", "PAGES")
}


@dataclass(frozen=True)
class Rate:
    """One unit price as a cost line cites it: the constant's name, its value, and where it comes from."""

    name: str
    usd: float
    unit: str

    @property
    def source(self) -> str:
        return SOURCES[self.name]


class UnknownInstanceType(ValueError):
    """An instance type without a price in this table."""


class ContextError(ValueError):
    """A `-c KEY=VALUE` argument of the cost and scaling CLIs that is malformed or names an unpriced instance type."""


def priced_context(items: Sequence[str]) -> dict[str, str]:
    """The `-c KEY=VALUE` pairs of ``make cost`` and ``make scaling``, with what can be checked before any synthesis
    checked now (the instance type's price). Raises :class:`ContextError` with a one-line message."""
    if any("=" not in item for item in items):
        raise ContextError(f"-c takes KEY=VALUE, got {list(items)}")
    context = dict(item.split("=", 1) for item in items)
    if "worker_instance_type" in context:
        try:
            instance_price(context["worker_instance_type"])
        except UnknownInstanceType as error:
            raise ContextError(f"-c worker_instance_type: {error}") from None
    return context


def instance_price(instance_type: str) -> float:
    """On-demand USD per hour of ``instance_type``, or an error that lists the priced types."""
    if instance_type not in EC2_ON_DEMAND_PER_HOUR:
        raise UnknownInstanceType(
            f"no price for instance type {instance_type!r}; priced types: {', '.join(sorted(EC2_ON_DEMAND_PER_HOUR))} "
            "(add it to tools/cost/prices.py)"
        )
    return EC2_ON_DEMAND_PER_HOUR[instance_type]


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of a priced ``instance_type``, from the fleet's instance-type catalogue
    (sqs_decoupling/contracts/instance_types.py)."""
    instance_price(instance_type)
    return lookup(instance_type).vcpus


def s3_standard_usd(gb_month: float) -> float:
    """USD for ``gb_month`` of S3 Standard, through the volume tiers (applied to this total alone)."""
    usd, left = 0.0, gb_month
    for size, price in S3_STANDARD_TIERS:
        part = min(left, size)
        usd += part * price
        left -= part
        if left <= 0:
            break
    return usd
