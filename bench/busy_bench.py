"""Benchmark: is a worker at its default setting as busy as the machine can be?
(``sqs_decoupling.contracts.worker_sizing``'s rule)

The same N generated sources (1080p with sound, the "transcode" profile's work), each round:

  bare J x T   the profile's ffmpeg commands on local files, J videos at a time, T ffmpeg threads each, for every
               J in 1..2 x vCPUs and T in 1..vCPUs with vCPUs <= J x T <= 2 x vCPUs (every vCPU used, at most
               two threads each): no S3, no SQS, no worker
  worker       the real worker (QueueWorker + make_video_handler) on a moto server over HTTP, at the setting
               sqs_decoupling.contracts.worker_sizing gives this machine's vCPUs (the setting a fleet instance of
               that size gets). moto runs in a process of its own, as S3 and SQS are not in the worker's process
               on AWS; its CPU time during each worker round is measured.

Throughput is videos per wall second. The goal: the worker's throughput at least 0.95 x that of the best bare
configuration (the one with the lowest median time); the ratio against the best configuration of at most one job
per vCPU is reported beside it, since that is what a C-family instance's memory holds (2 GiB per vCPU, an encoding
job may take 1.5 GiB). The machine may be shared, so each round runs every mode in
another order, every round's times are kept, and the ratio counts only when the rounds agree: the worker's and the
best bare configuration's times each spread at most ``--max-spread`` (default 15 %) around their median.

On AWS, S3 and SQS do their side of each request on other machines; here moto does it on the same vCPUs as the
worker's ffmpeg runs. The ratio is therefore given twice: as measured, and with the fake cloud's CPU taken out of the
worker's time (wall - moto's CPU seconds / vCPUs: with every vCPU busy, each CPU second moto used is one the encodes
did not get). The goal is judged on the second; the first is the floor a test on one machine can show.

Writes build/busy.json; with --update-bench, bench/results/busy.json (the committed figures).

    .venv/bin/python bench/busy_bench.py [--videos 6] [--seconds 4] [--rounds 3] [--update-bench]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bench_cli  # noqa: E402  (the repository root, just put on sys.path)

GOAL_RATIO = 0.95


def bare_configurations(vcpus: int) -> list[tuple[int, int]]:
    """(jobs at once, ffmpeg threads each) pairs that use between one and two threads per vCPU in all."""
    return [
        (jobs, threads)
        for jobs in range(1, 2 * vcpus + 1)
        for threads in range(1, vcpus + 1)
        if vcpus <= jobs * threads <= 2 * vcpus
    ]


def spread(seconds: list[float]) -> float:
    """Largest distance of a round from the median, as a fraction of the median."""
    middle = statistics.median(seconds)
    return max(abs(value - middle) for value in seconds) / middle


@contextlib.contextmanager
def moto_server_process() -> Iterator[tuple[str, Callable[[], float]]]:
    """A moto server (tools.localcloud.server.moto_server, with its work-arounds) in a child process: yields its
    endpoint and a function that reads the CPU seconds the child has used so far (from /proc: Linux)."""
    code = (
        "import sys\n"
        "from tools.localcloud.server import moto_server\n"
        "with moto_server() as endpoint:\n"
        "    print(endpoint, flush=True)\n"
        "    sys.stdin.read()\n"  # until the parent closes stdin
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    try:
        endpoint = child.stdout.readline().strip()
        if not endpoint.startswith("http://"):
            raise SystemExit(f"the moto server process did not start (it printed {endpoint!r})")
        yield endpoint, cpu_seconds
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def main() -> None:
    def configure(parser: argparse.ArgumentParser) -> None:
        whole = bench_cli.bounded
        parser.add_argument(
            "--videos", type=whole("--videos", 1, 100, integer=True), default=6, help="sources per round"
        )
        parser.add_argument("--seconds", type=bench_cli.bounded("--seconds", 1, 600), default=4, help="source length")
        parser.add_argument(
            "--rounds", type=whole("--rounds", 1, 50, integer=True), default=3, help="rounds of each mode"
        )
        parser.add_argument(
            "--max-spread",
            type=bench_cli.bounded("--max-spread", 0.01, 1),
            default=0.15,
            help="largest spread of rounds around the median (default 0.15)",
        )

    args, dest = bench_cli.parse(__doc__, "busy.json", configure)
    # Imported after the arguments, so that --help does nothing else.
    from bench.transcode_bench import make_source, measured, one_decode, run_local, run_worker
    from sqs_decoupling.contracts import worker_sizing
    from sqs_decoupling.contracts.media import DEFAULT_LIMITS
    from sqs_decoupling.video import ffmpeg as video_ffmpeg

    vcpus = worker_sizing.machine_vcpus()
    load_before = os.getloadavg()[0]
    chosen = worker_sizing.busy_setting(vcpus, encodes=True)
    worker_limits = dataclasses.replace(DEFAULT_LIMITS, ffmpeg_threads=chosen.ffmpeg_threads)
    samples: dict[str, list[float]] = {}
    cloud_cpu: list[float] = []  # moto's CPU seconds in each worker round
    with tempfile.TemporaryDirectory(prefix="busy-bench-") as tmp:
        work = Path(tmp)
        sources = [make_source(work / f"source-{index}.mp4", "camera", args.seconds) for index in range(args.videos)]
        video_ffmpeg.h264_available()  # cached encoder check, outside every clock
        with moto_server_process() as (endpoint, cloud_cpu_seconds):

            def worker(out: Path) -> dict[str, float]:
                before = cloud_cpu_seconds()
                figures = run_worker(endpoint, sources, out, chosen.concurrency, worker_limits)
                cloud_cpu.append(cloud_cpu_seconds() - before)
                return figures

            modes: dict[str, Callable[[Path], dict[str, float]]] = {
                f"worker {chosen.concurrency} x {chosen.ffmpeg_threads}": worker
            }
            for jobs, threads in bare_configurations(vcpus):
                limits = dataclasses.replace(DEFAULT_LIMITS, ffmpeg_threads=threads)

                def bare(out: Path, jobs: int = jobs, limits: Any = limits) -> dict[str, float]:
                    return measured(
                        lambda: run_local(lambda src, dst: one_decode(src, dst, limits), sources, out, jobs)
                    )

                modes[f"bare {jobs} x {threads}"] = bare
            names = list(modes)
            for round_ in range(args.rounds):
                shift = round_ * len(names) // args.rounds  # each round in another order
                for name in names[shift:] + names[:shift]:
                    out = work / f"round-{round_}"
                    out.mkdir()
                    samples.setdefault(name, []).append(modes[name](out)["seconds"])
                    shutil.rmtree(out)
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    worker_name = names[0]
    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare_names = [name for name in names if name.startswith("bare")]
    best = min(bare_names, key=medians.__getitem__)
    ratio = medians[best] / medians[worker_name]  # throughput ratio: same videos, inverse of the times
    fitting = min((n for n in bare_names if int(n.split()[1]) <= vcpus), key=medians.__getitem__)
    without_cloud = [seconds - cpu / vcpus for seconds, cpu in zip(samples[worker_name], cloud_cpu, strict=True)]
    ratio_without_cloud = medians[best] / statistics.median(without_cloud)
    rounds_agree = spread(samples[worker_name]) <= args.max_spread and spread(samples[best]) <= args.max_spread
    summary: dict[str, Any] = {
        "command": "python bench/busy_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {vcpus} vCPUs usable, shared with other work: 1-minute load average "
        f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
        "videos": args.videos,
        "source": f"camera: {args.seconds:g} s 1920x1080 30 fps H.264 + AAC, transcode profile (720p + 480p)",
        "rounds": args.rounds,
        "rule": f"sqs_decoupling.contracts.worker_sizing for {vcpus} vCPUs, a profile that encodes: "
        f"{chosen.concurrency} jobs x "
        f"{chosen.ffmpeg_threads} ffmpeg thread(s)",
        "seconds_each_round": {name: samples[name] for name in names},
        "median_seconds": {name: round(medians[name], 2) for name in names},
        "spread_around_median": {name: round(spread(samples[name]), 3) for name in names},
        "best_bare": best,
        "worker_throughput_vs_best_bare": round(ratio, 3),
        "moto_cpu_seconds_each_worker_round": [round(cpu, 2) for cpu in cloud_cpu],
        "worker_seconds_without_moto_cpu": [round(seconds, 2) for seconds in without_cloud],
        "worker_throughput_vs_best_bare_without_moto_cpu": round(ratio_without_cloud, 3),
        "best_bare_of_at_most_one_job_per_vcpu": fitting,
        "worker_throughput_vs_that": round(medians[fitting] / medians[worker_name], 3),
        "rounds_agree": rounds_agree,
        "goal": f"worker throughput, moto's CPU taken out, >= {GOAL_RATIO} x best bare, with rounds within "
        f"{args.max_spread:.0%}",
        "goal_met": rounds_agree and ratio_without_cloud >= GOAL_RATIO,
    }
    bench_cli.write_result(dest, summary)


if __name__ == "__main__":
    main()
