"""python -m tools.cost: the monthly cost of a workload on each consumer path, and whether each path keeps up with it.

Example: python -m tools.cost --videos-per-day 1000 --size-mb 50 --duration-s 60
Each path is simulated on one day of the workload with the synthesized scaling; a path that cannot keep up is
reported with its unmet jobs and the oldest message's age and priced for the work it does. Reads cdk.out
(synthesized with the pinned CDK CLI if missing; -c KEY=VALUE synthesizes into build/ with that context). Writes
build/cost.json and build/cost.png; --update-bench writes bench/results/ instead; --output / --chart choose.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from sqs_decoupling.contracts.media import MAX_S3_OBJECT_BYTES, MIB
from sqs_decoupling.contracts.sqs import MAX_VISIBILITY_TIMEOUT_SECONDS
from tools.cost.model import (
    PATHS,
    CostBreakdown,
    CostInputError,
    Deployed,
    Measured,
    MissingMeasurement,
    Workload,
    estimate_monthly_cost,
)
from tools.cost.prices import PRICES_DATE, PRICES_REGION, ContextError, UnknownInstanceType, priced_context
from tools.localcloud.paths import REPO_ROOT
from tools.scaling.assembly import assemblies, ensure_assembly
from tools.scaling.metric_math import UnsupportedExpression
from tools.scaling.template import TemplateError

EXIT_CODES = """exit codes:
  0  priced; JSON and chart written
  1  the cloud assembly is missing or lacks what the model needs, synthesis failed, a benchmark file is missing,
     or an instance type in the template has no price
  2  bad arguments (a number out of range or not finite, a malformed -c, an unpriced worker_instance_type),
     refused before any synthesis or simulation"""
# Ranges of the numeric flags: (low, high, whole number).
MAX_VIDEOS_PER_DAY = 100_000_000.0  # over 1,000 a second; the simulator steps second by second
MAX_LAMBDA_RECORD_SECONDS = 900.0  # Lambda's longest timeout
MAX_STORAGE_MONTH = 120


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def number(
    flag: str, low: float, high: float, *, integer: bool = False, low_open: bool = True
) -> Callable[[str], float]:
    """An argparse type: a finite number in (low, high] (or [low, high]), a whole one with ``integer``."""

    def parse(text: str) -> float:
        bracket = "(" if low_open else "["
        allowed = f"{'a whole number' if integer else 'a finite number'} in {bracket}{low:g}, {high:,.0f}]"
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}, got {text!r}") from None
        inside = (low < value if low_open else low <= value) and value <= high
        if not (math.isfinite(value) and inside) or (integer and value != int(value)):
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}, got {text!r}")
        return int(value) if integer else value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tools.cost",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    work = parser.add_argument_group("workload")
    work.add_argument(
        "--videos-per-day", type=number("--videos-per-day", 0, MAX_VIDEOS_PER_DAY), required=True, metavar="N"
    )
    work.add_argument(
        "--size-mb",
        type=number("--size-mb", 0, MAX_S3_OBJECT_BYTES / MIB),
        required=True,
        help="average upload size (MB)",
    )
    work.add_argument(
        "--duration-s",
        type=number("--duration-s", 0, MAX_VISIBILITY_TIMEOUT_SECONDS),
        required=True,
        help="average video duration (seconds)",
    )
    work.add_argument("--path", choices=[*PATHS, "both"], default="both", help="consumer path")
    calibrate = parser.add_argument_group("calibration (figures from your own deployment replace the benchmarks')")
    calibrate.add_argument(
        "--lambda-record-seconds",
        type=number("--lambda-record-seconds", 0, MAX_LAMBDA_RECORD_SECONDS),
        help="seconds one record takes in the function, download included (default: bench/results/handler.json "
        "+ the download at 50 MB/s); e.g. ProcessingSeconds from the EMF metrics",
    )
    calibrate.add_argument(
        "--fleet-job-seconds",
        type=number("--fleet-job-seconds", 0, MAX_VISIBILITY_TIMEOUT_SECONDS),
        help="seconds one transcode job takes on a worker (default: from bench/results/transcode.json)",
    )
    calibrate.add_argument(
        "--storage-month",
        type=number("--storage-month", 1, MAX_STORAGE_MONTH, integer=True, low_open=False),
        default=12,
        help="the month of the bill shown: storage that never expires, log retention, key rotations (default 12)",
    )
    source = parser.add_argument_group("templates")
    source.add_argument(
        "--cdk-out", type=Path, help="cloud assembly to price (default cdk.out, synthesized if missing)"
    )
    source.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="synthesize into build/ with this cdk context (e.g. worker_instance_type=c7g.xlarge)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="the JSON (default build/cost.json)")
    out.add_argument("--chart", type=Path, help="PNG of cost against volume (default build/cost.png)")
    out.add_argument(
        "--update-bench", action="store_true", help="write bench/results/cost.json and cost.png (committed) instead"
    )
    out.add_argument("--no-chart", action="store_true")
    return parser


def _context(items: list[str]) -> dict[str, str]:
    try:
        return priced_context(items)
    except ContextError as error:
        raise CostInputError(str(error)) from None


def report(breakdowns: list[CostBreakdown], args: argparse.Namespace) -> dict[str, object]:
    first = breakdowns[0].workload
    return {
        "workload": {
            "videos_per_day": first.videos_per_day,
            "size_mb": first.average_size_mb,
            "duration_s": first.average_duration_seconds,
            "storage_month": args.storage_month,
        },
        "prices": {"region": PRICES_REGION, "date": PRICES_DATE, "table": "tools/cost/prices.py"},
        "paths": {b.workload.path: b.to_json() for b in breakdowns},
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    where = REPO_ROOT / ("bench/results" if args.update_bench else "build")
    chart = args.chart or where / "cost.png"
    output = args.output or where / "cost.json"
    try:
        context = _context(args.context)
        workloads = [
            Workload(args.videos_per_day, args.size_mb, args.duration_s, path)
            for path in (PATHS if args.path == "both" else (args.path,))
        ]
        measured = Measured.read()
        cdk_out = (
            assemblies(None, None, context)[0] if context else args.cdk_out or ensure_assembly(REPO_ROOT / "cdk.out")
        )
        deployed = Deployed.read(cdk_out)
        breakdowns = []
        for workload in workloads:
            job_seconds = args.lambda_record_seconds if workload.path == "lambda" else args.fleet_job_seconds
            breakdowns.append(
                estimate_monthly_cost(
                    workload, deployed, measured=measured, job_seconds=job_seconds, storage_month=args.storage_month
                )
            )
            print(breakdowns[-1].table())
            print()
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report(breakdowns, args), indent=1) + "\n")
        print(f"written: {output}")
        if not args.no_chart:
            from tools.cost.chart import write_chart

            print(f"chart: {write_chart(chart, deployed, breakdowns, measured)}")
    except CostInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TemplateError, UnsupportedExpression, UnknownInstanceType, MissingMeasurement) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
