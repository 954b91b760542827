"""The consumers' one pipeline: an SQS message body in, one outcome per input out.

Both consumers (the Lambda's Powertools record handler and the worker's job handler) reach it through
:func:`sqs_decoupling.video.consumer.handle_message`, which opens the body, calls :func:`process_message`, and turns
each :class:`Outcome` into a log line (:attr:`Outcome.level`, :attr:`Outcome.message`) and metrics
(:meth:`Outcome.metrics`). What an input becomes is decided here, once:

- a video: processed (outputs written) or a duplicate (its outputs were already complete);
- an ``s3:TestEvent``, a console folder placeholder, another event type: ignored (no failure record);
- an input that can never succeed (not a video, too large, empty, gone...): a permanent failure, recorded in the
  output bucket with its reason;
- an input that does not fit in the delivery's :class:`~sqs_decoupling.video.budget.TimeBudget`: retried (``RETRY``)
  while a later delivery may have more time, else a permanent failure with the budget's reason
  (``too_slow_for_lambda``, ``too_long``);
- anything else: ``RETRY``, carrying a :class:`TransientJobError` (naming the object and the error);
- a malformed body: ``MalformedMessageError`` propagates, so the message is retried and dead-lettered.

Every input of a message is tried, whatever became of the ones before it: a deleted object or a transient error
never holds up the others. The message is deleted unless an outcome is ``RETRY``; then the consumer raises that
outcome's ``error``, and the redelivery finds the inputs done this time complete (duplicates, one GET each).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sqs_decoupling.contracts import telemetry
from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MediaLimits
from sqs_decoupling.contracts.telemetry import MetricPoint
from sqs_decoupling.video.budget import TimeBudget
from sqs_decoupling.video.errors import OutOfTimeError, PermanentJobError
from sqs_decoupling.video.jobs import IgnoredInput, VideoJob, read_sqs_body
from sqs_decoupling.video.processing import JobResult, Profile, process_video, record_failure

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class OutcomeKind(enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"
    """A permanent failure: recorded with its reason, never retried."""
    RETRY = "retry"
    """Not finished this time (a transient error, or out of time): the message must be retried; see ``error``."""


@dataclass(frozen=True)
class Outcome:
    """What became of one input of a message. ``reason``: the failure or ignore reason code."""

    kind: OutcomeKind
    bucket: str | None
    key: str | None
    reason: str | None = None
    detail: str | None = None
    failure_key: str | None = None
    result: JobResult | None = None
    error: TransientJobError | None = None
    """For ``RETRY``: what to raise so the message stays on the queue."""

    @property
    def level(self) -> int:
        """The log line's level: ERROR for a transient error, WARNING for a failure or running out of time."""
        if self.kind is OutcomeKind.RETRY:
            return logging.WARNING if self.error is not None and self.error.deferred else logging.ERROR
        return logging.WARNING if self.kind is OutcomeKind.FAILED else logging.INFO

    @property
    def message(self) -> str:
        """The log line's message."""
        if self.error is not None and self.error.deferred:
            return _DEFERRED_MESSAGE
        return _MESSAGES[self.kind]

    def log_fields(self) -> dict[str, Any]:
        """The log line's fields (no local paths, no message bodies)."""
        fields: dict[str, Any] = {"outcome": self.kind.value, "bucket": self.bucket, "key": self.key}
        if self.reason is not None:
            fields["reason"] = self.reason
        if self.detail is not None:
            fields["detail"] = self.detail
        if self.failure_key is not None:
            fields["failure_key"] = self.failure_key
        if self.error is not None:
            fields |= self.error.log_fields()
        if self.result is not None:
            fields["duplicate"] = self.kind is OutcomeKind.DUPLICATE
            fields["outputs"] = list(self.result.outputs)
            fields["seconds"] = round(self.result.seconds, 3)
        return fields

    def metrics(self) -> list[MetricPoint]:
        """The metrics this outcome adds (names from :mod:`sqs_decoupling.contracts.telemetry`)."""
        if self.kind is OutcomeKind.PROCESSED:
            seconds = self.result.seconds if self.result is not None else 0.0
            return [
                MetricPoint(telemetry.VIDEOS_PROCESSED, "Count", 1),
                MetricPoint(telemetry.PROCESSING_SECONDS, "Seconds", seconds),
            ]
        if self.kind is OutcomeKind.DUPLICATE:
            return [MetricPoint(telemetry.DUPLICATES_SKIPPED, "Count", 1)]
        if self.kind is OutcomeKind.IGNORED:
            return [MetricPoint(telemetry.INPUTS_IGNORED, "Count", 1)]
        if self.error is not None:
            return [self.error.metric()]
        return [
            MetricPoint(
                telemetry.VIDEOS_FAILED, "Count", 1, {telemetry.FAILURE_REASON_DIMENSION: self.reason or "permanent"}
            )
        ]


TRANSIENT_MESSAGE = "Transient failure: left on the queue for a retry, then the DLQ after maxReceiveCount"
_MESSAGES = {
    OutcomeKind.PROCESSED: "video processed",
    OutcomeKind.DUPLICATE: "duplicate delivery: outputs already complete",
    OutcomeKind.IGNORED: "input ignored: nothing to process",
    OutcomeKind.FAILED: "video cannot be processed: failure recorded, message consumed",
    OutcomeKind.RETRY: TRANSIENT_MESSAGE,
}
_DEFERRED_MESSAGE = "video not finished in the time left: left on the queue for a later delivery with more time"


class TransientJobError(Exception):
    """A job failed for a reason a retry may fix; the message stays on the queue (then the DLQ).

    ``error_type`` is the AWS error code (``SlowDown``, ``NoSuchBucket``) or the exception's class name.
    """

    def __init__(self, job: VideoJob, error: Exception, *, output_bucket: str) -> None:
        self.job = job
        self.deferred = isinstance(error, OutOfTimeError)
        """Out of time, not failed: a later delivery (a fresh Lambda invocation) has more time."""
        self.error_type = error_type(error)
        if self.error_type == "NoSuchBucket":
            # A missing source bucket is a permanent "object gone"; only the output bucket gets here.
            detail = f"the output bucket {output_bucket!r} does not exist (NoSuchBucket): create it or fix the setting"
        else:
            detail = str(error)
        self.detail = detail
        super().__init__(f"s3://{job.bucket}/{job.key}: {detail}")

    def log_fields(self) -> dict[str, Any]:
        return {
            "bucket": self.job.bucket,
            "key": self.job.key,
            "error_type": self.error_type,
            "error": self.detail,
        }

    def metric(self) -> MetricPoint:
        return MetricPoint(telemetry.TRANSIENT_FAILURES, "Count", 1, {telemetry.ERROR_TYPE_DIMENSION: self.error_type})


def process_message(
    body: str,
    *,
    message_id: str,
    s3_client: S3Client,
    output_bucket: str,
    profile: Profile,
    max_bytes: int,
    workdir: Path | None = None,
    limits: MediaLimits = DEFAULT_LIMITS,
    budget: TimeBudget | None = None,
) -> list[Outcome]:
    """Run every input of one (opened) SQS body within ``budget`` (default: no time limit but the media's); see
    the module docstring for what each input becomes. Raises ``MalformedMessageError`` for a body it cannot read.
    """
    request = read_sqs_body(body)
    outcomes = [_ignored(ignored) for ignored in request.ignored]
    for job in request.jobs:
        outcomes.append(_run(job, message_id, s3_client, output_bucket, profile, max_bytes, workdir, limits, budget))
    return outcomes


def _run(
    job: VideoJob,
    message_id: str,
    s3_client: S3Client,
    output_bucket: str,
    profile: Profile,
    max_bytes: int,
    workdir: Path | None,
    limits: MediaLimits,
    budget: TimeBudget | None,
) -> Outcome:
    """One input's outcome; never raises for the input's own failure, so the next input still runs."""
    try:
        try:
            result = process_video(
                job,
                s3_client=s3_client,
                output_bucket=output_bucket,
                profile=profile,
                max_bytes=max_bytes,
                workdir=workdir,
                limits=limits,
                budget=budget,
            )
        except PermanentJobError as error:
            if isinstance(error, OutOfTimeError) and not (budget is not None and budget.final):
                raise
            where = record_failure(
                job, error, message_id=message_id, s3_client=s3_client, output_bucket=output_bucket, profile=profile
            )
            if where is None:  # the version was processed meanwhile (its manifest exists): no failure beside it
                return Outcome(OutcomeKind.DUPLICATE, job.bucket, job.key)
            return _failed(job, error, where)
    except Exception as error:
        return Outcome(
            OutcomeKind.RETRY, job.bucket, job.key, error=TransientJobError(job, error, output_bucket=output_bucket)
        )
    kind = OutcomeKind.DUPLICATE if result.duplicate else OutcomeKind.PROCESSED
    return Outcome(kind, job.bucket, job.key, result=result)


def retry_error(outcomes: list[Outcome]) -> TransientJobError | None:
    """The error a consumer raises to keep the message on the queue: the first ``RETRY`` outcome's, if any."""
    return next((outcome.error for outcome in outcomes if outcome.error is not None), None)


def _ignored(ignored: IgnoredInput) -> Outcome:
    return Outcome(OutcomeKind.IGNORED, ignored.bucket, ignored.key, reason=ignored.reason)


def _failed(job: VideoJob, error: PermanentJobError, failure_key: str) -> Outcome:
    return Outcome(
        OutcomeKind.FAILED, job.bucket, job.key, reason=error.reason, detail=error.message, failure_key=failure_key
    )


def error_type(error: Exception) -> str:
    """The ``error_type`` a log line and the TransientFailures metric name: the AWS error code, else the class."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "") or type(error).__name__)
    return type(error).__name__
