"""PRICES: us-east-1 on-demand list prices, as published on the AWS pricing pages in November 2026.

Sources: https://aws.amazon.com/sqs/pricing/, /kms/pricing/, /lambda/pricing/, /ec2/pricing/on-demand/,
/s3/pricing/, /privatelink/pricing/, /vpc/pricing/ (public IPv4), /ebs/pricing/, /cloudwatch/pricing/.
Free tiers are ignored. Check your region. The cost model and the scaling simulator both price from here.
"""

from __future__ import annotations

from typing import Any

from stacks.instance_types import lookup

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
CLOUDWATCH_ALARM_METRIC_PER_MONTH = 0.10  # standard resolution; a metric math alarm pays per metric it reads
CLOUDWATCH_DASHBOARD_PER_MONTH = 3.00

PRICES: dict[str, Any] = {name: value for name, value in globals().items() if name.isupper()}
HOURS_PER_MONTH = 730  # AWS's own billing convention


class UnknownInstanceType(ValueError):
    """An instance type without a price in this table."""


def instance_price(instance_type: str) -> float:
    """On-demand USD per hour of ``instance_type``, or an error that lists the priced types."""
    if instance_type not in EC2_ON_DEMAND_PER_HOUR:
        raise UnknownInstanceType(
            f"no price for instance type {instance_type!r}; priced types: {', '.join(sorted(EC2_ON_DEMAND_PER_HOUR))} "
            "(add it to cost/prices.py)"
        )
    return EC2_ON_DEMAND_PER_HOUR[instance_type]


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of a priced ``instance_type``, from the fleet's instance-type catalogue (stacks/instance_types.py)."""
    instance_price(instance_type)
    return lookup(instance_type).vcpus
