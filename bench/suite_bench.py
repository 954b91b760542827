"""Benchmark: wall and CPU time of `make test`, `make test-fast` and `npx cdk synth --quiet` after set-up.

Runs each command ``--runs`` times in turn (set-up first, untimed), with the load average before each run, since
the machine may be shared, and whether mypy's cache was there (`make test` lints first: on a fresh clone mypy
analyses aws-cdk-lib's type hints once, about 40 s, then reuses its cache). Writes the runs, the median and the
spread of wall and CPU time, and the highest load average seen before a run, to build/suite.json
(bench/results/suite.json with --update-bench).

    .venv/bin/python bench/suite_bench.py [--runs 3] [--update-bench]
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bench_cli  # noqa: E402  (the repository root, just put on sys.path)

# name -> (command, whether cdk.out is removed before each run)
COMMANDS = {
    "make test": (["make", "test"], False),
    "make test-fast": (["make", "test-fast"], False),
    "npx cdk synth --quiet (cdk.out removed first)": (["npx", "cdk", "synth", "--quiet"], True),
}


def run(command: list[str], *, fresh_cdk_out: bool) -> dict[str, float]:
    if fresh_cdk_out:
        shutil.rmtree(REPO / "cdk.out", ignore_errors=True)
    load = os.getloadavg()[0]  # 1-minute load average: above the CPU count, other processes share the machine
    mypy_cache = "warm" if (REPO / ".mypy_cache").is_dir() else "cold"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:  # a failed run is no figure: say which, and how it ended
        last = [line for line in done.stdout.splitlines() if line.strip()][-3:]
        sys.exit(f"suite_bench: `{' '.join(command)}` failed (exit {done.returncode}): " + " | ".join(last))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": round(load, 1), "mypy_cache": mypy_cache}


def main() -> None:
    args, dest = bench_cli.parse(
        __doc__,
        "suite.json",
        lambda p: p.add_argument("--runs", type=bench_cli.bounded("--runs", 1, 100, integer=True), default=3),
    )
    runs = args.runs
    subprocess.run(["make", "setup"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    # The venv and node_modules first on PATH, as the Makefile does for `cdk.json`'s `python3 app.py`.
    os.environ["PATH"] = os.pathsep.join([str(REPO / ".venv" / "bin"), str(REPO / "node_modules" / ".bin")]) + (
        os.pathsep + os.environ["PATH"]
    )
    figures: dict[str, object] = {}
    for name, (command, fresh_cdk_out) in COMMANDS.items():
        samples = [run(command, fresh_cdk_out=fresh_cdk_out) for _ in range(runs)]
        walls = [s["wall_s"] for s in samples]
        cpus = [s["cpu_s"] for s in samples]
        loads = [s["load_before"] for s in samples]
        # CPU time is the steadier figure on a shared machine: wall time also counts waiting for other processes.
        figures[name] = {
            "median_wall_s": statistics.median(walls),
            "min_wall_s": min(walls),
            "max_wall_s": max(walls),
            "median_cpu_s": statistics.median(cpus),
            "min_cpu_s": min(cpus),
            "max_cpu_s": max(cpus),
            "max_load_before": max(loads),
            "runs": samples,
        }
        print(name, figures[name], flush=True)
    machine = {"command": "python bench/suite_bench.py", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    bench_cli.write_result(dest, machine | figures)


if __name__ == "__main__":
    main()
