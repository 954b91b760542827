"""The video job in the real worker, against S3 and SQS on the moto server, with real ffmpeg on a real clip."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import uuid

import botocore.awsrequest
import pytest

pytest.importorskip("sqs_decoupling.video")

from sqs_decoupling.queue.envelope.envelope import encrypt_body, is_encrypted
from sqs_decoupling.video.jobs import VideoJob, sqs_body_for
from sqs_decoupling.worker_fleet.worker.logs import configure_logging
from sqs_decoupling.worker_fleet.worker.video_jobs import make_video_handler
from tests.integration.conftest import send_messages
from tests.support.permissions.recorder import assert_catalogued
from tests.support.videos import cached_video_bytes
from tools.localcloud.server import queue_depth, wait_until


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
    assert {job.profile_prefix("transcode") + name for name in ("metadata.json", "thumbnail.jpg")} <= keys
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
    record = json.loads(
        s3.get_object(Bucket=buckets[1], Key=job.profile_prefix("transcode") + "failure.json")["Body"].read()
    )
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


@pytest.mark.parametrize("kind", ["s3_test_event", "folder_placeholder"])
def test_a_test_event_or_a_folder_placeholder_is_ignored_counted_apart_and_deleted(
    sqs, s3, buckets, make_queue, video_worker, kind, caplog
):
    # GIVEN the s3:TestEvent S3 sends when a notification is configured, or the notification for a console
    # "Create folder" placeholder (a 0-byte object whose key ends in "/")
    queue = make_queue()
    if kind == "s3_test_event":
        test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": buckets[0], "RequestId": "1"}
        body = json.dumps(test_event | {"Time": "2026-01-01T00:00:00Z", "HostId": "h"})
    else:
        etag = s3.put_object(Bucket=buckets[0], Key="uploads/new folder/", Body=b"")["ETag"]
        body = sqs_body_for(VideoJob(bucket=buckets[0], key="uploads/new folder/", version_id=None, etag=etag, size=0))
    send_messages(sqs, queue.url, [body])

    # WHEN the worker receives it
    with caplog.at_level("INFO", logger="sqs_decoupling.worker_fleet.worker.video_jobs"):
        running = video_worker(queue.url)
        wait_until(lambda: running.counters.get("deleted") == 1, timeout=15, what="the delete")
        running.stop()

    # THEN it is deleted, counted as ignored (not as a success, not as a failure), and nothing was written:
    # no failure record
    assert running.counters.get("ignored") == 1
    assert running.counters.get("succeeded") == running.counters.get("permanent_failures") == 0
    assert s3.list_objects_v2(Bucket=buckets[1]).get("KeyCount") == 0
    # AND one log line says so, with the reason
    ignored = [r for r in caplog.records if getattr(r, "outcome", None) == "ignored"]
    assert [r.reason for r in ignored] == [kind]


@pytest.fixture
def kms(client):
    return client("kms")


@pytest.fixture
def key_arn(kms):
    return kms.create_key(Description="video jobs body key")["KeyMetadata"]["Arn"]


@pytest.fixture
def encrypted_video_worker(s3, buckets, kms, key_arn, start_worker):
    """``encrypted_video_worker(queue_url, body_key_arn=key_arn, **WorkerOptions)``: the video worker configured
    to open client-side encrypted bodies (as ``--body-key-arn`` configures it)."""

    def start(queue_url, body_key_arn=key_arn, **options):
        handler = make_video_handler(
            s3_client=s3,
            output_bucket=buckets[1],
            max_bytes=50 * 1024**2,
            queue_url=queue_url,
            body_key_arn=body_key_arn,
            kms_client=kms,
        )
        return start_worker(queue_url, handler, **options)

    return start


def queue_name(queue_url):
    return queue_url.rsplit("/", 1)[-1]


def test_an_encrypted_job_is_transcoded_and_its_message_deleted(
    sqs, s3, buckets, upload, make_queue, kms, key_arn, encrypted_video_worker
):
    # GIVEN an uploaded clip whose job body is client-side encrypted for the queue it is sent to
    job = upload("uploads/Secret Clip.mp4", cached_video_bytes())
    queue = make_queue()
    body = encrypt_body(kms, key_arn, queue_name(queue.url), sqs_body_for(job))
    assert is_encrypted(body)
    assert "Secret" not in body
    send_messages(sqs, queue.url, [body])

    # WHEN the worker, configured with the key, runs it
    running = encrypted_video_worker(queue.url)
    wait_until(lambda: running.counters.get("deleted") == 1, timeout=30, what="the job")
    running.stop()

    # THEN the video is transcoded and the message is gone
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=buckets[1], Prefix=job.output_prefix)["Contents"]}
    assert {job.profile_prefix("transcode") + name for name in ("metadata.json", "thumbnail.jpg")} <= keys
    assert running.counters.jobs() == {"received": 1, "succeeded": 1, "deleted": 1}
    assert queue_depth(sqs, queue.url) == (0, 0)


def test_a_body_encrypted_for_another_queue_is_not_deleted_and_reaches_the_dlq(
    sqs, s3, buckets, upload, make_queue, kms, key_arn, encrypted_video_worker, caplog
):
    # GIVEN a valid job encrypted with the right key but for another queue, on a queue that dead-letters after one
    # receive
    job = upload("uploads/clip.mp4", cached_video_bytes())
    queue = make_queue(visibility_timeout=1, max_receive_count=1)
    body = encrypt_body(kms, key_arn, "some-other-queue", sqs_body_for(job))
    (message_id,) = send_messages(sqs, queue.url, [body])

    # WHEN the worker receives it
    running = encrypted_video_worker(queue.url, visibility_timeout=1)
    wait_until(lambda: queue_depth(sqs, queue.dlq_url)[0] == 1, timeout=15, what="the message in the DLQ")
    running.stop()

    # THEN it was never deleted nor processed: it is in the DLQ, intact, and the log says why
    assert running.counters.get("deleted") == 0
    assert running.counters.get("transient_failures") >= 1
    assert s3.list_objects_v2(Bucket=buckets[1]).get("KeyCount") == 0
    (dead,) = sqs.receive_message(QueueUrl=queue.dlq_url)["Messages"]
    assert dead["Body"] == body
    refusals = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert refusals
    assert refusals[0].message_id == message_id
    assert "some-other-queue" in refusals[0].reason


def test_an_encrypted_body_without_a_key_configured_is_not_deleted(
    sqs, s3, buckets, upload, make_queue, kms, key_arn, encrypted_video_worker, caplog
):
    # GIVEN an encrypted job, and a worker with no --body-key-arn
    job = upload("uploads/clip.mp4", cached_video_bytes())
    queue = make_queue(visibility_timeout=1, max_receive_count=1)
    body = encrypt_body(kms, key_arn, queue_name(queue.url), sqs_body_for(job))
    send_messages(sqs, queue.url, [body])

    # WHEN the worker receives it
    running = encrypted_video_worker(queue.url, body_key_arn=None, visibility_timeout=1)
    wait_until(lambda: queue_depth(sqs, queue.dlq_url)[0] == 1, timeout=15, what="the message in the DLQ")
    running.stop()

    # THEN it is kept (in the DLQ), nothing was written, and the log says which setting is missing
    assert running.counters.get("deleted") == 0
    assert s3.list_objects_v2(Bucket=buckets[1]).get("KeyCount") == 0
    refusals = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert refusals
    assert "WORKER_BODY_KEY_ARN" in refusals[0].reason


def test_the_worker_process_opens_encrypted_bodies_with_body_key_arn(
    worker_env, sqs, s3, buckets, upload, make_queue, kms, key_arn, call_recorder
):
    # GIVEN an encrypted job and a plain one on the queue
    encrypted_job = upload("uploads/encrypted.mp4", cached_video_bytes())
    plain_job = upload("uploads/plain.mp4", cached_video_bytes())
    queue = make_queue()
    send_messages(
        sqs,
        queue.url,
        [encrypt_body(kms, key_arn, queue_name(queue.url), sqs_body_for(encrypted_job)), sqs_body_for(plain_job)],
    )

    # WHEN `python -m sqs_decoupling.worker_fleet.worker` runs with the key in WORKER_BODY_KEY_ARN
    call_recorder.symbols |= {
        queue.url: "<jobs_queue>",
        buckets[0]: "<uploads_bucket>",
        buckets[1]: "<processed_bucket>",
        key_arn: "<body_key>",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sqs_decoupling.worker_fleet.worker",
            "--output-bucket",
            buckets[1],
            "--wait-seconds",
            "1",
        ],
        env=worker_env
        | {"WORKER_QUEUE_URL": queue.url, "WORKER_BODY_KEY_ARN": key_arn}
        | call_recorder.subprocess_env("worker", worker_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: queue_depth(sqs, queue.url) == (0, 0), timeout=60, what="both jobs")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)

    # THEN both videos are transcoded and both messages deleted; the KMS Decrypt went through the worker's client
    assert process.returncode == 0, stderr
    for job in (encrypted_job, plain_job):
        assert s3.list_objects_v2(Bucket=buckets[1], Prefix=job.output_prefix).get("KeyCount", 0) >= 2
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["jobs"]["deleted"] == 2
    assert summary["requests"].get("kms.Decrypt") == 1
    # AND every AWS call it made is in the permission catalogue
    assert_catalogued(call_recorder.calls(), needs=[("worker", "kms", "Decrypt"), ("worker", "sqs", "ReceiveMessage")])


def test_a_disabled_key_is_named_and_the_sdk_logs_no_traceback(
    sqs, s3, buckets, upload, make_queue, kms, key_arn, encrypted_video_worker
):
    # GIVEN an encrypted job, and KMS answering Decrypt with DisabledException (the key was disabled)
    job = upload("uploads/clip.mp4", cached_video_bytes())
    queue = make_queue(visibility_timeout=1, max_receive_count=1)
    send_messages(sqs, queue.url, [encrypt_body(kms, key_arn, queue_name(queue.url), sqs_body_for(job))])
    disabled = {"Code": "DisabledException", "Message": f"{key_arn} is disabled."}
    kms.meta.events.register(
        "before-call.kms.Decrypt",
        lambda **_: (
            botocore.awsrequest.AWSResponse("https://kms", 400, {}, None),
            {"Error": disabled, "ResponseMetadata": {"HTTPStatusCode": 400}},
        ),
    )
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(
        "INFO", stream
    )  # the worker's own JSON logging, as `python -m sqs_decoupling.worker_fleet.worker` sets it up
    # A worker process never loads the Lambda handler, whose Powertools logger copies its own handlers onto the SDK's
    # loggers (and stops them propagating); in this test process an earlier Lambda test may have loaded it.
    names = [name for name in logging.root.manager.loggerDict if name.startswith("aws_encryption_sdk")]
    sdk_loggers = [logging.getLogger(name) for name in names]
    sdk_saved = [(list(logger.handlers), logger.propagate) for logger in sdk_loggers]
    for logger in sdk_loggers:
        logger.handlers[:], logger.propagate = [], True

    # WHEN the worker receives it
    try:
        running = encrypted_video_worker(queue.url, visibility_timeout=1)
        wait_until(lambda: queue_depth(sqs, queue.dlq_url)[0] == 1, timeout=15, what="the message in the DLQ")
        running.stop()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for logger, (handlers, propagate) in zip(sdk_loggers, sdk_saved, strict=True):
            logger.handlers[:], logger.propagate = handlers, propagate

    # THEN the worker's reason names the KMS error code
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    refusals = [line for line in lines if "cannot be opened" in line["message"]]
    assert refusals and "DisabledException" in refusals[0]["reason"]
    # AND the Encryption SDK's lines are JSON, WARNING or above, with no traceback and no "Footer not read"
    sdk = [line for line in lines if line["logger"].startswith("aws_encryption_sdk")]
    assert sdk and all(line["level"] in {"WARNING", "ERROR"} and "exception" not in line for line in sdk)
    assert "Footer not read" not in stream.getvalue()
