"""Hostile tags (issue 22 items 6-8): what a file's metadata says can neither fill the consumer's memory, nor fake
the probe's facts, nor change the class of a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from sqs_decoupling.contracts.media import MIB
from sqs_decoupling.video.errors import PermanentJobError
from sqs_decoupling.video.ffmpeg import check_limits, probe
from sqs_decoupling.video.processing import process_video
from sqs_decoupling.video.samples import (
    make_corrupt_frames_video,
    make_fake_stream_lines_video,
    make_newline_metadata_video,
)
from sqs_decoupling.video.subprocesses import KEPT_BYTES, ChildProcesses
from tests.unit.video_processing.buckets import LIMIT, OUTPUT, upload
from tools.localcloud.paths import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3.client import S3Client


def test_fake_stream_lines_in_the_tags_do_not_change_the_probe(tmp_path: Path) -> None:
    # GIVEN a 0.5 s, 1,000 fps clip whose tags print "Duration: 00:00:01.00" and a 320x240, 25 fps "Stream #0:0"
    # before the real ones in ffmpeg's human-readable dump (the real duration differs from the fake one as the frame
    # rate does: 500 frames cost a quarter of the 2,000 a 2 s clip took to encode)
    clip = make_fake_stream_lines_video(tmp_path / "fake.mp4", fps=1000, seconds=0.5)

    # WHEN it is probed
    info = probe(clip)

    # THEN the probe has the real facts, and the limits refuse its real frame rate
    assert (info.fps, info.duration, info.streams, info.has_audio) == (1000.0, 0.5, 1, False)
    with pytest.raises(PermanentJobError, match="1000 frames per second, above the limit of 240") as refused:
        check_limits(info)
    assert refused.value.reason == "too_high_frame_rate"


@pytest.mark.parametrize("title", ["holiday", "No space left on device", "x\n: Cannot allocate memory"])
def test_the_title_cannot_change_the_class_of_a_failure(buckets: S3Client, tmp_path: Path, title: str) -> None:
    # GIVEN a clip whose frames are garbage, titled like an ordinary clip or like a failure of the machine
    clip = make_corrupt_frames_video(tmp_path / "corrupt.mp4", title=title)
    job = upload(buckets, "uploads/corrupt.mp4", clip.read_bytes())

    # WHEN it is processed
    with pytest.raises(PermanentJobError) as failure:
        process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN it is the same permanent failure whatever the title says (never transient, never retried)
    assert failure.value.reason == "cannot_decode"


def test_a_child_that_prints_without_end_is_kept_to_its_first_and_last_kib() -> None:
    # GIVEN a child printing 42 MB of lines on stderr
    command = ["/bin/sh", "-c", "echo first; yes 'the same line' | head -n 3000000 >&2; echo last >&2"]

    # WHEN it runs
    result = ChildProcesses().run(command, timeout=60)

    # THEN of its stderr the first and last few KiB are kept, with one line saying how much there was
    assert len(result.stderr) < 2 * KEPT_BYTES + 200
    assert result.stderr.startswith("the same line\n") and result.stderr.endswith("\nlast\n")
    assert "3000001 lines, 42000005 bytes in all: only the first and last kept" in result.stderr
    assert result.stdout == "first\n" and result.returncode == 0


# In a fresh process: one delivery of an upload through a consumer's real entry point, the Lambda's handler
# (preview profile) or the worker's job handler (transcode profile), against in-process moto S3; prints the
# outcome and the peak resident memory of the consumer and of its largest child (ffmpeg runs one at a time, so
# their sum bounds the tree's peak; the child's figure is at least the consumer's size when it forked, so the sum
# errs high).
CONSUMER = textwrap.dedent(
    """
    import json, os, resource, sys, uuid
    import boto3
    from moto import mock_aws
    from sqs_decoupling.video.jobs import VideoJob, sqs_body_for

    def peak_resident_bytes():
        # VmHWM: this process's own peak since its exec. (ru_maxrss is not: Linux carries the forking parent's peak
        # into it, so a consumer started from a large test process would report that process's size.)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    path, consumer = sys.argv[1], sys.argv[2]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("uploads", "outputs"):
            s3.create_bucket(Bucket=bucket)
        data = open(path, "rb").read()
        etag = s3.put_object(Bucket="uploads", Key="clip.mp4", Body=data)["ETag"].strip('"')
        body = sqs_body_for(VideoJob(bucket="uploads", key="clip.mp4", version_id=None, etag=etag, size=len(data)))
        if consumer == "lambda":
            os.environ["OUTPUT_BUCKET"] = "outputs"
            from sqs_decoupling.lambda_consumer.runtime import handler
            record = {"messageId": str(uuid.uuid4()), "receiptHandle": "h", "body": body, "attributes": {
                "ApproximateReceiveCount": "1", "SentTimestamp": "1764244800000"}, "messageAttributes": {},
                "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:video-jobs", "awsRegion": "us-east-1"}
            class Context:
                function_name, memory_limit_in_mb, aws_request_id = "video-processor", 2048, "r"
                invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:video-processor"
                def get_remaining_time_in_millis(self):
                    return 120_000  # the function's timeout, as at the start of an invocation
            outcome = handler.lambda_handler({"Records": [record]}, Context())
        else:
            from sqs_decoupling.worker_fleet.worker.job import Message
            from sqs_decoupling.worker_fleet.worker.video_jobs import make_video_handler
            handle = make_video_handler(s3_client=s3, output_bucket="outputs", max_bytes=10**9)
            outcome = handle(Message(message_id="m", receipt_handle="h", body=body, receive_count=1)).value
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="outputs").get("Contents", [])]
    print(json.dumps({
        "outcome": outcome,
        "manifest": any(key.endswith("manifest.json") for key in keys),
        "consumer_rss": peak_resident_bytes(),
        "ffmpeg_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }))
    """
)
# The ceiling stated in the README: one job's process tree (consumer + ffmpeg) for the newline-metadata file.
TREE_CEILING = 400 * MIB


@pytest.fixture(scope="module")
def newline_metadata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 4 MB of newlines in the title: ffmpeg's human-readable dump of it is 92 MB, on every run.
    return make_newline_metadata_video(tmp_path_factory.mktemp("newlines") / "newlines.mp4", newlines=4_000_000)


@pytest.mark.slow
@pytest.mark.xdist_group("newline-metadata")
@pytest.mark.parametrize("consumer", ["lambda", "worker"])
def test_a_title_of_newlines_keeps_the_job_within_its_memory_ceiling(newline_metadata: Path, consumer: str) -> None:
    # GIVEN an upload whose title is 4 MB of newlines
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)

    # WHEN a consumer processes its delivery, in a fresh process
    done = subprocess.run(
        [sys.executable, "-c", CONSUMER, str(newline_metadata), consumer],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # THEN the job succeeded (its outputs complete) and the whole process tree stayed under the stated ceiling
    assert result["manifest"], result
    assert result["consumer_rss"] + result["ffmpeg_rss"] < TREE_CEILING, result
