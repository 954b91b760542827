"""A deleted upload is permanent (issue 22, item 2): 403 (the deployed roles have no s3:ListBucket on the uploads
bucket, so S3 answers 403 for a missing key) and 404 both end as ``object_gone``, on both consumer paths, and one
input's failure never holds up the others of the same message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sqs_decoupling.lambda_consumer.runtime import handler
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from sqs_decoupling.worker_fleet.worker.video_jobs import make_video_handler
from tests.support.videos import cached_video_bytes
from tests.unit.lambdas.conftest import UPLOADS_BUCKET, LambdaContext, Pipeline, sqs_event, sqs_record

CLIP = cached_video_bytes()


def forbid_reading(client: Any, key: str) -> None:
    """S3 answers as it does a role without s3:ListBucket whose object is gone: HEAD 403 (code "403")."""

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == key:
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    client.meta.events.register("provide-client-params.s3.HeadObject", refuse)


def one_message(pipeline: Pipeline, *keys: str) -> str:
    """One S3 event message naming several uploads (S3 may batch records into one message)."""
    bodies = [json.loads(r["body"]) for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    by_key = {body["Records"][0]["s3"]["object"]["key"].replace("%2F", "/"): body["Records"][0] for body in bodies}
    return json.dumps({"Records": [by_key[key] for key in keys]})


@pytest.mark.parametrize("answer", ["403", "404"])
def test_a_missing_upload_is_object_gone_and_the_next_input_of_the_message_is_still_processed(
    pipeline: Pipeline, lambda_context: LambdaContext, answer: str
) -> None:
    # GIVEN one message naming an upload that is gone (S3 answers 403 or 404) and, after it, a good upload
    pipeline.upload("uploads/gone.mp4", CLIP)
    pipeline.upload("uploads/good.mp4", CLIP)
    body = one_message(pipeline, "uploads/gone.mp4", "uploads/good.mp4")
    if answer == "403":
        forbid_reading(handler.s3_client(), "uploads/gone.mp4")
    else:
        pipeline.s3.delete_object(Bucket=UPLOADS_BUCKET, Key="uploads/gone.mp4")

    # WHEN the handler gets the message
    response = handler.lambda_handler(sqs_event([sqs_record(body, message_id="m-1")]), lambda_context)

    # THEN it is consumed (no retry, no DLQ): the gone upload has an object_gone record, the good one its outputs
    assert response == {"batchItemFailures": []}
    keys = pipeline.output_keys()
    (record_key,) = [key for key in keys if "gone.mp4/" in key and key.endswith("failure.json")]
    record = pipeline.output_json(record_key)
    assert record["reason"] == "object_gone"
    if answer == "403":
        assert "s3:GetObject" in record["message"]  # says what to check if the object is in fact there
    assert any("good.mp4/" in key and key.endswith("manifest.json") for key in keys)


def test_a_transient_error_on_one_input_does_not_stop_the_others_and_the_retry_completes_it(
    pipeline: Pipeline, lambda_context: LambdaContext
) -> None:
    # GIVEN one message of two uploads, and S3 unreachable for the first one's HEAD
    pipeline.upload("uploads/unlucky.mp4", CLIP)
    pipeline.upload("uploads/good.mp4", CLIP)
    body = one_message(pipeline, "uploads/unlucky.mp4", "uploads/good.mp4")

    def unreachable(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == "uploads/unlucky.mp4":
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    client = handler.s3_client()
    client.meta.events.register("provide-client-params.s3.HeadObject", unreachable)

    # WHEN the handler gets it, beside another message (so the batch fails only in part)
    other = sqs_record('{"Event": "s3:TestEvent"}', message_id="m-2")
    response = handler.lambda_handler(sqs_event([sqs_record(body, message_id="m-1"), other]), lambda_context)

    # THEN the message is reported for retry, but the second upload was processed all the same
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert any("good.mp4/" in key and key.endswith("manifest.json") for key in pipeline.output_keys())
    # AND once S3 answers again, the redelivery completes the first (the second is a duplicate, not redone)
    client.meta.events.unregister("provide-client-params.s3.HeadObject", unreachable)
    retry = handler.lambda_handler(sqs_event([sqs_record(body, message_id="m-1")]), LambdaContext())
    assert retry == {"batchItemFailures": []}
    assert any("unlucky.mp4/" in key and key.endswith("manifest.json") for key in pipeline.output_keys())


def test_the_worker_records_a_403_as_object_gone_and_processes_the_rest_of_the_message(
    pipeline: Pipeline, tmp_path: Any
) -> None:
    # GIVEN the worker's job handler, and one message naming an upload S3 refuses with 403 and a good one
    pipeline.upload("uploads/gone.mp4", CLIP)
    pipeline.upload("uploads/good.mp4", CLIP)
    body = one_message(pipeline, "uploads/gone.mp4", "uploads/good.mp4")
    forbid_reading(pipeline.s3, "uploads/gone.mp4")
    job = make_video_handler(
        s3_client=pipeline.s3, output_bucket="video-processed", max_bytes=10**8, workdir=tmp_path, profile="preview"
    )

    # WHEN it runs the message
    outcome = job(Message(message_id="m-1", receipt_handle="r-1", body=body, receive_count=1))

    # THEN the message is consumed as a permanent failure, and the good upload was processed
    assert outcome is JobOutcome.PERMANENT_FAILURE
    keys = pipeline.output_keys()
    (record_key,) = [key for key in keys if "gone.mp4/" in key and key.endswith("failure.json")]
    assert pipeline.output_json(record_key)["reason"] == "object_gone"
    assert any("good.mp4/" in key and key.endswith("manifest.json") for key in keys)
