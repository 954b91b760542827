"""The video processor Lambda with client-side encrypted bodies (``sqs_decoupling.queue.envelope``), on moto's S3, SQS
and KMS.

moto's S3 notifications are plain, so the tests encrypt a real notification's body as a producer would, for the
queue named by the record's eventSourceARN.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import botocore.awsrequest
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sqs_decoupling.lambda_consumer.runtime import handler
from sqs_decoupling.queue.envelope.envelope import encrypt_body, is_encrypted
from sqs_decoupling.video.jobs import jobs_from_sqs_body
from tests.support.aws import REGION
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tests.support.videos import cached_video_bytes
from tests.unit.lambdas.conftest import (
    OUTPUT_BUCKET,
    UPLOADS_BUCKET,
    LambdaContext,
    Pipeline,
    sqs_event,
)

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

CLIP = cached_video_bytes()
PREVIEW_FILES = ("metadata.json", "thumbnail.jpg", "manifest.json")


@pytest.fixture
def kms(aws: None, kms_keys_made_cheaply: None) -> Iterator[KMSClient]:
    """moto's KMS; the handler's cached KMS client is cleared around the test so it is created inside the mock."""
    handler.kms_client.cache_clear()
    yield boto3.client("kms", region_name=REGION)
    handler.kms_client.cache_clear()


@pytest.fixture
def key_arn(kms: KMSClient) -> str:
    return kms.create_key(Description="video jobs body key")["KeyMetadata"]["Arn"]


def preview_outputs(plain_record: dict[str, Any]) -> set[str]:
    """The complete preview set for the video a plain notification names (under its version id, or its ETag
    when the event carries none, as plain moto's do)."""
    (job,) = jobs_from_sqs_body(plain_record["body"])
    return {job.profile_prefix("preview") + name for name in PREVIEW_FILES} | {job.latest_key("preview")}


def video_record(pipeline: Pipeline, key: str) -> dict[str, Any]:
    """Upload a clip and return its S3 notification as the Lambda SQS record (plain body)."""
    pipeline.upload(key, CLIP)
    (record,) = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    return record


def encrypted(record: dict[str, Any], kms: KMSClient, key_arn: str, *, for_queue: str | None = None) -> dict[str, Any]:
    """The same record with its body client-side encrypted (for the record's own queue unless told otherwise)."""
    queue_name = for_queue or record["eventSourceARN"].rsplit(":", 1)[-1]
    return record | {"body": encrypt_body(kms, key_arn, queue_name, record["body"])}


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_encrypted_video_job_is_processed_like_a_plain_one(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    call_recorder: CallRecorder,
) -> None:
    # GIVEN BODY_KEY_ARN set, and a video's job encrypted for the queue the record comes from
    monkeypatch.setenv("BODY_KEY_ARN", key_arn)
    plain = video_record(pipeline, "uploads/secret clip.mp4")
    record = encrypted(plain, kms, key_arn)
    assert is_encrypted(record["body"])
    assert "secret" not in record["body"]

    # WHEN the handler gets it
    call_recorder.symbols |= {
        UPLOADS_BUCKET: "<uploads_bucket>",
        OUTPUT_BUCKET: "<processed_bucket>",
        "video-jobs": "<jobs_queue>",
        key_arn: "<body_key>",
    }
    with call_recorder.as_principal("lambda"):
        response = handler.lambda_handler(sqs_event([record]), lambda_context)

    # THEN it is consumed and the video has its complete preview set
    assert response == {"batchItemFailures": []}
    assert pipeline.output_keys() == preview_outputs(plain)
    # AND every call the function made (KMS's included) is in the permission catalogue
    assert_catalogued(call_recorder.calls(), needs=[("lambda", "kms", "Decrypt"), ("lambda", "s3", "PutObject")])


def test_a_body_encrypted_for_another_queue_is_reported_and_writes_nothing(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_logs: io.StringIO,
) -> None:
    # GIVEN a valid video job, encrypted with the right key but for another queue (copied or misrouted),
    # in a batch with a plain job (Powertools fails the whole batch when every record fails)
    monkeypatch.setenv("BODY_KEY_ARN", key_arn)
    misrouted = video_record(pipeline, "uploads/clip.mp4")
    record = encrypted(misrouted, kms, key_arn, for_queue="other-queue") | {"messageId": "misrouted-1"}
    plain = video_record(pipeline, "uploads/open.mp4")

    # WHEN the handler gets the batch
    response = handler.lambda_handler(sqs_event([record, plain]), lambda_context)

    # THEN it is reported for retry (so it reaches the DLQ), it writes nothing (only the plain job has outputs),
    # and the error log names the message and the reason, without the plaintext
    assert response == {"batchItemFailures": [{"itemIdentifier": "misrouted-1"}]}
    assert pipeline.output_keys() == preview_outputs(plain)
    errors = [line for line in log_lines(handler_logs) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message_id"] == "misrouted-1"
    assert errors[0]["error_type"] == "ContextMismatchError"
    assert "other-queue" in errors[0]["reason"]
    assert "DLQ" in errors[0]["message"]
    assert "uploads/clip.mp4" not in handler_logs.getvalue()
    assert "uploads%2Fclip.mp4" not in handler_logs.getvalue()


def test_an_encrypted_body_without_body_key_arn_is_reported_and_says_what_to_set(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_logs: io.StringIO,
) -> None:
    # GIVEN no BODY_KEY_ARN, an encrypted job and a plain one in the same batch
    monkeypatch.delenv("BODY_KEY_ARN", raising=False)
    record = encrypted(video_record(pipeline, "uploads/locked.mp4"), kms, key_arn) | {"messageId": "locked-1"}
    plain = video_record(pipeline, "uploads/open.mp4")

    # WHEN the handler gets the batch
    response = handler.lambda_handler(sqs_event([record, plain]), lambda_context)

    # THEN only the encrypted one is reported, the plain one is processed, and the log says what to configure
    assert response == {"batchItemFailures": [{"itemIdentifier": "locked-1"}]}
    assert pipeline.output_keys() == preview_outputs(plain)
    (error,) = [line for line in log_lines(handler_logs) if line["level"] == "ERROR"]
    assert error["message_id"] == "locked-1"
    assert "BODY_KEY_ARN" in error["reason"]
    # AND no KMS client was needed to find that out
    assert handler.kms_client.cache_info().currsize == 0


def test_a_tampered_encrypted_body_is_reported(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an encrypted job with one base64 character of its ciphertext changed
    monkeypatch.setenv("BODY_KEY_ARN", key_arn)
    record = encrypted(video_record(pipeline, "uploads/clip.mp4"), kms, key_arn)
    body = record["body"]
    middle = len(body) // 2
    tampered = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    record |= {"body": tampered, "messageId": "tampered-1"}
    plain = video_record(pipeline, "uploads/open.mp4")

    # WHEN the handler gets it, with a plain job THEN it is reported and writes nothing
    response = handler.lambda_handler(sqs_event([record, plain]), lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "tampered-1"}]}
    assert pipeline.output_keys() == preview_outputs(plain)


def test_a_batch_of_only_unopenable_bodies_fails_as_a_whole(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch whose only record was encrypted for another queue
    monkeypatch.setenv("BODY_KEY_ARN", key_arn)
    record = encrypted(video_record(pipeline, "uploads/clip.mp4"), kms, key_arn, for_queue="other-queue")

    # WHEN the handler gets it THEN the invocation fails (Powertools: every record failed), so SQS retries it all
    with pytest.raises(BatchProcessingError, match="All records failed"):
        handler.lambda_handler(sqs_event([record]), lambda_context)
    assert pipeline.output_keys() == set()


def test_plain_bodies_still_work_with_body_key_arn_set_and_need_no_kms(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN BODY_KEY_ARN set, and S3's own plain notification (and its s3:TestEvent)
    monkeypatch.setenv("BODY_KEY_ARN", key_arn)
    pipeline.upload("uploads/plain.mp4", CLIP)
    records = pipeline.deliveries()
    (notification,) = [r for r in records if "s3:TestEvent" not in r["body"]]
    assert not any(is_encrypted(r["body"]) for r in records)

    # WHEN the handler gets them
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN they are processed as before, and no KMS client was created
    assert response == {"batchItemFailures": []}
    assert pipeline.output_keys() == preview_outputs(notification)
    assert handler.kms_client.cache_info().currsize == 0


def test_a_disabled_key_is_named_in_one_json_line_without_sdk_tracebacks_on_stderr(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    kms: KMSClient,
    key_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an encrypted job whose KMS key was disabled after the producer encrypted it (moto's KMS still decrypts
    # with a disabled key, so KMS's answer is played back: 400 DisabledException)
    monkeypatch.setenv("BODY_KEY_ARN", key_arn)
    record = encrypted(video_record(pipeline, "uploads/clip.mp4"), kms, key_arn) | {"messageId": "disabled-1"}
    plain = video_record(pipeline, "uploads/open.mp4")
    disabled = {"Code": "DisabledException", "Message": f"{key_arn} is disabled."}
    handler.kms_client().meta.events.register(
        "before-call.kms.Decrypt",
        lambda **_: (
            botocore.awsrequest.AWSResponse("https://kms", 400, {}, None),
            {"Error": disabled, "ResponseMetadata": {"HTTPStatusCode": 400}},
        ),
    )

    # WHEN the handler gets it, with a plain job
    response = handler.lambda_handler(sqs_event([record, plain]), lambda_context)

    # THEN it is reported, and the project's reason names the KMS error code
    assert response == {"batchItemFailures": [{"itemIdentifier": "disabled-1"}]}
    lines = log_lines(handler_logs)
    (error,) = [
        line
        for line in lines
        if line.get("message_id") == "disabled-1" and line["level"] == "ERROR" and "reason" in line
    ]
    assert "DisabledException" in error["reason"]
    # AND the Encryption SDK's own lines are JSON at WARNING or above, one line each, with no traceback
    sdk = [line for line in lines if str(line.get("name", "")).startswith("aws_encryption_sdk")]
    assert sdk, "the SDK's KMS error goes through the handler's JSON log"
    assert all(line["level"] in {"WARNING", "ERROR", "CRITICAL"} for line in sdk)
    assert not [line for line in lines if "exception" in line or "Footer not read" in str(line)]
    # AND nothing (no plain-text traceback, no SDK INFO line with the encryption context) reaches stderr
    assert capsys.readouterr().err == ""
