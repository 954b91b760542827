"""Monthly cost model for the two consumer paths (Lambda pipeline, EC2 worker fleet). See tools/cost/model.py.

Reads the synthesized templates (cdk.out); never imports aws_cdk.
"""

from tools.cost.model import CostBreakdown, Deployed, Workload, estimate_monthly_cost
from tools.cost.prices import PRICES

__all__ = ["PRICES", "CostBreakdown", "Deployed", "Workload", "estimate_monthly_cost"]
