"""The unit prices the simulator's "compute cost" row needs: instance-hours (EC2 on-demand and the gp3 root volume)
and Lambda GB-seconds and requests, with the page each comes from, and the check of ``-c KEY=VALUE`` that prices
can make before any synthesis.

They live here, below the cost model, so that ``tools.cost`` depends on ``tools.scaling`` and never the reverse:
``tools.cost.prices`` is the whole dated table, these constants included (it imports them from here).
"""

from __future__ import annotations

from collections.abc import Sequence

PRICES_DATE = "2026-11"
PRICES_REGION = "us-east-1"
HOURS_PER_MONTH = 730  # AWS's own billing convention

# --- Lambda -----------------------------------------------------------------------------------------------------
LAMBDA_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}  # INVOKE and (since 2025-08-01) INIT phases
LAMBDA_PER_MILLION_REQUESTS = 0.20
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

# The pages (see the comment above ``tools.cost.prices.SOURCES`` for what "seen" and "not found here" mean).
EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/"
EBS = "https://aws.amazon.com/ebs/pricing/"
LAMBDA = "https://aws.amazon.com/lambda/pricing/"
LAMBDA_INIT = "https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/"
WARM_POOLS = "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html"
THIRD_PARTY = "seen in a third-party summary of the page"
COMPUTE_SOURCES: dict[str, str] = {
    "LAMBDA_GB_SECOND": f"{LAMBDA} (not found here); INIT billed since 2025-08-01: {LAMBDA_INIT} (seen, a copy)",
    "LAMBDA_PER_MILLION_REQUESTS": f"{LAMBDA} ({THIRD_PARTY}: $0.20 per 1M requests)",
    "EC2_ON_DEMAND_PER_HOUR": f"{EC2} (not found here)",
    "EBS_GP3_PER_GB_MONTH": f"{EBS} (not found here); a stopped warm-pool instance pays its volumes: {WARM_POOLS}",
}
COMPUTE_PRICES: dict[str, object] = {
    "PRICES_DATE": PRICES_DATE,
    "PRICES_REGION": PRICES_REGION,
    "HOURS_PER_MONTH": HOURS_PER_MONTH,
    "LAMBDA_GB_SECOND": LAMBDA_GB_SECOND,
    "LAMBDA_PER_MILLION_REQUESTS": LAMBDA_PER_MILLION_REQUESTS,
    "EC2_ON_DEMAND_PER_HOUR": EC2_ON_DEMAND_PER_HOUR,
    "EBS_GP3_PER_GB_MONTH": EBS_GP3_PER_GB_MONTH,
}


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
            "(add it to tools/scaling/prices.py)"
        )
    return EC2_ON_DEMAND_PER_HOUR[instance_type]
