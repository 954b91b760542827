"""The video processor Lambda, run in-process against moto with real S3 -> SQS notifications and real ffmpeg."""

from __future__ import annotations

import hashlib
import io
import json
import warnings

import botocore.exceptions
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sqs_decoupling.lambda_consumer.runtime import handler
from tests.support.videos import cached_video_bytes
from tests.unit.lambdas.conftest import (
    OUTPUT_BUCKET,
    UPLOADS_BUCKET,
    LambdaContext,
    Pipeline,
    emitted_metrics,
    sqs_event,
    sqs_record,
)

CLIP = cached_video_bytes()
PREVIEW_FILES = ("metadata.json", "thumbnail.jpg", "manifest.json")


def preview_outputs(pipeline: Pipeline, key: str) -> set[str]:
    """The complete preview set for ``key`` and the key's latest-outcome pointer. moto's events carry no
    versionId, so the prefix uses the ETag."""
    etag = pipeline.s3.head_object(Bucket=UPLOADS_BUCKET, Key=key)["ETag"].strip('"')
    return {f"processed/{key}/{etag}/preview/{name}" for name in PREVIEW_FILES} | {
        f"processed/{key}/preview.latest.json"
    }


def failure_record(key: str, body: bytes) -> str:
    """Where the preview failure record for the upload of ``body`` at ``key`` goes (a single-part ETag is its MD5)."""
    return f"processed/{key}/{hashlib.md5(body).hexdigest()}/preview/failure.json"  # noqa: S324 (S3's ETag)


def test_batch_of_ten_videos_gives_ten_output_sets(
    pipeline: Pipeline, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN ten videos uploaded, and their S3 notifications on the queue (after S3's s3:TestEvent)
    keys = [f"uploads/clip-{index}.mp4" for index in range(10)]
    for key in keys:
        pipeline.upload(key, CLIP)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    assert len(records) == 10

    # WHEN the handler gets them as one batch
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN every record is consumed and each video has exactly one complete preview set
    assert response == {"batchItemFailures": []}
    assert pipeline.output_keys() == set().union(*(preview_outputs(pipeline, key) for key in keys))
    metrics = emitted_metrics(capsys.readouterr().out)
    assert [value for value, _ in metrics["VideosProcessed"]] == [1.0] * 10
    assert len(metrics["ProcessingSeconds"]) == 10
    (metadata_key,) = [key for key in preview_outputs(pipeline, keys[0]) if key.endswith("metadata.json")]
    video = pipeline.output_json(metadata_key)["video"]
    assert (video["width"], video["height"], video["codec"], video["duration"]) == (160, 120, "h264", 1.0)


def test_mixed_batch_reports_only_the_malformed_message_and_records_permanent_failures(
    pipeline: Pipeline, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a video whose key has spaces, a plus and non-ASCII (moto encodes it as
    # uploads%2FMy+Clip%2B1+%C3%A9.mp4), a text file, a zero-byte object, an object deleted before
    # processing, S3's s3:TestEvent, and a body that is not an S3 event at all
    video = "uploads/My Clip+1 é.mp4"
    pipeline.upload(video, CLIP)
    pipeline.upload("uploads/notes.mp4", b"these are meeting notes, not a video\n")
    pipeline.upload("uploads/empty.mp4", b"")
    pipeline.upload("uploads/gone.mp4", CLIP)
    pipeline.s3.delete_object(Bucket=UPLOADS_BUCKET, Key="uploads/gone.mp4")
    records = pipeline.deliveries()
    assert json.loads(records[0]["body"])["Event"] == "s3:TestEvent"
    assert "uploads%2FMy+Clip%2B1+%C3%A9.mp4" in records[1]["body"]
    malformed = sqs_record('{"hello": "world"}', message_id="malformed-1")

    # WHEN the handler gets them all in one batch
    response = handler.lambda_handler(sqs_event([*records, malformed]), lambda_context)

    # THEN only the malformed message goes back to the queue (and on to the DLQ)
    assert response == {"batchItemFailures": [{"itemIdentifier": "malformed-1"}]}
    # AND the video has its outputs, and each permanent failure has a record saying why
    failures = {
        "uploads/notes.mp4": "not_a_video",
        "uploads/empty.mp4": "empty_object",
        "uploads/gone.mp4": "object_gone",
    }
    bodies = {"uploads/notes.mp4": b"these are meeting notes, not a video\n", "uploads/empty.mp4": b""}
    record_keys = {key: failure_record(key, bodies.get(key, CLIP)) for key in failures}
    pointers = {f"processed/{key}/preview.latest.json" for key in failures}
    assert pipeline.output_keys() == preview_outputs(pipeline, video) | set(record_keys.values()) | pointers
    message_ids = {json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]: r["messageId"] for r in records[1:]}
    for key, reason in failures.items():
        record = pipeline.output_json(record_keys[key])
        assert record["reason"] == reason
        assert record["source"]["bucket"] == UPLOADS_BUCKET
        assert record["source"]["key"] == key
        assert record["message_id"] == message_ids[key.replace("/", "%2F")]
    # AND the failures were counted by reason
    failed = emitted_metrics(capsys.readouterr().out)["VideosFailed"]
    assert sorted(dimensions["reason"] for _, dimensions in failed) == sorted(failures.values())


def test_malformed_message_is_logged_with_its_message_id(
    pipeline: Pipeline, lambda_context: LambdaContext, handler_logs: io.StringIO
) -> None:
    # GIVEN a body that is not JSON, in a batch with a valid video
    pipeline.upload("uploads/ok.mp4", CLIP)
    valid = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]

    # WHEN the handler processes the batch
    response = handler.lambda_handler(sqs_event([sqs_record("not json", message_id="bad-1"), *valid]), lambda_context)

    # THEN the bad message is reported for retry and an error log names it and says where it goes
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    logs = [json.loads(line) for line in handler_logs.getvalue().splitlines()]
    errors = [log for log in logs if log["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message_id"] == "bad-1"
    assert "DLQ" in errors[0]["message"]
    assert "body is not JSON" in errors[0]["reason"]
    assert "exception" not in errors[0]  # one line, no traceback


def test_a_message_delivered_twice_is_processed_once(
    pipeline: Pipeline, lambda_context: LambdaContext, ffmpeg_calls: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN one upload whose notification SQS delivers twice (at-least-once)
    pipeline.upload("uploads/twice.mp4", CLIP)
    (record,) = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    first = handler.lambda_handler(sqs_event([record]), lambda_context)
    outputs_after_first = pipeline.output_keys()
    manifest_key = next(key for key in outputs_after_first if key.endswith("manifest.json"))
    manifest_etag = pipeline.s3.head_object(Bucket=OUTPUT_BUCKET, Key=manifest_key)["ETag"]
    ffmpeg_runs_after_first = len(ffmpeg_calls)
    capsys.readouterr()

    # WHEN the same message arrives again
    second = handler.lambda_handler(sqs_event([record]), lambda_context)

    # THEN both deliveries are consumed, ffmpeg does not run again, nothing is rewritten
    assert first == second == {"batchItemFailures": []}
    assert ffmpeg_runs_after_first == 3  # probe (packet scan + first frame) + thumbnail
    assert len(ffmpeg_calls) == ffmpeg_runs_after_first
    assert pipeline.output_keys() == outputs_after_first == preview_outputs(pipeline, "uploads/twice.mp4")
    assert pipeline.s3.head_object(Bucket=OUTPUT_BUCKET, Key=manifest_key)["ETag"] == manifest_etag
    # AND the second delivery is counted as a duplicate, not as a processed video
    metrics = emitted_metrics(capsys.readouterr().out)
    assert [value for value, _ in metrics["DuplicatesSkipped"]] == [1.0]
    assert "VideosProcessed" not in metrics


@pytest.mark.parametrize("order", ["as_delivered", "reversed"])
def test_reordered_deliveries_give_the_same_result(
    pipeline: Pipeline, lambda_context: LambdaContext, order: str
) -> None:
    # GIVEN two videos, a not-a-video, and one of the video notifications duplicated
    pipeline.upload("uploads/a.mp4", CLIP)
    pipeline.upload("uploads/b.mp4", cached_video_bytes(size="320x240"))
    pipeline.upload("uploads/c.mp4", b"not a video")
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    records.append(sqs_record(records[0]["body"]))
    if order == "reversed":
        records.reverse()

    # WHEN they arrive in this order, split over two invocations
    responses = [
        handler.lambda_handler(sqs_event(records[:2]), lambda_context),
        handler.lambda_handler(sqs_event(records[2:]), lambda_context),
    ]

    # THEN the outcome does not depend on the order
    assert responses == [{"batchItemFailures": []}] * 2
    assert pipeline.output_keys() == (
        preview_outputs(pipeline, "uploads/a.mp4")
        | preview_outputs(pipeline, "uploads/b.mp4")
        | {failure_record("uploads/c.mp4", b"not a video"), "processed/uploads/c.mp4/preview.latest.json"}
    )


def test_a_transient_error_reports_that_record_for_retry_and_the_retry_completes_it(
    pipeline: Pipeline, lambda_context: LambdaContext
) -> None:
    # GIVEN two videos, and S3 refusing uploads of one video's thumbnail (a transient fault)
    pipeline.upload("uploads/good.mp4", CLIP)
    pipeline.upload("uploads/unlucky.mp4", cached_video_bytes(size="320x240"))
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    unlucky = next(r for r in records if "unlucky" in r["body"])

    def fail_unlucky_thumbnail(params: dict[str, object], **_: object) -> None:
        key = str(params.get("Key", ""))
        if "unlucky" in key and key.endswith("thumbnail.jpg"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    client = handler.s3_client()
    client.meta.events.register("provide-client-params.s3.PutObject", fail_unlucky_thumbnail)

    # WHEN the batch is processed
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN only that record is reported for retry, and its partial outputs have no manifest
    assert response == {"batchItemFailures": [{"itemIdentifier": unlucky["messageId"]}]}
    good = preview_outputs(pipeline, "uploads/good.mp4")
    assert {key for key in pipeline.output_keys() if "unlucky" in key and key.endswith("manifest.json")} == set()

    # WHEN the fault clears and SQS redelivers the message
    client.meta.events.unregister("provide-client-params.s3.PutObject", fail_unlucky_thumbnail)
    retry = handler.lambda_handler(sqs_event([unlucky]), lambda_context)

    # THEN the redelivery completes the job
    assert retry == {"batchItemFailures": []}
    assert pipeline.output_keys() == good | preview_outputs(pipeline, "uploads/unlucky.mp4")


def test_missing_output_bucket_fails_the_whole_batch_for_retry(
    pipeline: Pipeline, lambda_context: LambdaContext
) -> None:
    # GIVEN a video, and an output bucket that does not exist (misconfiguration, or deleted)
    pipeline.upload("uploads/clip.mp4", CLIP)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    pipeline.s3.delete_bucket(Bucket=OUTPUT_BUCKET)

    # WHEN the handler runs, THEN every record failed: Powertools raises so Lambda retries the whole batch
    with pytest.raises(BatchProcessingError, match="All records failed"):
        handler.lambda_handler(sqs_event(records), lambda_context)
    # AND no failure record pretends the video is bad
    with pytest.raises(pipeline.s3.exceptions.NoSuchBucket):
        pipeline.s3.list_objects_v2(Bucket=OUTPUT_BUCKET)


def test_a_video_over_the_size_limit_is_rejected_before_download(
    pipeline: Pipeline, lambda_context: LambdaContext, ffmpeg_calls: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit smaller than the uploaded video
    monkeypatch.setenv("MAX_VIDEO_BYTES", str(len(CLIP) - 1))
    pipeline.upload("uploads/big.mp4", CLIP)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]

    # WHEN the handler processes it
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN the message is consumed, the failure is recorded as too_large, and ffmpeg never ran
    assert response == {"batchItemFailures": []}
    record_key = failure_record("uploads/big.mp4", CLIP)
    assert pipeline.output_keys() == {record_key, "processed/uploads/big.mp4/preview.latest.json"}
    record = pipeline.output_json(record_key)
    assert record["reason"] == "too_large"
    assert f"limit of {len(CLIP) - 1} bytes" in record["message"]
    assert ffmpeg_calls == []


def test_a_test_event_and_a_folder_placeholder_are_ignored_counted_and_leave_no_failure_record(
    pipeline: Pipeline, lambda_context: LambdaContext, handler_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN S3's s3:TestEvent and the notification for a console "Create folder" placeholder (0 bytes, key ends "/")
    pipeline.upload("uploads/new folder/", b"")
    records = pipeline.deliveries()
    assert len(records) == 2

    # WHEN the handler gets them
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN both are consumed, nothing is written (no failure record), and each is one log line and one count
    assert response == {"batchItemFailures": []}
    assert pipeline.output_keys() == set()
    logs = [json.loads(line) for line in handler_logs.getvalue().splitlines()]
    ignored = [log for log in logs if log.get("outcome") == "ignored"]
    assert sorted(log["reason"] for log in ignored) == ["folder_placeholder", "s3_test_event"]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert [value for value, _ in metrics["InputsIgnored"]] == [1.0, 1.0]
    assert "VideosFailed" not in metrics and "VideosProcessed" not in metrics


def test_a_transient_failure_is_one_json_log_line_and_a_metric_by_error_type(
    pipeline: Pipeline, lambda_context: LambdaContext, handler_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two videos, and S3 unreachable for one video's thumbnail upload
    pipeline.upload("uploads/good.mp4", CLIP)
    pipeline.upload("uploads/unlucky.mp4", CLIP)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    unlucky = next(r for r in records if "unlucky" in r["body"])

    def fail_unlucky_thumbnail(params: dict[str, object], **_: object) -> None:
        key = str(params.get("Key", ""))
        if "unlucky" in key and key.endswith("thumbnail.jpg"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    handler.s3_client().meta.events.register("provide-client-params.s3.PutObject", fail_unlucky_thumbnail)

    # WHEN the mixed batch is processed
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN the failed record is reported, and one ERROR line names the message, the object and the error
    assert response == {"batchItemFailures": [{"itemIdentifier": unlucky["messageId"]}]}
    errors = [json.loads(line) for line in handler_logs.getvalue().splitlines() if '"ERROR"' in line]
    assert len(errors) == 1
    assert errors[0]["message_id"] == unlucky["messageId"]
    assert (errors[0]["bucket"], errors[0]["key"]) == (UPLOADS_BUCKET, "uploads/unlucky.mp4")
    assert errors[0]["error_type"] == "EndpointConnectionError"
    assert "Could not connect to the endpoint URL" in errors[0]["error"]
    # AND a TransientFailures metric carries the error type
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["TransientFailures"] == [
        (1.0, {"service": "video-processor", "error_type": "EndpointConnectionError"})
    ]


def test_a_missing_output_bucket_is_named_as_the_output_bucket_and_no_metrics_warning_reaches_stderr(
    pipeline: Pipeline, lambda_context: LambdaContext, handler_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a video, and an output bucket that does not exist
    pipeline.upload("uploads/clip.mp4", CLIP)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    pipeline.s3.delete_bucket(Bucket=OUTPUT_BUCKET)

    # WHEN the whole batch fails (Powertools raises BatchProcessingError: a function error, not batchItemFailures)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BatchProcessingError, match="All records failed"):
            handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN the error names the bucket and says it is the output bucket
    (error,) = [json.loads(line) for line in handler_logs.getvalue().splitlines() if '"ERROR"' in line]
    assert error["error_type"] == "NoSuchBucket"
    assert f"the output bucket '{OUTPUT_BUCKET}' does not exist" in error["error"]
    # AND Powertools' "No application metrics to publish" warning is not raised, so nothing reaches stderr
    assert [str(w.message) for w in caught if "No application metrics" in str(w.message)] == []
    assert "No application metrics" not in capsys.readouterr().err
