"""Benchmark: the real Lambda handler on moto (in-process) over a batch of 10 generated clips.

Reports records/second, and the handler's overhead over running the bare ffmpeg commands it runs
(probe + thumbnail) on the same clips: ratio = handler_time / bare_ffmpeg_time. The overhead is S3 (moto)
calls, downloads/uploads, JSON, Powertools and Python. Writes build/handler.json (bench/results/handler.json,
which the scaling simulator and the cost model read, with --update-bench).

    .venv/bin/python bench/handler_bench.py [--update-bench]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bench_cli  # noqa: E402  (the repository root, just put on sys.path)

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106  (moto only)
    AWS_DEFAULT_REGION="us-east-1",
    OUTPUT_BUCKET="bench-processed",
    POWERTOOLS_SERVICE_NAME="video-processor-bench",
    POWERTOOLS_METRICS_NAMESPACE="Bench",
    POWERTOOLS_LOG_LEVEL="WARNING",
)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from sqs_decoupling.lambda_consumer.runtime import handler  # noqa: E402
from sqs_decoupling.video import ffmpeg as video_ffmpeg  # noqa: E402
from sqs_decoupling.video.samples import make_sample_video  # noqa: E402

BATCH = 10
ROUNDS = 5
CLIP_SECONDS, CLIP_SIZE, CLIP_FPS = 2.0, "640x480", 25
# Where the preview profile takes its thumbnail for a clip this long: min(1 s, duration / 4).
THUMBNAIL_AT = f"{min(1.0, CLIP_SECONDS / 4):.3f}"
UPLOADS = "bench-uploads"


@dataclass
class BenchContext:
    aws_request_id: str
    function_name: str = "bench"
    memory_limit_in_mb: int = 1769  # one full vCPU on Lambda
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
        "awsRegion": "us-east-1",
    }


def handler_round(clips: list[Path]) -> float:
    """Upload the clips (S3 notifications -> SQS), then time one handler invocation over the batch."""
    with mock_aws():
        handler.s3_client.cache_clear()
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="bench")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket=UPLOADS)
        s3.create_bucket(Bucket=os.environ["OUTPUT_BUCKET"])
        s3.put_bucket_notification_configuration(
            Bucket=UPLOADS,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
        for index, clip in enumerate(clips):
            s3.upload_file(str(clip), UPLOADS, f"uploads/{index}-{uuid.uuid4()}.mp4")
        records: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            records += [sqs_record(m) for m in messages if "s3:TestEvent" not in m["Body"]]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        assert len(records) == len(clips)
        context = BenchContext(aws_request_id=str(uuid.uuid4()))
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # metrics (EMF) go to stdout
            response = handler.lambda_handler({"Records": records}, context)
        elapsed = time.perf_counter() - started
        assert response == {"batchItemFailures": []}, response
        return elapsed


def bare_ffmpeg_round(clips: list[Path], workdir: Path) -> float:
    """The same ffmpeg commands the preview profile runs, on local files, nothing else."""
    exe = video_ffmpeg.ffmpeg_exe()
    started = time.perf_counter()
    for index, clip in enumerate(clips):
        source = ["-format_whitelist", video_ffmpeg.ALLOWED_CONTAINERS, "-i", f"file:{clip}"]
        subprocess.run([exe, "-hide_banner", "-nostdin", *source], capture_output=True, check=False, timeout=60)
        thumbnail = [
            "-frames:v",
            "1",
            "-vf",
            "scale='min(320,iw)':-2",
            "-q:v",
            "4",
            "-y",
            str(workdir / f"{index}.jpg"),
        ]
        subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-ss", THUMBNAIL_AT, *source, *thumbnail],
            capture_output=True,
            check=True,
            timeout=60,
        )
    return time.perf_counter() - started


def main() -> None:
    _, out = bench_cli.parse(__doc__, "handler.json")
    with tempfile.TemporaryDirectory(prefix="handler-bench-") as tmp:
        workdir = Path(tmp)
        clips = [
            make_sample_video(workdir / f"clip-{i}.mp4", seconds=CLIP_SECONDS, size=CLIP_SIZE, fps=CLIP_FPS)
            for i in range(BATCH)
        ]
        video_ffmpeg.h264_available()  # cached check, kept out of the timings
        handler_round(clips)  # warm-up: imports, first moto and ffmpeg runs
        bare_ffmpeg_round(clips, workdir)
        handler_times = [handler_round(clips) for _ in range(ROUNDS)]
        bare_times = [bare_ffmpeg_round(clips, workdir) for _ in range(ROUNDS)]

    handler_s, bare_s = statistics.median(handler_times), statistics.median(bare_times)
    results = {
        "benchmark": "lambda handler, preview profile, moto in-process",
        "batch_records": BATCH,
        "clip": {"seconds": CLIP_SECONDS, "size": CLIP_SIZE, "fps": CLIP_FPS, "codec": "h264"},
        "rounds": ROUNDS,
        "handler_seconds_median": round(handler_s, 4),
        "handler_seconds_all": [round(t, 4) for t in handler_times],
        "records_per_second": round(BATCH / handler_s, 2),
        "bare_ffmpeg_seconds_median": round(bare_s, 4),
        "bare_ffmpeg_seconds_all": [round(t, 4) for t in bare_times],
        "overhead_ratio_handler_over_bare_ffmpeg": round(handler_s / bare_s, 3),
        "overhead_seconds_per_record": round((handler_s - bare_s) / BATCH, 4),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    print(json.dumps(results, indent=2))
    bench_cli.write_result(out, results)


if __name__ == "__main__":
    main()
