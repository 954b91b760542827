"""python -m tools.scaling: simulate the synthesized fleet (step and backlog policies) and the Lambda path on one
workload.

Prints a table and writes build/scaling.json and build/scaling.png (--update-bench: bench/results/, the worked case of
docs/scaling-and-cost.md). Reads the templates in cdk.out (synthesized with the pinned CDK CLI if missing) and the other
scaling mode from build/cdk.out.<mode>. Time runs as AWS keeps it: per-minute SQS datapoints delivered late, alarms on
the template's statistic, warm-up from InService, simple scaling policies' cooldowns, no scale-in while an instance
warms up (see tools/scaling/simulate.py for each figure and its source).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sqs_decoupling.contracts.sqs import MAX_VISIBILITY_TIMEOUT_SECONDS
from tools.localcloud.paths import REPO_ROOT
from tools.scaling.assembly import assemblies
from tools.scaling.metric_math import UnsupportedExpression
from tools.scaling.prices import ContextError, UnknownInstanceType, priced_context
from tools.scaling.report import Result, fleet_cost, lambda_cost, write_chart
from tools.scaling.simulate import (
    DEFAULT_METRIC_DELAY_SECONDS,
    DEFAULT_STARTUP_SECONDS,
    WARM_START_SECONDS,
    simulate_fleet,
    simulate_lambda,
)
from tools.scaling.template import Fleet, TemplateError, WarmPool, read_fleet, read_lambda
from tools.scaling.workload import MINUTES_PER_DAY, Workload, WorkloadError, build, measured_handler_seconds

EXIT_CODES = """exit codes:
  0  simulated; files written
  1  a cloud assembly is missing or lacks what the simulation needs, or synthesis failed
  2  bad arguments: every number is checked (range, finite) before any synthesis or simulation, one line names it"""
DEFAULT_JOB_SECONDS = 60.0  # the seconds_per_job the stacks' backlog target assumes (cdk.json); measure your own
BENCH = REPO_ROOT / "bench" / "results"
BUILD = REPO_ROOT / "build"
# SQS's limits on ProvisionedPollerConfig (AWS::Lambda::EventSourceMapping): MinimumPollers 2-200, MaximumPollers
# 2-2,000.
MIN_POLLERS, MAX_MIN_POLLERS, MAX_MAX_POLLERS = 2, 200, 2000


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _plain(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def _number(low: float, high: float, *, integer: bool = False, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] with ``above``), whole with ``integer``."""
    interval = f"{'(' if above else '['}{_plain(low)}, {_plain(high)}]"
    kind = "a whole number" if integer else "a finite number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind} in {interval}, got {text!r}") from None
        bad_low = value <= low if above else value < low
        if not math.isfinite(value) or bad_low or value > high or (integer and value != int(value)):
            raise argparse.ArgumentTypeError(f"must be {kind} in {interval}, got {text!r}")
        return int(value) if integer else value

    parse.__name__ = "integer" if integer else "number"
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tools.scaling",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cdk-out", type=Path, help="cloud assembly to read (default cdk.out, synthesized if missing)")
    parser.add_argument("--other-cdk-out", type=Path, help="assembly with the other scaling mode (default build/)")
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="synthesize both scaling modes into build/ with this cdk context (e.g. worker_max_instances=40)",
    )
    load = parser.add_argument_group("workload")
    load.add_argument(
        "--videos-per-day", type=_number(0, 1e8), default=1000.0, help="steady or daily-curve rate (default 1000)"
    )
    load.add_argument(
        "--burst", type=_number(0, 1e7, integer=True), default=0, help="videos arriving at once, second 0 (default 0)"
    )
    load.add_argument(
        "--shape", choices=["steady", "daily"], default="steady", help="rate over the day (default steady)"
    )
    load.add_argument(
        "--minutes",
        type=_number(1, 10_080, integer=True),
        default=MINUTES_PER_DAY,
        help="minutes of arrivals, 1-10,080 (default 1440)",
    )
    load.add_argument("--arrivals-csv", type=Path, help="whole arrivals per minute, one row each (replaces the above)")
    load.add_argument(
        "--poisson", action="store_true", help="draw each minute's arrivals from a Poisson distribution (seeded)"
    )
    load.add_argument("--seed", type=_number(0, 2**32 - 1, integer=True), default=0, help="for --poisson (default 0)")
    load.add_argument(
        "--drain-minutes",
        type=_number(0, 10_080, integer=True),
        default=240,
        help="minutes simulated after arrivals end, 0-10,080 (default 240)",
    )
    load.add_argument(
        "--fail-fraction",
        type=_number(0, 1),
        default=0.0,
        help="share of receives that fail transiently: retried after the visibility timeout, dead-lettered after "
        "the queue's maxReceiveCount (default 0)",
    )
    calibrate = parser.add_argument_group(
        "calibration (measured figures from a deployment; see docs/scaling-and-cost.md)"
    )
    calibrate.add_argument(
        "--job-seconds",
        type=_number(0, MAX_VISIBILITY_TIMEOUT_SECONDS, above=True),
        default=DEFAULT_JOB_SECONDS,
        help="fleet: seconds per transcode job, the worker's EMF JobSeconds (default 60)",
    )
    calibrate.add_argument(
        "--lambda-job-seconds",
        type=_number(0, 900, above=True),
        help="Lambda: seconds per record (default: measured, bench/results/handler.json, preview profile)",
    )
    calibrate.add_argument(
        "--startup-seconds",
        type=_number(0, 3600, integer=True),
        default=DEFAULT_STARTUP_SECONDS,
        help=f"fleet: launch to first receive, boot + user data (default {DEFAULT_STARTUP_SECONDS}, an assumption)",
    )
    calibrate.add_argument(
        "--metric-delay-seconds",
        type=_number(0, 900, integer=True),
        default=DEFAULT_METRIC_DELAY_SECONDS,
        help=f"end of a minute to its SQS datapoint reaching the alarm (default {DEFAULT_METRIC_DELAY_SECONDS})",
    )
    calibrate.add_argument(
        "--warm-pool",
        choices=sorted(WARM_START_SECONDS),
        help="simulate the fleet with a warm pool in this state (default: the template's AWS::AutoScaling::WarmPool)",
    )
    calibrate.add_argument(
        "--warm-start-seconds",
        type=_number(0, 3600, integer=True),
        help="fleet: a warm pool instance's start to first receive (default by pool state: "
        + ", ".join(f"{k} {v}" for k, v in WARM_START_SECONDS.items())
        + ")",
    )
    calibrate.add_argument(
        "--lambda-provisioned",
        metavar="MIN,MAX",
        help="simulate the event source in provisioned mode with MIN..MAX pollers (default: the template's "
        "ProvisionedPollerConfig, if any)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="JSON result (default build/scaling.json)")
    out.add_argument("--chart", type=Path, help="PNG chart (default build/scaling.png)")
    out.add_argument("--no-chart", action="store_true")
    out.add_argument(
        "--update-bench",
        action="store_true",
        help=(
            "write bench/results/scaling.json and scaling.png (the worked case of docs/scaling-and-cost.md) instead of"
            " build/"
        ),
    )
    return parser


def _pollers(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise WorkloadError(f"--lambda-provisioned {text!r}: give MIN,MAX pollers, e.g. 2,200") from None
    if not (MIN_POLLERS <= low <= MAX_MIN_POLLERS and low <= high <= MAX_MAX_POLLERS):
        raise WorkloadError(
            f"--lambda-provisioned {text!r}: need {MIN_POLLERS} <= MIN <= {MAX_MIN_POLLERS} and MIN <= MAX <= "
            f"{MAX_MAX_POLLERS} (SQS's ProvisionedPollerConfig limits)"
        )
    return low, high


def _context(items: list[str]) -> dict[str, str]:
    try:
        return priced_context(items)
    except ContextError as error:
        raise WorkloadError(str(error)) from None


def run(args: argparse.Namespace) -> Result:
    # Everything that can be refused is checked before any synthesis (17-33 s) or simulation.
    context = _context(args.context)
    provisioned = _pollers(args.lambda_provisioned)
    workload = build(
        videos_per_day=args.videos_per_day,
        burst=args.burst,
        shape=args.shape,
        minutes=args.minutes,
        csv_path=args.arrivals_csv,
        poisson=args.poisson,
        seed=args.seed,
    )
    record_seconds = args.lambda_job_seconds or measured_handler_seconds()
    main, other = assemblies(args.cdk_out, args.other_cdk_out, context)
    horizon = len(workload.arrivals) + args.drain_minutes
    asked_pool = WarmPool(pool_state=args.warm_pool) if args.warm_pool else None
    timing = {
        "job_seconds": args.job_seconds,
        "startup_seconds": args.startup_seconds,
        "horizon_minutes": horizon,
        "metric_delay_seconds": args.metric_delay_seconds,
        "warm_start_seconds": args.warm_start_seconds,
        "fail_fraction": args.fail_fraction,
    }
    policies, runs, sources = {}, {}, {}
    fleets = [read_fleet(assembly) for assembly in (main, other)]
    for assembly, fleet in zip((main, other), fleets, strict=True):
        sim, summary = simulate_fleet(fleet, workload, warm_pool=asked_pool, **timing)
        summary["cost_usd"] = round(fleet_cost(fleet, summary["instance_hours"]), 2)
        summary.update(max_instances=fleet.max_size, instance_type=fleet.instance_type)
        policies[fleet.mode], runs[f"fleet: {fleet.mode}"], sources[fleet.mode] = summary, sim, _shown(assembly)
    consumer = read_lambda(main)
    lam, lam_summary = simulate_lambda(
        consumer,
        workload,
        record_seconds=record_seconds,
        horizon_minutes=horizon,
        provisioned=provisioned,
        fail_fraction=args.fail_fraction,
    )
    lam_summary["cost_usd"] = round(lambda_cost(consumer, lam_summary["gb_seconds"], lam_summary["invocations"]), 2)
    lam_summary.update(
        record_seconds=record_seconds,
        max_concurrency=consumer.max_concurrency,
        provisioned_pollers=provisioned or consumer.provisioned_pollers,
    )
    runs[lam.name] = lam
    sources["lambda"] = _shown(main)
    described = {
        "label": workload.label,
        "minutes": len(workload.arrivals),
        "jobs": workload.total,
        "fleet_job_seconds": args.job_seconds,
        "simulated_minutes": horizon,
        "startup_seconds": args.startup_seconds,
        "metric_delay_seconds": args.metric_delay_seconds,
        "fail_fraction": args.fail_fraction,
    }
    return Result(described, policies, lam_summary, runs, sources, _warm_pool_effect(fleets[0], workload, timing))


def _warm_pool_effect(fleet: Fleet, workload: Workload, timing: dict[str, Any]) -> dict[str, Any]:
    """The main mode's fleet with and without a warm pool (the template's, or a Stopped one): what it buys."""
    pool = fleet.warm_pool or WarmPool()
    without = dataclasses.replace(fleet, warm_pool=None)
    effect = {}
    for label, candidate in (("without", without), ("with", dataclasses.replace(fleet, warm_pool=pool))):
        _, summary = simulate_fleet(candidate, workload, **timing)
        effect[label] = {
            key: summary[key]
            for key in ("scale_out_delay_seconds", "drain_minutes", "p95_wait_seconds", "instance_hours")
        }
        effect[label]["warm_pool_instance_hours"] = summary["warm_pool_instance_hours"]
    effect["pool"] = {**dataclasses.asdict(pool), "mode": fleet.mode}
    return effect


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folder = BENCH if args.update_bench else BUILD
    output, chart = args.output or folder / "scaling.json", args.chart or folder / "scaling.png"
    try:
        result = run(args)
    except WorkloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TemplateError, UnsupportedExpression, UnknownInstanceType) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.table())
    print(f"written: {result.write_json(output)}")
    if not args.no_chart:
        print(f"chart: {write_chart(result, chart)}")
    return 0


def _shown(path: Path) -> str:
    """A cloud assembly's folder as the results show it: relative to the repository when inside it (the committed
    figures must not name the machine they were made on)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
