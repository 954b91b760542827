"""Benchmark: the worker's real transcode jobs against bare ffmpeg doing the same work, and against the old two-pass.

The same N generated sources (1080p with sound), at the same parallelism, three ways, in one run:

  worker    the real worker (QueueWorker + sqs_decoupling.worker_fleet.worker.video_jobs.make_video_handler,
  "transcode" profile) on a moto server
            over HTTP: S3 download, probe, thumbnail, renditions from one ffmpeg run, uploads, manifest, SQS deletes
  bare      the same ffmpeg commands on local files, 2 at a time in a thread pool: no S3, no SQS, no worker
  two_pass  the layout before one-decode: probe, thumbnail, then one ffmpeg run per rendition (as it ran: no
            thread cap)

CPU seconds are ffmpeg's (the children of this process: user + system), per video. The worker's own Python and the
moto server run in this process and are reported apart (``bench_process_cpu_seconds``).
Goals: worker wall time <= 1.05 x bare; CPU per video (one-decode) <= 0.85 x two-pass.
Writes build/transcode.json (bench/results/transcode.json, whose CPU seconds per video-second the cost model reads,
with --update-bench).

    .venv/bin/python bench/transcode_bench.py [--videos 4] [--seconds 10] [--concurrency 2] [--rounds 3]
        [--update-bench]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402

from bench import bench_cli  # noqa: E402  (the repository root, just put on sys.path)
from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MediaLimits  # noqa: E402
from sqs_decoupling.contracts.profiles import get_profile  # noqa: E402
from sqs_decoupling.video import ffmpeg as video_ffmpeg  # noqa: E402
from sqs_decoupling.video.jobs import VideoJob, sqs_body_for  # noqa: E402
from sqs_decoupling.video.samples import make_sample_video  # noqa: E402
from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, WorkerOptions  # noqa: E402
from sqs_decoupling.worker_fleet.worker.video_jobs import make_video_handler  # noqa: E402
from tools.localcloud.server import DUMMY_CLIENT_ARGS, moto_server  # noqa: E402

PROFILE = get_profile("transcode")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(run: Callable[[], None]) -> dict[str, float]:
    cpu, own, started = children_cpu(), self_cpu(), time.perf_counter()
    run()
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "ffmpeg_cpu_seconds": round(children_cpu() - cpu, 2),
        "bench_process_cpu_seconds": round(self_cpu() - own, 2),
    }


def one_decode(source: Path, out: Path, limits: MediaLimits = DEFAULT_LIMITS) -> None:
    """What the transcode profile runs for one video: probe, thumbnail, every rendition from one decode."""
    out.mkdir(parents=True, exist_ok=True)
    info = video_ffmpeg.probe(source, limits)
    video_ffmpeg.make_thumbnail(source, out / "thumbnail.jpg", info, limits=limits)
    video_ffmpeg.make_renditions(source, out, info, PROFILE.renditions_for(info.width, info.height), limits=limits)


def two_pass(source: Path, out: Path) -> None:
    """The same outputs the way they were made before: one ffmpeg run (a full decode) per rendition."""
    out.mkdir(parents=True, exist_ok=True)
    info = video_ffmpeg.probe(source)
    video_ffmpeg.make_thumbnail(source, out / "thumbnail.jpg", info)
    for rung in PROFILE.renditions_for(info.width, info.height):
        scale = f"scale=-2:{rung.short_side}" if info.width >= info.height else f"scale={rung.short_side}:-2"
        result = video_ffmpeg.run_ffmpeg(
            [
                *("-format_whitelist", video_ffmpeg.ALLOWED_CONTAINERS, "-i", f"file:{source}"),
                *("-map", "0:v:0", "-map", "0:a:0?", "-vf", scale),
                *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"),
                *("-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-y", str(out / rung.file_name)),
            ],
            timeout=3600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"two-pass rendition failed: {result.stderr[-500:]}")


def make_source(path: Path, kind: str, seconds: float) -> Path:
    if kind == "testsrc":
        return make_sample_video(path, seconds=seconds, size="1920x1080", fps=30, audio=True)
    subprocess.run(
        [
            *(video_ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"),
            *("-f", "lavfi", "-i", f"testsrc2=duration={seconds}:size=1920x1080:rate=30,noise=alls=12:allf=t"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-shortest", "-y", str(path)),
        ],
        check=True,
        timeout=1200,
    )
    return path


def median_run(values: list[dict[str, float]]) -> dict[str, float]:
    figures = {field: statistics.median(value[field] for value in values) for field in values[0]}
    figures["seconds_each_round"] = [value["seconds"] for value in values]  # type: ignore[assignment]
    return figures


def run_local(make: Callable[[Path, Path], None], sources: list[Path], work: Path, concurrency: int) -> None:
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda item: make(item[1], work / f"{item[0]}"), enumerate(sources)))


def run_worker(
    endpoint: str, sources: list[Path], work: Path, concurrency: int, limits: MediaLimits = DEFAULT_LIMITS
) -> dict[str, float]:
    s3 = boto3.client("s3", endpoint_url=endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]
    sqs = boto3.client("sqs", endpoint_url=endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]
    suffix = uuid.uuid4().hex[:8]
    uploads, outputs = f"bench-uploads-{suffix}", f"bench-outputs-{suffix}"
    for bucket in (uploads, outputs):
        s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=f"bench-transcode-{suffix}")["QueueUrl"]
    bodies = []
    for index, source in enumerate(sources):
        key = f"uploads/video-{index}.mp4"
        etag = s3.put_object(Bucket=uploads, Key=key, Body=source.read_bytes())["ETag"]
        bodies.append(sqs_body_for(VideoJob(bucket=uploads, key=key, version_id=None, etag=etag, size=None)))
    handler = make_video_handler(s3_client=s3, output_bucket=outputs, max_bytes=10**10, workdir=work, limits=limits)
    worker = QueueWorker(
        sqs, url, handler, WorkerOptions(concurrency=concurrency, wait_seconds=1, visibility_timeout=600)
    )
    thread = threading.Thread(target=worker.run, daemon=True)

    def run() -> None:
        for body in bodies:  # sent inside the clock: the worker's figure includes receiving them
            sqs.send_message(QueueUrl=url, MessageBody=body)
        thread.start()
        while worker.counters.get("deleted") < len(sources):
            time.sleep(0.02)

    figures = measured(run)
    worker.request_stop("benchmark done")
    thread.join()
    manifests = [
        o["Key"] for o in s3.list_objects_v2(Bucket=outputs).get("Contents", []) if o["Key"].endswith("manifest.json")
    ]
    assert len(manifests) == len(sources), manifests
    return figures


def main() -> None:
    def configure(parser: argparse.ArgumentParser) -> None:
        whole = bench_cli.bounded
        parser.add_argument("--videos", type=whole("--videos", 1, 100, integer=True), default=4)
        parser.add_argument("--seconds", type=bench_cli.bounded("--seconds", 1, 600), default=10)
        parser.add_argument("--concurrency", type=whole("--concurrency", 1, 64, integer=True), default=2)
        parser.add_argument(
            "--rounds",
            type=whole("--rounds", 1, 50, integer=True),
            default=3,
            help="rounds of all three modes; medians are reported",
        )
        parser.add_argument(
            "--source",
            choices=("camera", "testsrc"),
            default="camera",
            help="camera: moving pattern with film-grain noise at 8 Mbit/s, as phones record (default); "
            "testsrc: the project's ultrafast test clips, far cheaper to decode than any real upload",
        )

    args, dest = bench_cli.parse(__doc__, "transcode.json", configure)

    with tempfile.TemporaryDirectory(prefix="transcode-bench-") as tmp:
        work = Path(tmp)
        sources = [make_source(work / f"source-{index}.mp4", args.source, args.seconds) for index in range(args.videos)]
        video_ffmpeg.h264_available()  # cached encoder check, outside every clock
        samples: dict[str, list[dict[str, float]]] = {"worker": [], "bare": [], "two_pass": []}
        with moto_server() as endpoint:
            modes: dict[str, Callable[[Path], dict[str, float]]] = {
                "worker": lambda out: run_worker(endpoint, sources, out, args.concurrency),
                "bare": lambda out: measured(lambda: run_local(one_decode, sources, out, args.concurrency)),
                "two_pass": lambda out: measured(lambda: run_local(two_pass, sources, out, args.concurrency)),
            }
            names = list(modes)
            for round_ in range(args.rounds):
                # Each round in another order, so load from elsewhere on the machine does not favour one mode.
                for name in names[round_ % 3 :] + names[: round_ % 3]:
                    out = work / f"{name}-{round_}"
                    out.mkdir()
                    samples[name].append(modes[name](out))
                    shutil.rmtree(out)
        runs = {name: median_run(values) for name, values in samples.items()}

    for figures in runs.values():
        figures["ffmpeg_cpu_seconds_per_video"] = round(figures["ffmpeg_cpu_seconds"] / args.videos, 2)
    worker_vs_bare = runs["worker"]["seconds"] / runs["bare"]["seconds"]
    cpu_vs_two_pass = runs["bare"]["ffmpeg_cpu_seconds"] / runs["two_pass"]["ffmpeg_cpu_seconds"]
    worker_cpu_vs_two_pass = runs["worker"]["ffmpeg_cpu_seconds"] / runs["two_pass"]["ffmpeg_cpu_seconds"]
    summary: dict[str, Any] = {
        "command": "python bench/transcode_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs (shared with other work)",
        "videos": args.videos,
        "source": f"{args.source}: {args.seconds:g} s 1920x1080 30 fps H.264 + AAC",
        "video_seconds": args.seconds,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "figures": "medians over the rounds (wall seconds, ffmpeg CPU seconds)",
        "runs": runs,
        "worker_wall_vs_bare": round(worker_vs_bare, 3),
        "one_decode_cpu_vs_two_pass": round(cpu_vs_two_pass, 3),
        "worker_cpu_vs_two_pass": round(worker_cpu_vs_two_pass, 3),
        "goals": {
            "worker_wall_at_most_1.05x_bare": worker_vs_bare <= 1.05,
            "cpu_per_video_at_most_0.85x_two_pass": worker_cpu_vs_two_pass <= 0.85,
        },
    }
    print(json.dumps(summary, indent=2))
    bench_cli.write_result(dest, summary)


if __name__ == "__main__":
    main()
