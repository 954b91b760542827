"""The video job in the real worker, against S3 and SQS on the moto server, with real ffmpeg on a real clip."""

from __future__ import annotations

import json
import uuid

import pytest

pytest.importorskip("video_processing")

from tests.integration.conftest import queue_depth, send_messages
from tests.support.moto_server import wait_until
from tests.support.videos import cached_video_bytes
from video_processing import VideoJob, sqs_body_for
from worker.video_jobs import make_video_handler


@pytest.fixture
def s3(client):
    return client("s3")


@pytest.fixture
def buckets(s3):
    """A versioned uploads bucket and an output bucket, uniquely named."""
    suffix = uuid.uuid4().hex[:8]
    uploads, output = f"uploads-{suffix}", f"processed-{suffix}"
    s3.create_bucket(Bucket=uploads)
    s3.put_bucket_versioning(Bucket=uploads, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=output)
    return uploads, output


@pytest.fixture
def upload(s3, buckets):
    """``upload(key, data) -> VideoJob`` for that object version."""

    def put(key: str, data: bytes) -> VideoJob:
        response = s3.put_object(Bucket=buckets[0], Key=key, Body=data)
        return VideoJob(
            bucket=buckets[0], key=key, version_id=response["VersionId"], etag=response["ETag"], size=len(data)
        )

    return put


@pytest.fixture
def video_worker(s3, buckets, make_queue, start_worker):
    """``video_worker(queue_url, **WorkerOptions)``: the worker running the transcode job into the output bucket."""
    handler = make_video_handler(s3_client=s3, output_bucket=buckets[1], max_bytes=50 * 1024**2)
    return lambda queue_url, **options: start_worker(queue_url, handler, **options)


def test_a_video_is_transcoded_and_its_message_deleted_and_a_redelivery_is_a_duplicate(
    sqs, s3, buckets, upload, make_queue, video_worker
):
    # GIVEN an uploaded clip and its job message, sent twice (SQS delivers at least once)
    job = upload("uploads/My Clip 1.mp4", cached_video_bytes())
    queue = make_queue()
    send_messages(sqs, queue.url, [sqs_body_for(job)])

    # WHEN the worker takes the first delivery, then the duplicate
    running = video_worker(queue.url)
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=30, what="the job")
    send_messages(sqs, queue.url, [sqs_body_for(job)])
    wait_until(lambda: running.counters.get("deleted") == 2, timeout=30, what="the duplicate")
    running.stop()

    # THEN the outputs are in the output bucket once, under the version's prefix, and both messages are gone
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=buckets[1], Prefix=job.output_prefix)["Contents"]}
    assert {job.output_prefix + name for name in ("metadata.json", "thumbnail.jpg")} <= keys
    assert running.counters.jobs() == {"received": 2, "succeeded": 1, "duplicates": 1, "deleted": 2}
    assert queue_depth(sqs, queue.url) == (0, 0)


def test_an_object_that_is_not_a_video_is_recorded_as_failed_and_consumed(
    sqs, s3, buckets, upload, make_queue, video_worker
):
    # GIVEN an upload that is not a video
    job = upload("uploads/notes.mp4", b"these are meeting notes, not a video")
    queue = make_queue()
    (message_id,) = send_messages(sqs, queue.url, [sqs_body_for(job)])

    # WHEN the worker runs its job
    running = video_worker(queue.url)
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=30, what="the job")
    running.stop()

    # THEN the failure is recorded with its reason and the message is consumed (retrying cannot help)
    record = json.loads(s3.get_object(Bucket=buckets[1], Key=job.failure_key)["Body"].read())
    assert record["message_id"] == message_id
    assert record["reason"]
    assert running.counters.get("permanent_failures") == 1
    assert queue_depth(sqs, queue.url) == (0, 0)


def test_a_malformed_message_is_not_deleted_and_reaches_the_dlq(sqs, make_queue, video_worker):
    # GIVEN a body that is not an S3 event, on a queue that dead-letters after one receive
    queue = make_queue(visibility_timeout=1, max_receive_count=1)
    send_messages(sqs, queue.url, ["this is not JSON"])

    # WHEN the worker receives it
    running = video_worker(queue.url, visibility_timeout=1)
    wait_until(lambda: queue_depth(sqs, queue.dlq_url)[0] == 1, timeout=15, what="the message in the DLQ")
    running.stop()

    # THEN it was never deleted: it is kept, intact, in the DLQ
    assert running.counters.get("transient_failures") == 1
    assert running.counters.get("deleted") == 0
    (dead,) = sqs.receive_message(QueueUrl=queue.dlq_url)["Messages"]
    assert dead["Body"] == "this is not JSON"


def test_the_s3_test_event_is_consumed_without_work(sqs, s3, buckets, make_queue, video_worker):
    # GIVEN the s3:TestEvent S3 sends when a notification is configured
    queue = make_queue()
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": buckets[0], "RequestId": "1"}
    send_messages(sqs, queue.url, [json.dumps(test_event | {"Time": "2026-01-01T00:00:00Z", "HostId": "h"})])

    # WHEN the worker receives it
    running = video_worker(queue.url)
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=15, what="the delete")
    running.stop()

    # THEN it is deleted and nothing was written
    assert running.counters.get("succeeded") == 1
    assert s3.list_objects_v2(Bucket=buckets[1]).get("KeyCount") == 0
