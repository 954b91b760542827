"""python -m scaling: simulate the synthesized fleet (step and backlog policies) and the Lambda path on one workload.

Writes bench/results/scaling.json and bench/results/scaling.png and prints a table. Reads the templates in
cdk.out (synthesized with the pinned CDK CLI if missing) and the other scaling mode from build/cdk.out.<mode>.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cost.prices import UnknownInstanceType
from localcloud.paths import REPO_ROOT
from scaling.assembly import assemblies
from scaling.metric_math import UnsupportedExpression
from scaling.report import Result, fleet_cost, lambda_cost, write_chart
from scaling.simulate import simulate_fleet, simulate_lambda
from scaling.template import TemplateError, read_fleet, read_lambda
from scaling.workload import MINUTES_PER_DAY, WorkloadError, build, measured_handler_seconds

EXIT_CODES = """exit codes:
  0  simulated; files written
  1  a cloud assembly is missing or lacks what the simulation needs, or synthesis failed
  2  bad arguments (argparse) or a bad workload flag / arrivals file"""
DEFAULT_JOB_SECONDS = 60.0  # the seconds_per_job the stacks' backlog target assumes (cdk.json); measure your own


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scaling",
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
    load.add_argument("--videos-per-day", type=float, default=1000.0, help="steady or daily-curve rate (default 1000)")
    load.add_argument("--burst", type=int, default=0, help="videos arriving at once in minute 0 (default 0)")
    load.add_argument(
        "--shape", choices=["steady", "daily"], default="steady", help="rate over the day (default steady)"
    )
    load.add_argument("--minutes", type=int, default=MINUTES_PER_DAY, help="minutes of arrivals (default 1440)")
    load.add_argument("--arrivals-csv", type=Path, help="arrivals per minute, one row each (replaces the above)")
    load.add_argument(
        "--drain-minutes", type=int, default=240, help="minutes simulated after arrivals end (default 240)"
    )
    load.add_argument(
        "--job-seconds", type=float, default=DEFAULT_JOB_SECONDS, help="fleet: seconds per transcode job (default 60)"
    )
    load.add_argument(
        "--lambda-job-seconds",
        type=float,
        help="Lambda: seconds per record (default: measured, bench/results/handler.json, preview profile)",
    )
    load.add_argument(
        "--startup-seconds",
        type=int,
        help="fleet: launch to first receive, boot + user data (default: the template's DefaultInstanceWarmup)",
    )
    load.add_argument(
        "--lambda-provisioned",
        metavar="MIN,MAX",
        help="simulate the event source in provisioned mode with MIN..MAX pollers",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "scaling.json")
    out.add_argument("--chart", type=Path, default=REPO_ROOT / "bench" / "results" / "scaling.png")
    out.add_argument("--no-chart", action="store_true")
    return parser


def _pollers(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise WorkloadError(f"--lambda-provisioned {text!r}: give MIN,MAX pollers, e.g. 2,200") from None
    if not 2 <= low <= high:
        raise WorkloadError(f"--lambda-provisioned {text!r}: need 2 <= MIN <= MAX (SQS allows 2..200 and 2..2000)")
    return low, high


def run(args: argparse.Namespace) -> Result:
    context = dict(item.split("=", 1) for item in args.context)
    workload = build(
        videos_per_day=args.videos_per_day,
        burst=args.burst,
        shape=args.shape,
        minutes=args.minutes,
        csv_path=args.arrivals_csv,
    )
    main, other = assemblies(args.cdk_out, args.other_cdk_out, context)
    horizon = len(workload.arrivals) + args.drain_minutes
    policies, runs, sources = {}, {}, {}
    for assembly in (main, other):
        fleet = read_fleet(assembly)
        startup = args.startup_seconds if args.startup_seconds is not None else fleet.default_warmup_seconds
        sim, summary = simulate_fleet(
            fleet, workload, job_seconds=args.job_seconds, startup_seconds=startup, horizon_minutes=horizon
        )
        summary["cost_usd"] = round(fleet_cost(fleet, summary["instance_hours"]), 2)
        summary.update(max_instances=fleet.max_size, instance_type=fleet.instance_type, startup_seconds=startup)
        policies[fleet.mode], runs[f"fleet: {fleet.mode}"], sources[fleet.mode] = summary, sim, str(assembly)
    consumer = read_lambda(main)
    record_seconds = args.lambda_job_seconds or measured_handler_seconds()
    lam, lam_summary = simulate_lambda(
        consumer,
        workload,
        record_seconds=record_seconds,
        horizon_minutes=horizon,
        provisioned=_pollers(args.lambda_provisioned),
    )
    lam_summary["cost_usd"] = round(lambda_cost(consumer, lam_summary["gb_seconds"], lam_summary["invocations"]), 2)
    lam_summary.update(record_seconds=record_seconds, max_concurrency=consumer.max_concurrency)
    runs[lam.name] = lam
    sources["lambda"] = str(main)
    described = {
        "label": workload.label,
        "minutes": len(workload.arrivals),
        "jobs": workload.total,
        "fleet_job_seconds": args.job_seconds,
        "simulated_minutes": horizon,
    }
    return Result(described, policies, lam_summary, runs, sources)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if any("=" not in item for item in args.context):
            raise WorkloadError(f"-c takes KEY=VALUE, got {args.context}")
        result = run(args)
    except WorkloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TemplateError, UnsupportedExpression, UnknownInstanceType) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.table())
    print(f"written: {result.write_json(args.output)}")
    if not args.no_chart:
        print(f"chart: {write_chart(result, args.chart)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
