"""python -m cost: the monthly cost of a workload on each consumer path, priced from the synthesized templates.

Example: python -m cost --videos-per-day 1000 --size-mb 50 --duration-s 60
Reads cdk.out (synthesized with the pinned CDK CLI if missing; -c KEY=VALUE synthesizes into build/ with that
context). Writes the chart to build/cost.png unless --update-bench (bench/results/cost.png) or --chart is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cost.model import PATHS, CostInputError, Deployed, Workload, estimate_monthly_cost
from cost.prices import UnknownInstanceType
from localcloud.paths import REPO_ROOT
from scaling.assembly import assemblies, ensure_assembly
from scaling.metric_math import UnsupportedExpression
from scaling.template import TemplateError
from scaling.workload import WorkloadError

EXIT_CODES = """exit codes:
  0  priced; chart written
  1  the cloud assembly is missing or lacks what the model needs, synthesis failed, or an instance type has no price
  2  bad arguments (a volume <= 0, a malformed -c)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cost",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--videos-per-day", type=float, required=True)
    parser.add_argument("--size-mb", type=float, required=True, help="average upload size (MB)")
    parser.add_argument("--duration-s", type=float, required=True, help="average video duration (seconds)")
    parser.add_argument("--path", choices=[*PATHS, "both"], default="both", help="consumer path")
    parser.add_argument(
        "--cdk-out", type=Path, help="cloud assembly to price (default cdk.out, synthesized if missing)"
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="synthesize into build/ with this cdk context (e.g. worker_instance_type=c7g.xlarge)",
    )
    parser.add_argument(
        "--storage-month",
        type=int,
        default=12,
        help="price storage that never expires as it stands in this month (default 12)",
    )
    parser.add_argument("--chart", type=Path, help="PNG of cost against volume (default build/cost.png)")
    parser.add_argument("--update-bench", action="store_true", help="write the chart to bench/results/cost.png")
    parser.add_argument("--no-chart", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chart = args.chart or REPO_ROOT / ("bench/results" if args.update_bench else "build") / "cost.png"
    try:
        if any("=" not in item for item in args.context):
            raise CostInputError(f"-c takes KEY=VALUE, got {args.context}")
        context = dict(item.split("=", 1) for item in args.context)
        workloads = [
            Workload(args.videos_per_day, args.size_mb, args.duration_s, path)
            for path in (PATHS if args.path == "both" else (args.path,))
        ]
        cdk_out = (
            assemblies(None, None, context)[0] if context else args.cdk_out or ensure_assembly(REPO_ROOT / "cdk.out")
        )
        deployed = Deployed.read(cdk_out)
        if args.storage_month < 1:
            raise CostInputError(f"--storage-month must be >= 1, got {args.storage_month}")
        for workload in workloads:
            print(estimate_monthly_cost(workload, deployed, storage_month=args.storage_month).table())
            print()
        if not args.no_chart:
            from cost.chart import write_chart

            print(f"chart: {write_chart(chart, deployed, workloads[0])}")
    except (CostInputError, WorkloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TemplateError, UnsupportedExpression, UnknownInstanceType) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
