"""The worker's job: a thin adapter from one SQS message to :func:`sqs_decoupling.video.pipeline.process_message`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MediaLimits
from sqs_decoupling.contracts.sqs import JOB_CAP_MARGIN_SECONDS
from sqs_decoupling.contracts.worker import DEFAULT_PROFILE
from sqs_decoupling.queue.envelope.envelope import ClientSideEncryptionError, open_body, queue_name_from_url
from sqs_decoupling.queue.envelope.logs import unopenable_body_fields
from sqs_decoupling.video.budget import TOO_LONG, TimeBudget
from sqs_decoupling.video.pipeline import Outcome, OutcomeKind, process_message, retry_error
from sqs_decoupling.worker_fleet.worker.job import JobHandler, JobOutcome, Message
from sqs_decoupling.worker_fleet.worker.metrics import MetricsEmitter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_MESSAGE_OUTCOMES = {
    OutcomeKind.PROCESSED: JobOutcome.DONE,
    OutcomeKind.DUPLICATE: JobOutcome.DUPLICATE,
    OutcomeKind.IGNORED: JobOutcome.IGNORED,
    OutcomeKind.FAILED: JobOutcome.PERMANENT_FAILURE,
}
# When one message holds several inputs, the message's outcome is the first of these that any input had.
_PRECEDENCE = (JobOutcome.PERMANENT_FAILURE, JobOutcome.DONE, JobOutcome.DUPLICATE, JobOutcome.IGNORED)


def make_video_handler(
    *,
    s3_client: S3Client,
    output_bucket: str,
    max_bytes: int,
    workdir: Path | None = None,
    queue_url: str = "",
    body_key_arn: str | None = None,
    kms_client: Any | Callable[[], Any] | None = None,
    metrics: MetricsEmitter | None = None,
    profile: str = DEFAULT_PROFILE,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> JobHandler:
    """A :data:`~sqs_decoupling.worker_fleet.worker.job.JobHandler` that runs ``profile`` (default ``transcode``) for
    each video in the
    message, held to ``limits``. (Just over 60 lines, most of them this documentation.)

    The body is first opened with :func:`sqs_decoupling.queue.envelope.open_body`: plain bodies pass through;
    client-side encrypted
    ones are decrypted with ``body_key_arn`` for the queue named by ``queue_url``'s last path segment.
    ``kms_client`` is a KMS client or a zero-argument factory, called on the first encrypted body only (default:
    ``boto3.client("kms")``). ``metrics`` (default: none) receives each outcome's metrics.

    The message is deleted for every outcome of :func:`~sqs_decoupling.video.pipeline.process_message` (processed,
    duplicate, ignored, permanent failure recorded). A body that cannot be opened, a malformed body or a transient
    error is logged and raised: the message stays on the queue and reaches the dead-letter queue after
    maxReceiveCount deliveries, intact for inspection and redrive.

    Every job ends before SQS's 12-hour visibility cap (:func:`job_budget`): a video whose time limit from the
    probe exceeds what the cap leaves is refused before it is decoded (permanent failure ``too_long``).
    """

    queue_name = queue_name_from_url(queue_url) if queue_url else ""
    kms = kms_client if kms_client is not None else _lazy_kms_client()
    emitter = metrics or MetricsEmitter(None)

    def handle(message: Message) -> JobOutcome:
        context = {"message_id": message.message_id}
        try:
            body = open_body(message.body, queue_name=queue_name, key_id=body_key_arn, kms_client=kms)
        except ClientSideEncryptionError as error:
            # The reason names contexts, keys and the KMS error code, never the plaintext.
            log.error(
                "client-side encrypted body cannot be opened; the message stays on the queue and reaches the DLQ",
                extra=context | unopenable_body_fields(error),
            )
            raise
        outcomes = process_message(
            body,
            message_id=message.message_id,
            s3_client=s3_client,
            output_bucket=output_bucket,
            profile=profile,
            max_bytes=max_bytes,
            workdir=workdir,
            limits=limits,
            budget=job_budget(message),
        )
        for outcome in outcomes:
            _report(outcome, context, emitter)
        if (retry := retry_error(outcomes)) is not None:
            raise retry
        return _message_outcome(outcomes)

    return handle


def job_budget(message: Message, *, clock: Callable[[], float] = time.time) -> TimeBudget:
    """Until ``JOB_CAP_MARGIN_SECONDS`` before the message's visibility cap (12 hours from its first receive).
    Final: a later delivery of the message would have less time, not more."""
    now = clock()
    return TimeBudget(
        deadline=message.visibility_cap(now) - JOB_CAP_MARGIN_SECONDS,
        out_of_time_reason=TOO_LONG,
        final=True,
        what="SQS's 12-hour visibility cap (from the message's first receive, less a margin)",
        clock=clock,
    )


def _report(outcome: Outcome, context: dict[str, Any], emitter: MetricsEmitter) -> None:
    level = logging.WARNING if outcome.kind in (OutcomeKind.FAILED, OutcomeKind.RETRY) else logging.INFO
    log.log(level, outcome.message, extra=context | outcome.log_fields())
    emitter.emit(outcome.metrics())


def _message_outcome(outcomes: Sequence[Outcome]) -> JobOutcome:
    found = {_MESSAGE_OUTCOMES[outcome.kind] for outcome in outcomes}
    return next((outcome for outcome in _PRECEDENCE if outcome in found), JobOutcome.IGNORED)


def _lazy_kms_client() -> Callable[[], Any]:
    """A factory creating one KMS client on first use; jobs run in threads, and creating clients is not."""
    lock = threading.Lock()
    created: list[Any] = []

    def get() -> Any:
        with lock:
            if not created:
                import boto3

                created.append(boto3.client("kms"))
            return created[0]

    return get
