"""Lambda consumer of the video-jobs queue: one preview (metadata.json + thumbnail.jpg) per uploaded video.

Outcome per SQS record:
- processed, or already processed (a duplicate delivery): consumed.
- permanent failure (not a video, too large, empty, gone): ``failed/<key>.json`` written, metric, consumed.
- malformed body, a client-side encrypted body that cannot be opened (encrypted for another queue, tampered,
  or no BODY_KEY_ARN configured), or a transient error: reported in ``batchItemFailures``, so SQS redelivers it;
  after maxReceiveCount it moves to the dead-letter queue. Nothing is dropped silently.

Client-side encrypted bodies (``clientside``): with BODY_KEY_ARN set, a body carrying the ``sqs-cse:v1:`` marker is
decrypted with that KMS key, its encryption context checked against this record's queue. Plain bodies (S3's own
notifications) are processed as before, without any KMS call, whether BODY_KEY_ARN is set or not.

Settings (environment): OUTPUT_BUCKET, MAX_VIDEO_BYTES, BODY_KEY_ARN (optional), POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE. In the deployed asset this file sits next to the ``video_processing`` and
``clientside`` packages.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientside import ClientSideEncryptionError, open_body, queue_name_from_arn
from video_processing import (
    MalformedMessageError,
    PermanentJobError,
    VideoJob,
    jobs_from_sqs_body,
    process_video,
    record_failure,
)

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_s3.client import S3Client

# Lambda's /tmp is 512 MB by default; the download must fit there.
DEFAULT_MAX_VIDEO_BYTES = 256 * 1024 * 1024

processor = BatchProcessor(event_type=EventType.SQS)
logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VideoPipeline"))


@functools.cache
def s3_client() -> S3Client:
    """Created on first use, not at import, so tests can start moto first (``s3_client.cache_clear()``)."""
    return boto3.client("s3")


@functools.cache
def kms_client() -> KMSClient:
    """Created on the first encrypted body only (plain bodies never need it); ``kms_client.cache_clear()`` in tests."""
    return boto3.client("kms")


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Process every job in one SQS message; raise to have the message retried."""
    logger.append_keys(message_id=record.message_id)
    try:
        try:
            body = open_body(
                record.body,
                queue_name=queue_name_from_arn(record.event_source_arn),
                key_id=os.environ.get("BODY_KEY_ARN") or None,
                kms_client=kms_client,
            )
        except ClientSideEncryptionError as error:
            # The reason names contexts and keys, never the plaintext.
            logger.error(
                "Client-side encrypted body cannot be opened: left on the queue, it moves to the DLQ after "
                "maxReceiveCount",
                extra={"reason": str(error), "error_type": type(error).__name__},
            )
            raise
        try:
            jobs = jobs_from_sqs_body(body)
        except MalformedMessageError:
            logger.exception("Malformed message: left on the queue, it moves to the DLQ after maxReceiveCount")
            raise
        if not jobs:
            logger.info("No ObjectCreated records (for example an s3:TestEvent): nothing to do")
        for job in jobs:
            logger.append_keys(object_key=job.key)
            _process(job, message_id=record.message_id)
    finally:
        logger.remove_keys(["message_id", "object_key"])


def _process(job: VideoJob, *, message_id: str) -> None:
    output_bucket = os.environ["OUTPUT_BUCKET"]
    try:
        result = process_video(
            job,
            s3_client=s3_client(),
            output_bucket=output_bucket,
            profile="preview",
            max_bytes=int(os.environ.get("MAX_VIDEO_BYTES", DEFAULT_MAX_VIDEO_BYTES)),
        )
    except PermanentJobError as error:
        failure_key = record_failure(
            job, error, message_id=message_id, s3_client=s3_client(), output_bucket=output_bucket
        )
        logger.warning(
            "Permanent failure: recorded, message consumed",
            extra={"reason": error.reason, "detail": error.message, "failure_key": failure_key},
        )
        # A separate EMF document, so the reason dimension does not apply to this invocation's other metrics.
        with single_metric(
            name="VideosFailed",
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="reason", value=error.reason)
        return
    if result.duplicate:
        logger.info("Duplicate delivery: outputs already complete", extra={"prefix": job.output_prefix})
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return
    logger.info("Video processed", extra={"outputs": list(result.outputs), "seconds": round(result.seconds, 3)})
    metrics.add_metric(name="VideosProcessed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ProcessingSeconds", unit=MetricUnit.Seconds, value=result.seconds)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """SQS event source entry point (the mapping must have ReportBatchItemFailures on)."""
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
