"""`python -m cost --videos-per-day 1000 --size-mb 50 --duration-s 60 --path both`: breakdown + chart."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cost.model import ConsumerPath, Workload, estimate_monthly_cost, load_config

PATHS: tuple[ConsumerPath, ...] = ("lambda", "fleet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cost", description=__doc__)
    parser.add_argument("--videos-per-day", type=float, required=True)
    parser.add_argument("--size-mb", type=float, required=True, help="average upload size (MB)")
    parser.add_argument("--duration-s", type=float, required=True, help="average video duration (seconds)")
    parser.add_argument("--path", choices=[*PATHS, "both"], default="both", help="consumer path")
    parser.add_argument("--cdk-json", default="cdk.json", help="read the stack configuration from this file")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="override")
    parser.add_argument("--chart", default="bench/results/cost.png", help="PNG of cost against volume")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)

    overrides = dict(item.split("=", 1) for item in args.context)
    config = load_config(args.cdk_json, overrides)
    paths = PATHS if args.path == "both" else (args.path,)
    for path in paths:
        workload = Workload(args.videos_per_day, args.size_mb, args.duration_s, path)
        print(estimate_monthly_cost(workload, config).table())
        print()
    if not args.no_chart:
        from cost.chart import write_chart

        chart = write_chart(Path(args.chart), config, args.size_mb, args.duration_s)
        print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
