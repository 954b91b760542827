"""The worker's job: a thin adapter from one SQS message to the consumers' core,
:func:`sqs_decoupling.video.consumer.handle_message` (shared with the Lambda), whose result it logs, emits as EMF
metrics and turns into a :class:`JobOutcome` (the worker deletes the message) or an exception (it stays queued)."""

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
from sqs_decoupling.queue.envelope.envelope import queue_name_from_url
from sqs_decoupling.video.budget import TimeBudget, visibility_cap_budget
from sqs_decoupling.video.consumer import Consumer, MessageResult, handle_message
from sqs_decoupling.video.pipeline import Outcome, OutcomeKind
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
    each video in the message, held to ``limits``, through the consumers' core
    (:func:`sqs_decoupling.video.consumer.handle_message`).

    Client-side encrypted bodies are opened with ``body_key_arn`` for the queue named by ``queue_url``'s last path
    segment; ``kms_client`` is a KMS client or a zero-argument factory (default: ``boto3.client("kms")`` on the
    first encrypted body). ``metrics`` (default: none) receives the core's metrics. The handler returns a
    :class:`JobOutcome` when the core says the message is done (the worker deletes it), and raises the core's
    ``retry`` otherwise: the message stays on the queue, and reaches the dead-letter queue after maxReceiveCount.
    Every job ends before SQS's 12-hour visibility cap (:func:`job_budget`).
    """
    consumer = Consumer(
        s3_client=s3_client,
        output_bucket=output_bucket,
        profile=profile,
        max_bytes=max_bytes,
        limits=limits,
        workdir=workdir,
        body_key_arn=body_key_arn,
        kms_client=kms_client if kms_client is not None else _lazy_kms_client(),
    )
    queue_name = queue_name_from_url(queue_url) if queue_url else ""
    emitter = metrics or MetricsEmitter(None)

    def handle(message: Message) -> JobOutcome:
        budget = job_budget(message)
        result = handle_message(
            consumer, message.body, message_id=message.message_id, queue_name=queue_name, budget=budget
        )
        publish(result, emitter)
        if result.retry is not None:
            raise result.retry
        return message_outcome(result.outcomes)

    return handle


def job_budget(message: Message, *, clock: Callable[[], float] = time.time) -> TimeBudget:
    """Until ``JOB_CAP_MARGIN_SECONDS`` before the message's visibility cap (12 hours from its first receive)."""
    return visibility_cap_budget(message.visibility_cap(clock()) - JOB_CAP_MARGIN_SECONDS, clock=clock)


def publish(result: MessageResult, emitter: MetricsEmitter) -> None:
    """The result's log lines through this module's logger (JSON, see ``logs.py``), its metrics as EMF."""
    for line in result.logs:
        log.log(line.level, line.message, extra=line.fields)
    emitter.emit(result.metrics)


def message_outcome(outcomes: Sequence[Outcome]) -> JobOutcome:
    """The message's outcome when it is done: the first of ``_PRECEDENCE`` any of its inputs had."""
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
