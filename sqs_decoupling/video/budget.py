"""The time one delivery of a message may use: one deadline for every input it processes, and what running out
of it means.

A consumer is stopped from outside when its time is up: Lambda ends the invocation at the function timeout (every
record of the batch is then retried, finished or not, and ``/tmp`` keeps what the killed run left), and SQS will not
extend a worker's visibility past its 12-hour cap (the message is then delivered again, beside the job still
running). So each consumer gives :func:`sqs_decoupling.video.pipeline.process_message` a :class:`TimeBudget` ending a
margin before its own deadline, and every input is held to it:

- an input is not started with less than the probe's time left (:class:`~sqs_decoupling.video.errors.OutOfTimeError`);
- after the probe, an input whose ceiling for its own duration (``VideoProfile.time_limit``) exceeds what is left
  is refused before anything is decoded;
- every ffmpeg run ends within what is left (``MediaLimits.within``), so an input that overruns is stopped with
  time to spare for its failure record and for removing its temporary files.

``final`` says whether a later delivery could have more time. Lambda's next invocation starts with a full budget,
so running out is retried, until the message's last delivery (receive count = the queue's maxReceiveCount), where
it is recorded as ``too_slow_for_lambda`` instead of dead-lettered. A worker's budget counts from the message's
first receive, so a later delivery has less time, never more: running out is recorded (``too_long``) at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

TOO_SLOW_FOR_LAMBDA: Final = "too_slow_for_lambda"
"""The Lambda's permanent failure reason for an input that did not fit in an invocation on its last delivery."""
TOO_LONG: Final = "too_long"
"""The worker's permanent failure reason for an input whose time limit exceeds what SQS's visibility cap leaves."""


@dataclass(frozen=True)
class TimeBudget:
    """Until ``deadline`` (on ``clock``'s scale: ``time.monotonic`` by default, ``time.time`` for a deadline
    derived from SQS timestamps). ``out_of_time_reason``: the failure reason when running out is ``final``."""

    deadline: float
    out_of_time_reason: str
    final: bool
    what: str = "the time left"
    """How a log line or failure record names the budget, e.g. "this Lambda invocation's remaining time"."""
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def seconds_from_now(
        cls,
        seconds: float,
        *,
        out_of_time_reason: str,
        final: bool,
        what: str = "the time left",
        clock: Callable[[], float] = time.monotonic,
    ) -> TimeBudget:
        """A budget of ``seconds`` (may be zero or negative: nothing fits) starting now."""
        return cls(clock() + seconds, out_of_time_reason, final, what, clock)

    def remaining(self) -> float:
        """Seconds left (negative once past the deadline)."""
        return self.deadline - self.clock()


def invocation_budget(
    seconds: float, *, last_delivery: bool, clock: Callable[[], float] = time.monotonic
) -> TimeBudget:
    """A Lambda invocation's: ``seconds`` from now (what is left of it, less a margin). Running out is retried, as
    the next invocation has a full budget, except on the message's ``last_delivery``, where it is final. (``clock``
    is for tests that stand in a clock for ffmpeg runs that would outlast the function.)"""
    return TimeBudget.seconds_from_now(
        seconds,
        out_of_time_reason=TOO_SLOW_FOR_LAMBDA,
        final=last_delivery,
        what="this Lambda invocation's remaining time",
        clock=clock,
    )


def visibility_cap_budget(deadline: float, *, clock: Callable[[], float] = time.time) -> TimeBudget:
    """A worker job's: until ``deadline`` (epoch seconds, a margin before the message's 12-hour visibility cap).
    Final: a later delivery of the message would have less time, not more."""
    return TimeBudget(
        deadline=deadline,
        out_of_time_reason=TOO_LONG,
        final=True,
        what="SQS's 12-hour visibility cap (from the message's first receive, less a margin)",
        clock=clock,
    )
