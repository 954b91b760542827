"""What a job handler receives and returns: the contract between the queue worker and the work it runs."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqs_decoupling.contracts.sqs import visibility_cap

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef


@dataclass(frozen=True)
class Message:
    """One received SQS message, as a job handler sees it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    """How many times SQS has delivered this message, this delivery included (ApproximateReceiveCount)."""
    first_receive_epoch_seconds: float | None = None
    """When SQS first delivered this message (ApproximateFirstReceiveTimestamp); None if not asked for."""

    @classmethod
    def from_sqs(cls, raw: MessageTypeDef) -> Message:
        """Build from one entry of a ReceiveMessage response (asked with ApproximateReceiveCount and
        ApproximateFirstReceiveTimestamp)."""
        attributes = raw.get("Attributes", {})
        first_receive_ms = attributes.get("ApproximateFirstReceiveTimestamp")
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            first_receive_epoch_seconds=int(first_receive_ms) / 1000 if first_receive_ms else None,
        )

    def visibility_cap(self, now: float) -> float:
        """When (epoch seconds) SQS stops extending this message's visibility: 12 hours after its first receive
        (``now``, the receive's time, when SQS did not say)."""
        return visibility_cap(self.first_receive_epoch_seconds or now)


class JobOutcome(enum.Enum):
    """How a job ended. Every outcome deletes the message; a transient failure is an exception instead."""

    DONE = "done"
    DUPLICATE = "duplicate"
    """The work had already been done by an earlier delivery (SQS delivers at least once)."""
    PERMANENT_FAILURE = "permanent_failure"
    """The job can never succeed and the handler has recorded why, so retrying would only waste money."""
    IGNORED = "ignored"
    """The message names nothing to do (an ``s3:TestEvent``, a console folder placeholder)."""


JobHandler = Callable[[Message], JobOutcome]
"""Runs one job. Raise to mark a transient failure: the message stays on the queue, becomes visible again after
its visibility timeout and, after the queue's maxReceiveCount deliveries, moves to the dead-letter queue."""
