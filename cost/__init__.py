"""Monthly cost model for the two consumer paths (Lambda pipeline, EC2 worker fleet). See cost/model.py."""

from cost.model import (
    PRICES,
    CostBreakdown,
    Workload,
    estimate_monthly_cost,
    instances_for_backlog,
    load_config,
)

__all__ = ["PRICES", "CostBreakdown", "Workload", "estimate_monthly_cost", "instances_for_backlog", "load_config"]
