"""The consumers' one core: what both the Lambda's record handler and the worker's job handler do with a message.

:func:`handle_message` opens the body (client-side decryption), runs every input with
:func:`~sqs_decoupling.video.pipeline.process_message` within the delivery's budget, and returns a
:class:`MessageResult`: each input's outcome, the log lines and metrics to emit, and the decision: delete the
message, or leave it on the queue by raising ``result.retry``. The adapters only route that result: Powertools'
Logger, Metrics and ``batchItemFailures`` in the Lambda; the worker's JSON log, EMF emitter and DeleteMessageBatch.

A message that stays on the queue always says why in one ERROR (or WARNING, when only out of time) line and adds a
``TransientFailures`` metric whose ``error_type`` names the cause: an input's transient error, a body that cannot be
opened (``ClientSideEncryptionError``), a malformed body (``MalformedMessageError``), or anything else raised. SQS
redelivers it, and after maxReceiveCount deliveries it moves to the dead-letter queue, intact for redrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MediaLimits
from sqs_decoupling.contracts.telemetry import ERROR_TYPE_DIMENSION, TRANSIENT_FAILURES, MetricPoint
from sqs_decoupling.queue.envelope.envelope import ClientSideEncryptionError, open_body
from sqs_decoupling.queue.envelope.logs import unopenable_body_fields
from sqs_decoupling.video.budget import TimeBudget
from sqs_decoupling.video.errors import MalformedMessageError
from sqs_decoupling.video.pipeline import TRANSIENT_MESSAGE, Outcome, error_type, process_message, retry_error
from sqs_decoupling.video.processing import Profile

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

UNOPENABLE_MESSAGE = (
    "Client-side encrypted body cannot be opened: left on the queue, it moves to the DLQ after maxReceiveCount"
)
MALFORMED_MESSAGE = "Malformed message: left on the queue, it moves to the DLQ after maxReceiveCount"


@dataclass(frozen=True)
class Consumer:
    """What one consumer processes every message with. ``kms_client``: a KMS client or a zero-argument factory,
    called on the first client-side encrypted body only; ``body_key_arn`` None refuses such bodies."""

    s3_client: S3Client
    output_bucket: str
    profile: Profile
    max_bytes: int
    limits: MediaLimits = DEFAULT_LIMITS
    workdir: Path | None = None
    body_key_arn: str | None = None
    kms_client: Any | Callable[[], Any] | None = None


@dataclass(frozen=True)
class LogLine:
    level: int
    message: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class MessageResult:
    """What became of one message and what to report about it."""

    outcomes: tuple[Outcome, ...]
    """One per input; empty when the body could not be opened or read."""
    logs: tuple[LogLine, ...]
    metrics: tuple[MetricPoint, ...]
    retry: Exception | None
    """Raise it to leave the message on the queue; None: the message is done, delete it."""


def handle_message(
    consumer: Consumer, body: str, *, message_id: str, queue_name: str, budget: TimeBudget | None
) -> MessageResult:
    """Open ``body`` (encrypted for ``queue_name``) and process its inputs within ``budget``; never raises."""
    try:
        opened = open_body(body, queue_name=queue_name, key_id=consumer.body_key_arn, kms_client=consumer.kms_client)
        outcomes = process_message(
            opened,
            message_id=message_id,
            s3_client=consumer.s3_client,
            output_bucket=consumer.output_bucket,
            profile=consumer.profile,
            max_bytes=consumer.max_bytes,
            workdir=consumer.workdir,
            limits=consumer.limits,
            budget=budget,
        )
    except ClientSideEncryptionError as error:
        # The fields name contexts, keys and the KMS error code, never the plaintext.
        return _refused(error, message_id, UNOPENABLE_MESSAGE, unopenable_body_fields(error))
    except MalformedMessageError as error:
        return _refused(error, message_id, MALFORMED_MESSAGE, {"reason": str(error)})
    except Exception as error:  # e.g. KMS unreachable while opening a body
        return _refused(error, message_id, TRANSIENT_MESSAGE, {"error_type": error_type(error), "error": str(error)})
    return MessageResult(
        outcomes=tuple(outcomes),
        logs=tuple(LogLine(o.level, o.message, {"message_id": message_id} | o.log_fields()) for o in outcomes),
        metrics=tuple(point for outcome in outcomes for point in outcome.metrics()),
        retry=retry_error(outcomes),
    )


def _refused(error: Exception, message_id: str, message: str, fields: dict[str, Any]) -> MessageResult:
    """A message none of whose inputs ran: it stays on the queue, logged once and counted by the error's type."""
    return MessageResult(
        outcomes=(),
        logs=(LogLine(logging.ERROR, message, {"message_id": message_id} | fields),),
        metrics=(MetricPoint(TRANSIENT_FAILURES, "Count", 1, {ERROR_TYPE_DIMENSION: error_type(error)}),),
        retry=error,
    )
