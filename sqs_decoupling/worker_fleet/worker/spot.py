"""Spot interruption notices and rebalance recommendations, read from instance metadata (IMDSv2).

EC2 announces that it will take a Spot Instance back in two places on the instance itself (no AWS API call, so no VPC
endpoint): ``spot/instance-action`` (HTTP 404 until EC2 has decided to stop or terminate the instance, then
``{"action": "terminate", "time": "2026-12-05T01:02:00Z"}``, ``time`` being when EC2 acts, about two minutes after
the notice) and ``events/recommendations/rebalance`` (``{"noticeTime": ...}`` once the instance is at elevated risk
of interruption, often well before a notice). AWS recommends checking every 5 seconds, which :class:`SpotWatcher`
does from the worker's housekeeping thread.

What the worker does with them (see ``QueueWorker``):

- an interruption notice: no new receives; in-flight jobs run on until :data:`RELEASE_MARGIN_SECONDS` before
  EC2 acts (or the drain time, if that ends sooner); what is still running then is released (visibility 0) and its
  ffmpeg ended, so another worker takes it at once;
- a rebalance recommendation: no new receives; in-flight jobs finish within the usual drain time. The instance
  takes no new job for the rest of its life: capacity rebalancing launches its replacement and then terminates it
  through the termination lifecycle hook (the worker completes it), or an interruption notice follows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqs_decoupling.worker_fleet.worker.imds import Imds, ImdsUnavailable

log = logging.getLogger(__name__)

INTERRUPTION_PATH: Final = "spot/instance-action"
REBALANCE_PATH: Final = "events/recommendations/rebalance"
POLL_SECONDS: Final = 5.0
"""How often the worker reads both items: AWS's recommendation for interruption notices."""
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 0.1, 30.0
"""The range ``--spot-poll-seconds`` accepts: at most a quarter of the two-minute notice."""
NOTICE_SECONDS: Final = 120.0
"""EC2's warning time: the deadline when a notice's ``time`` cannot be read."""
RELEASE_MARGIN_SECONDS: Final = 15.0
"""Jobs still running this long before EC2 acts are released: time for ChangeMessageVisibility and ending ffmpeg."""


@dataclass(frozen=True)
class SpotNotice:
    """What EC2 announced: ``kind`` "interruption" (with ``action_at``, epoch seconds) or "rebalance"."""

    kind: Literal["interruption", "rebalance"]
    action_at: float | None = None
    """When EC2 stops or terminates the instance (interruption only)."""

    @property
    def reason(self) -> str:
        return "spot interruption notice" if self.kind == "interruption" else "spot rebalance recommendation"

    def release_at(self) -> float | None:
        """Epoch seconds by which jobs still running must be released (None: the usual drain time applies)."""
        return None if self.action_at is None else self.action_at - RELEASE_MARGIN_SECONDS


def parse_interruption(text: str, *, seen_at: float) -> SpotNotice:
    """``spot/instance-action``'s document as a notice; an unreadable ``time`` counts as two minutes after
    ``seen_at`` (the notice is what matters, never a reason to keep working)."""
    try:
        action_at = datetime.fromisoformat(str(json.loads(text)["time"]).replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable spot interruption notice; assuming two minutes", extra={"notice": text[:200]})
        action_at = seen_at + NOTICE_SECONDS
    return SpotNotice("interruption", action_at=min(action_at, seen_at + NOTICE_SECONDS))


class SpotWatcher:
    """Reads the two items every ``poll_seconds``; :meth:`poll` returns the most urgent notice seen so far.

    An interruption notice, once seen, is kept (EC2 does not take it back); a rebalance recommendation is kept too.
    An IMDS error is logged and the next poll tries again.
    """

    def __init__(
        self,
        imds: Imds,
        *,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._imds = imds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._next_poll = clock()
        self._notice: SpotNotice | None = None

    def poll(self, *, now: bool = False) -> SpotNotice | None:
        """The notice in force, reading IMDS if a poll is due (``now``: whether due or not)."""
        if self._notice is not None and self._notice.kind == "interruption":
            return self._notice
        polled_at = self._clock()
        if polled_at < self._next_poll and not now:
            return self._notice
        self._next_poll = polled_at + self._poll_seconds
        try:
            interruption = self._imds.get(INTERRUPTION_PATH)
            rebalance = None if interruption else self._imds.get(REBALANCE_PATH)
        except ImdsUnavailable as error:
            log.warning("cannot read the spot notices", extra={"error": str(error)})
            return self._notice
        if interruption:
            self._notice = parse_interruption(interruption, seen_at=self._wall_clock())
            log.warning("spot interruption notice", extra={"action_at": self._notice.action_at})
        elif rebalance and self._notice is None:
            self._notice = SpotNotice("rebalance")
            log.warning("spot rebalance recommendation: taking no new jobs", extra={"recommendation": rebalance})
        return self._notice
