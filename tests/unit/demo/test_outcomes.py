"""The demo reads each path's outcomes from its output bucket, as the real pipeline writes them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sqs_decoupling.video.errors import PermanentJobError
from sqs_decoupling.video.jobs import VideoJob
from sqs_decoupling.video.processing import process_video, record_failure
from tests.support.videos import cached_video_bytes
from tools.demo.outcomes import decided_keys, read_outcomes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SOURCE, OUTPUT, PROFILE = "uploads-bucket", "processed-bucket", "preview"


@pytest.fixture
def buckets(s3: S3Client) -> S3Client:
    for bucket in (SOURCE, OUTPUT):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3


def consume(s3: S3Client, key: str, data: bytes) -> VideoJob:
    """Upload ``key`` and run the real pipeline on it, recording a permanent failure as the consumers do."""
    response = s3.put_object(Bucket=SOURCE, Key=key, Body=data)
    job = VideoJob(SOURCE, key, response["VersionId"], response["ETag"], len(data))
    deliver(s3, job)
    return job


def deliver(s3: S3Client, job: VideoJob) -> None:
    try:
        process_video(job, s3_client=s3, output_bucket=OUTPUT, profile=PROFILE, max_bytes=10**8)
    except PermanentJobError as error:
        record_failure(job, error, message_id="m-1", s3_client=s3, output_bucket=OUTPUT)


def test_processed_sets_failures_and_decided_keys_come_from_the_bucket(buckets: S3Client) -> None:
    # GIVEN a video processed, delivered again (a duplicate), and a text file that can never be processed
    video = consume(buckets, "uploads/clip.mp4", cached_video_bytes())
    deliver(buckets, video)
    consume(buckets, "uploads/notes.txt", b"just notes\n" * 10)
    # WHEN the demo reads the output bucket
    outcomes = read_outcomes(buckets, OUTPUT, upload_prefix="uploads/")
    # THEN it sees one complete set (metadata, thumbnail, manifest), one failure with its reason and key, two keys
    # with a final outcome, and no work done twice: the duplicate was recognised
    assert (outcomes.processed, outcomes.outputs, outcomes.decided) == (1, 3, 2)
    assert outcomes.failures == {"not_a_video (notes.txt)": 1}
    assert outcomes.repeated == 0
    assert decided_keys(buckets, OUTPUT) == 2


def test_a_delivery_that_did_the_work_again_shows_as_repeated_work(buckets: S3Client) -> None:
    # GIVEN a video processed, then its manifest gone (a crash before it was written, say) and the job delivered again
    video = consume(buckets, "uploads/clip.mp4", cached_video_bytes())
    buckets.delete_object(Bucket=OUTPUT, Key=video.profile_prefix(PROFILE) + "manifest.json")
    deliver(buckets, video)
    # WHEN the demo reads the output bucket
    outcomes = read_outcomes(buckets, OUTPUT, upload_prefix="uploads/")
    # THEN the second run's outputs are second versions: one repeated piece of work
    assert outcomes.repeated == 1 and outcomes.processed == 1
