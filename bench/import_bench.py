"""Benchmark: how long importing the Lambda handler takes (a proxy for the function's init), against boto3 alone.

Each sample is a fresh interpreter (``python -I -S``) whose sys.path is what Lambda gives the function: the Lambda
asset's own files (the locked wheels built for this machine, plus the sources) and the runtime's boto3, botocore
and s3transfer. Reports the median and spread of the wall time of the import, and the slowest imports by their
cumulative time (``-X importtime``) from the last handler sample. Writes build/handler_import.json
(bench/results/handler_import.json, which the cost model reads as the function's INIT time, with --update-bench).

    .venv/bin/python bench/import_bench.py [--samples 7] [--update-bench]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import botocore
import s3transfer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bench_cli  # noqa: E402  (the repository root, just put on sys.path)

TIMED = "import sys, time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "video-processor",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    "OUTPUT_BUCKET": "bench-processed",
}


def sample(module: str, path: list[Path], *, importtime: bool = False) -> tuple[float, str]:
    setup = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}; "
    command = [
        sys.executable,
        "-I",
        "-S",
        *(["-X", "importtime"] if importtime else []),
        "-c",
        setup + TIMED.format(module=module),
    ]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | ENV
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return float(result.stdout.strip().splitlines()[-1]), result.stderr


def slowest(importtime: str, count: int = 8) -> list[tuple[str, float]]:
    """The handler's own imports (one level down in the -X importtime tree), slowest first, in ms."""
    rows = []
    for line in importtime.splitlines():
        parts = line.removeprefix("import time:").split("|")
        depth = (len(parts[-1]) - len(parts[-1].lstrip()) - 1) // 2
        if len(parts) == 3 and parts[1].strip().isdigit() and depth == 1:
            rows.append((parts[2].strip(), round(int(parts[1]) / 1000, 1)))
    return sorted(rows, key=lambda row: -row[1])[:count]


def main() -> None:
    args, dest = bench_cli.parse(
        __doc__,
        "handler_import.json",
        lambda p: p.add_argument("--samples", type=bench_cli.bounded("--samples", 1, 1000, integer=True), default=7),
    )
    samples = args.samples
    # Imported here, not at the top: aws_cdk starts Node.js, which `--help` has no need of.
    from sqs_decoupling.stacks.video_pipeline_stack import video_processor_bundle

    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    asset, runtime = work / "asset", work / "runtime"
    runtime.mkdir()
    video_processor_bundle("arm64").for_this_machine().bundle_into(asset)
    for module in (boto3, botocore, s3transfer):
        (runtime / module.__name__).symlink_to(Path(str(module.__file__)).parent)
    path = [asset, runtime]
    figures: dict[str, object] = {}
    for name, module in (("boto3", "boto3"), ("handler", "handler")):
        times = [sample(module, path)[0] for _ in range(samples)]
        figures[name] = {
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
        }
    _, trace = sample("handler", path, importtime=True)
    handler, sdk = figures["handler"], figures["boto3"]
    result = {
        "what": "wall time of `import handler` vs `import boto3` in a fresh interpreter, Lambda asset layout",
        "command": "python bench/import_bench.py",
        "samples": samples,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "python": platform.python_version(),
        **figures,
        "handler_over_boto3": round(handler["median_s"] / sdk["median_s"], 2),  # type: ignore[index]
        "slowest_top_level_imports": slowest(trace),
    }
    print(json.dumps(result, indent=2))
    bench_cli.write_result(dest, result)


if __name__ == "__main__":
    main()
