"""Lambda consumer of the video-jobs queue: one preview (metadata.json + thumbnail.jpg) per uploaded video.

Powertools' batch processing shape: ``lambda_handler`` returns ``process_partial_response``, and ``record_handler``
hands each record to the consumers' core, :func:`sqs_decoupling.video.consumer.handle_message` (shared with the
worker), then publishes what it reports with the Powertools Logger and Metrics. Outcome per SQS record:
- processed, already processed (a duplicate delivery), or ignored (an ``s3:TestEvent``, a console folder
  placeholder): consumed.
- permanent failure (not a video, too large, empty, gone): a failure record written, metric, consumed.
- out of time: the invocation has one time budget for all its records (the remaining time less
  ``TIME_MARGIN_SECONDS``); a record that does not fit in what is left is not started, or is stopped, and reported
  in ``batchItemFailures`` for a later invocation; on the message's last delivery (maxReceiveCount) it gets a
  permanent ``too_slow_for_lambda`` failure record instead. Records on their last delivery go first.
- malformed body, a client-side encrypted body that cannot be opened (encrypted for another queue, tampered, a
  disabled key, or no BODY_KEY_ARN configured), or a transient error: logged as one JSON line, counted in
  ``TransientFailures`` and reported in ``batchItemFailures``, so SQS redelivers it; after maxReceiveCount it moves
  to the dead-letter queue. When every record of a batch fails, Powertools raises ``BatchProcessingError`` instead
  (a function error): Lambda then retries the whole batch, with the same end state. Nothing is dropped silently.

Client-side encrypted bodies (``sqs_decoupling.queue.envelope``): with BODY_KEY_ARN set, a body carrying the
``sqs-cse:v1:`` marker is decrypted with that KMS key, its encryption context checked against this record's queue.
Plain bodies (S3's own notifications) are processed without any KMS call, whether BODY_KEY_ARN is set or not.

Settings: the environment variables of :mod:`sqs_decoupling.contracts.lambda_function` (OUTPUT_BUCKET,
MAX_VIDEO_BYTES, BODY_KEY_ARN, VIDEO_PROFILE, the media limits), parsed once per cold start; a bad one fails every
invocation with an error naming it. Also POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (default: the
telemetry contract's). The deployed asset keeps the repository's layout: ``sqs_decoupling/lambda_consumer/runtime/``
next to the ``sqs_decoupling.video`` and ``sqs_decoupling.queue.envelope`` packages.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from sqs_decoupling.contracts import telemetry
from sqs_decoupling.contracts.lambda_function import TIME_MARGIN_SECONDS, Settings
from sqs_decoupling.contracts.telemetry import MetricPoint
from sqs_decoupling.queue.envelope.envelope import queue_name_from_arn
from sqs_decoupling.queue.envelope.logs import SDK_LOGGER_NAME, configure_sdk_logging
from sqs_decoupling.video.budget import TimeBudget, invocation_budget
from sqs_decoupling.video.consumer import Consumer, MessageResult, handle_message
from sqs_decoupling.video.processing import WORKSPACE_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_s3.client import S3Client

JOB_DIRECTORY_NAME = "video-processor"
processor = BatchProcessor(event_type=EventType.SQS)
SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", telemetry.LAMBDA_SERVICE_NAME)
logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", telemetry.METRICS_NAMESPACE), service=SERVICE_NAME
)
# The Encryption SDK's own lines (WARNING and above, without tracebacks) go out as this logger's JSON.
configure_sdk_logging()
copy_config_to_registered_loggers(source_logger=logger, include={SDK_LOGGER_NAME}, log_level="WARNING")
# The tracer logs every exception a traced function raises, with its traceback, through the root logger: plain
# text on stderr. record_handler already logs each failure as one JSON line, and X-Ray keeps the exception.
logging.getLogger("aws_lambda_powertools.tracing.tracer").setLevel(logging.CRITICAL)


@functools.cache
def settings() -> Settings:
    """The function's settings, parsed on the first invocation of a cold start (``settings.cache_clear()`` in
    tests that change the environment)."""
    return Settings.from_environment(os.environ)


@functools.cache
def s3_client() -> S3Client:
    """Created on first use, not at import, so tests can start moto first (``s3_client.cache_clear()``)."""
    return boto3.client("s3")


@functools.cache
def kms_client() -> KMSClient:
    """Created on the first encrypted body only (plain bodies never need it); ``kms_client.cache_clear()`` in tests."""
    return boto3.client("kms")


def consumer() -> Consumer:
    """The consumers' core, set up from this function's settings and clients."""
    config = settings()
    return Consumer(
        s3_client=s3_client(),
        output_bucket=config.output_bucket,
        profile=config.profile,
        max_bytes=config.max_video_bytes,
        limits=config.limits,
        workdir=job_directory(),
        body_key_arn=config.body_key_arn,
        kms_client=kms_client,
    )


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """One SQS message through the consumers' core; raising leaves it on the queue (``batchItemFailures``)."""
    queue_name = queue_name_from_arn(record.event_source_arn)
    budget = record_budget(record, lambda_context, settings())
    result = handle_message(consumer(), record.body, message_id=record.message_id, queue_name=queue_name, budget=budget)
    publish(result)
    if result.retry is not None:
        raise result.retry


def record_budget(record: SQSRecord, context: LambdaContext, config: Settings) -> TimeBudget:
    """What is left of the invocation, less ``TIME_MARGIN_SECONDS``; final once the message's receive count has
    reached the queue's maxReceiveCount."""
    remaining = context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN_SECONDS
    return invocation_budget(remaining, last_delivery=_receive_count(record) >= config.max_receive_count)


def _receive_count(record: SQSRecord | dict[str, Any]) -> int:
    return int(record["attributes"].get("ApproximateReceiveCount", "1"))


def publish(result: MessageResult) -> None:
    """The result's log lines through the Powertools Logger, its metrics through Powertools Metrics."""
    log_methods = {logging.INFO: logger.info, logging.WARNING: logger.warning, logging.ERROR: logger.error}
    for line in result.logs:
        log_methods[line.level](line.message, extra=line.fields)
    for point in result.metrics:
        _emit(point)


def _emit(point: MetricPoint) -> None:
    if not point.dimensions:
        metrics.add_metric(name=point.name, unit=MetricUnit(point.unit), value=point.value)
        return
    # A separate EMF document, so the extra dimension does not apply to this invocation's other metrics.
    with single_metric(
        name=point.name,
        unit=MetricUnit(point.unit),
        value=point.value,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name=telemetry.SERVICE_DIMENSION, value=SERVICE_NAME)
        for name, value in point.dimensions.items():
            metric.add_dimension(name=name, value=value)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """SQS event source entry point (the mapping must have ReportBatchItemFailures on)."""
    settings()  # a bad setting fails the invocation here, naming the variable, before any record is touched
    remove_stale_workspaces()
    # Records on their last delivery first, while the invocation has the most time: running out is final for them.
    records = sorted(event.get("Records", []), key=_receive_count, reverse=True)
    try:
        return process_partial_response(
            event={**event, "Records": records}, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        # Failures go out as their own EMF documents (single_metric, for their dimension), so a batch in which
        # nothing succeeded leaves the shared set empty; flushing it then only prints Powertools' "No application
        # metrics to publish" warning to stderr. (This is what @metrics.log_metrics would do, minus that warning.)
        if metrics.metric_set:
            metrics.flush_metrics()


def job_directory() -> Path:
    """Where each record's temporary directory goes: ``/tmp/video-processor/`` (the function's own folder, so the
    clean-up below never touches anything else in ``/tmp``)."""
    path = Path(tempfile.gettempdir()) / JOB_DIRECTORY_NAME
    path.mkdir(exist_ok=True)
    return path


def remove_stale_workspaces() -> int:
    """Remove the job directories an invocation that Lambda stopped at its timeout left in :func:`job_directory`;
    returns how many. An execution environment runs one invocation at a time, so at the start of one, every job
    directory there is stale."""
    stale = [path for path in job_directory().glob(f"{WORKSPACE_PREFIX}*") if path.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        logger.warning("removed job directories a stopped invocation left behind", extra={"directories": len(stale)})
    return len(stale)
