"""Outputs over boto3's multipart threshold (8 MB): the calls an upload in parts makes, and the abort after a part
fails, recorded for the permission rehearsal. The test clips' outputs are far smaller, so the threshold is lowered
to one byte here; the production code passes no transfer configuration, so boto3's default applies to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3.s3.transfer
import pytest
import s3transfer.upload
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sqs_decoupling.lambda_consumer.runtime import handler
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tests.support.videos import cached_video_bytes
from tests.unit.lambdas.conftest import OUTPUT_BUCKET, UPLOADS_BUCKET, LambdaContext, Pipeline, sqs_event

if TYPE_CHECKING:
    from collections.abc import Callable

MULTIPART_CALLS = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


@pytest.fixture
def every_output_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    default: Callable[..., boto3.s3.transfer.TransferConfig] = boto3.s3.transfer.TransferConfig
    monkeypatch.setattr(boto3.s3.transfer, "TransferConfig", lambda: default(multipart_threshold=1))


def record_one_video(pipeline: Pipeline, recorder: CallRecorder, context: LambdaContext) -> dict[str, Any]:
    pipeline.upload("uploads/clip.mp4", cached_video_bytes())
    (record,) = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    recorder.symbols |= {UPLOADS_BUCKET: "<uploads_bucket>", OUTPUT_BUCKET: "<processed_bucket>"}
    with recorder.as_principal("lambda"):
        return dict(handler.lambda_handler(sqs_event([record]), context))


def test_outputs_uploaded_in_parts_make_only_catalogued_calls(
    pipeline: Pipeline, lambda_context: LambdaContext, call_recorder: CallRecorder, every_output_in_parts: None
) -> None:
    # GIVEN every output above boto3's multipart threshold
    # WHEN the handler processes a video
    response = record_one_video(pipeline, call_recorder, lambda_context)

    # THEN the outputs are complete, and the multipart calls are in the permission catalogue
    assert response == {"batchItemFailures": []}
    assert any(key.endswith("manifest.json") for key in pipeline.output_keys())
    assert_catalogued(call_recorder.calls(), needs=[("lambda", "s3", call) for call in MULTIPART_CALLS])


def test_a_failed_part_aborts_its_upload_with_a_catalogued_call(
    pipeline: Pipeline,
    lambda_context: LambdaContext,
    call_recorder: CallRecorder,
    every_output_in_parts: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN uploads in parts whose parts fail (a connection reset mid-upload)
    def reset(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(s3transfer.upload.UploadPartTask, "_main", reset)

    # WHEN the handler processes a video: its only record fails, so Powertools fails the batch (all retried)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        record_one_video(pipeline, call_recorder, lambda_context)

    # THEN boto3 aborted the upload (so no parts are left billed; the
    # bucket's lifecycle rule removes any an abort could not), and the abort is in the permission catalogue
    assert_catalogued(call_recorder.calls(), needs=[("lambda", "s3", "AbortMultipartUpload")])
