"""PRICES: us-east-1 on-demand list prices, one constant per billed unit, each with the page it comes from.

Every constant below has an entry in ``SOURCES``: the AWS pricing page (or AWS announcement) to check it against,
and whether the figure was seen there (see the comment above ``SOURCES``). Free tiers are ignored. Prices change
and differ per region: check yours. The instance-hour and Lambda prices the scaling simulator also needs are defined in
``tools.scaling.prices`` (so that cost depends on scaling, never the reverse) and re-exported here: this module is the
whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqs_decoupling.contracts.instance_types import lookup
from tools.scaling.prices import COMPUTE_PRICES, COMPUTE_SOURCES, LAMBDA, THIRD_PARTY
from tools.scaling.prices import EBS_GP3_PER_GB_MONTH as EBS_GP3_PER_GB_MONTH
from tools.scaling.prices import EC2_ON_DEMAND_PER_HOUR as EC2_ON_DEMAND_PER_HOUR
from tools.scaling.prices import HOURS_PER_MONTH as HOURS_PER_MONTH
from tools.scaling.prices import LAMBDA_GB_SECOND as LAMBDA_GB_SECOND
from tools.scaling.prices import LAMBDA_PER_MILLION_REQUESTS as LAMBDA_PER_MILLION_REQUESTS
from tools.scaling.prices import PRICES_DATE as PRICES_DATE
from tools.scaling.prices import PRICES_REGION as PRICES_REGION
from tools.scaling.prices import ContextError as ContextError
from tools.scaling.prices import UnknownInstanceType as UnknownInstanceType
from tools.scaling.prices import instance_price as instance_price
from tools.scaling.prices import priced_context as priced_context

# --- SQS, KMS ---------------------------------------------------------------------------------------------------
SQS_STANDARD_PER_MILLION_REQUESTS = 0.40  # each 64 KB chunk of a payload is one request
KMS_PER_10K_REQUESTS = 0.03
KMS_KEY_PER_MONTH = 1.00  # customer-managed key
KMS_ROTATION_PER_MONTH = 1.00  # each of the first two rotations of a key's material; later rotations are free
KMS_ROTATIONS_BILLED = 2
# --- Lambda (GB-seconds and requests: tools.scaling.prices) ----------------------------------------------------
# Provisioned mode of an SQS event source mapping: billed per Event Poller Unit-hour. The page gives no EPUs per
# SQS poller: the model counts one EPU per poller (an ASSUMPTION).
LAMBDA_SQS_EVENT_POLLER_UNIT_HOUR = 0.00925
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
KMS = "https://aws.amazon.com/kms/pricing/"
PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/"
S3 = "https://aws.amazon.com/s3/pricing/"
SQS = "https://aws.amazon.com/sqs/pricing/"
VPC = "https://aws.amazon.com/vpc/pricing/"
XRAY = "https://aws.amazon.com/xray/pricing/"
SOURCES: dict[str, str] = {
    **COMPUTE_SOURCES,
    "SQS_STANDARD_PER_MILLION_REQUESTS": f"{SQS} (not found here)",
    "KMS_PER_10K_REQUESTS": f"{KMS} (not found here)",
    "KMS_KEY_PER_MONTH": f"{KMS} ({THIRD_PARTY}: $1/month a key)",
    "KMS_ROTATION_PER_MONTH": f"{KMS} (not found here; third parties report AWS's April 2024 cut of rotation "
    "charges; its terms, $1/month for each of the first two rotations and none after, as the project knows them)",
    "KMS_ROTATIONS_BILLED": f"{KMS} (as KMS_ROTATION_PER_MONTH)",
    "LAMBDA_SQS_EVENT_POLLER_UNIT_HOUR": f"{LAMBDA} (not found here; the SQS EPU-hour rate a third-party summary "
    "of AWS's Price List API gives: check it)",
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
PAGES = ("CLOUDWATCH", "KMS", "LAMBDA", "PRIVATELINK", "S3", "SQS", "VPC", "XRAY")
_not_prices = (*PAGES, "THIRD_PARTY", "SOURCES", "PAGES", "COMPUTE_PRICES", "COMPUTE_SOURCES")

PRICES: dict[str, Any] = {
    **COMPUTE_PRICES,
    **{name: value for name, value in globals().items() if name.isupper() and name not in _not_prices},
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
