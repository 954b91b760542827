"""The queue worker: long-polls SQS, runs jobs in bounded concurrency, heartbeats, deletes in batches, drains."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from sqs_decoupling.contracts.sqs import MAX_VISIBILITY_TIMEOUT_SECONDS
from sqs_decoupling.contracts.worker import DEFAULT_CONCURRENCY, DEFAULT_DRAIN_SECONDS, DEFAULT_WAIT_SECONDS
from sqs_decoupling.worker_fleet.worker.autoscaling import ScaleInGuard, TerminationWatcher
from sqs_decoupling.worker_fleet.worker.batches import SQS_BATCH_LIMIT, DeleteBatcher, change_visibility
from sqs_decoupling.worker_fleet.worker.counters import Counters
from sqs_decoupling.worker_fleet.worker.job import JobHandler, JobOutcome, Message
from sqs_decoupling.worker_fleet.worker.metrics import MetricsEmitter
from sqs_decoupling.worker_fleet.worker.spot import SpotWatcher

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

_OUTCOME_COUNTERS = {
    JobOutcome.DONE: "succeeded",
    JobOutcome.DUPLICATE: "duplicates",
    JobOutcome.PERMANENT_FAILURE: "permanent_failures",
    JobOutcome.IGNORED: "ignored",
}


@dataclass(frozen=True)
class WorkerOptions:
    """How the worker polls and paces itself. Defaults suit minutes-long transcoding jobs."""

    concurrency: int = DEFAULT_CONCURRENCY
    """Job slots. The worker never holds more received messages than it has free slots."""
    visibility_timeout: int = 120
    """Seconds a received message stays hidden; asked for on every receive, extended by heartbeats."""
    wait_seconds: int = DEFAULT_WAIT_SECONDS
    """Long-poll wait of each ReceiveMessage (20 is the maximum and the cheapest)."""
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    """On shutdown, how long in-flight jobs may run on before their messages are released."""
    heartbeats: bool = True
    """Extend the visibility of long jobs. Only tests turn this off, to show what it prevents."""
    delete_linger_seconds: float = 0.5
    """How long a finished job's delete may wait for others to fill a DeleteMessageBatch."""
    receive_linger_seconds: float = 0.05
    """How long to wait for more slots to free up before receiving, so fast jobs are received ten at a time."""
    tick_seconds: float = 0.2
    """Housekeeping period: deletes, heartbeats, scale-in protection, lifecycle polling."""
    metrics_interval_seconds: float = 60.0
    """How often the number of jobs in flight is sent as a metric (CloudWatch's period is one minute)."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if not 1 <= self.visibility_timeout <= MAX_VISIBILITY_TIMEOUT_SECONDS:
            raise ValueError(
                f"visibility_timeout must be 1..{MAX_VISIBILITY_TIMEOUT_SECONDS} seconds, got {self.visibility_timeout}"
            )
        if not 0 <= self.wait_seconds <= 20:
            raise ValueError(f"wait_seconds must be 0..20, got {self.wait_seconds}")
        if self.drain_seconds < 0:
            raise ValueError(f"drain_seconds must be 0 or more, got {self.drain_seconds}")

    @property
    def heartbeat_interval(self) -> float:
        """Extend a third of the way through the timeout, so two heartbeats can fail before the job is exposed."""
        return self.visibility_timeout / 3


class StartGate(Protocol):
    """Holds the first receive until the instance may take jobs (e.g. ``autoscaling.InServiceGate``)."""

    poll_seconds: float

    def ready(self) -> bool: ...


@dataclass
class _Running:
    message: Message
    visibility_set_at: float


class QueueWorker:
    """Consumes one SQS queue with a pluggable :data:`JobHandler` until stopped.

    A message is deleted only after its handler returned a :class:`JobOutcome`; a handler exception leaves it
    on the queue (SQS redelivers it, then dead-letters it). Call :meth:`run` from one thread and
    :meth:`request_stop` from anywhere (a signal handler included) to drain and return.

    ``spot`` (a :class:`~sqs_decoupling.worker_fleet.worker.spot.SpotWatcher`) is read every tick: on a Spot
    interruption notice or rebalance recommendation the worker drains as on a stop (:meth:`request_drain`) but does
    not return: it takes no new job for the rest of the instance's life and returns when stopped (SIGTERM, or the
    termination lifecycle hook). ``start_gate`` holds the first receive until it is ready (an instance warming into a
    warm pool is not).

    ``on_abandon`` is called once when the drain deadline passes with jobs still running, right after their messages
    are released: it ends the work those jobs started (the video handler's ffmpeg processes), so nothing outlives
    the worker. ``metrics`` receives the number of jobs in flight every ``metrics_interval_seconds``.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        handler: JobHandler,
        options: WorkerOptions | None = None,
        *,
        scale_in: ScaleInGuard | None = None,
        termination: TerminationWatcher | None = None,
        spot: SpotWatcher | None = None,
        start_gate: StartGate | None = None,
        counters: Counters | None = None,
        metrics: MetricsEmitter | None = None,
        on_abandon: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self.options = options or WorkerOptions()
        self._scale_in = scale_in or ScaleInGuard(None, None)
        self._termination = termination
        self._spot = spot
        self._start_gate = start_gate
        self.counters = counters or Counters()
        self._metrics = metrics or MetricsEmitter(None)
        self._metrics_sent_at: float | None = None
        self._on_abandon = on_abandon
        self._clock = clock
        self._wall_clock = wall_clock  # SQS's timestamps are epoch times
        self._deletes = DeleteBatcher(
            sqs, queue_url, self.counters, linger_seconds=self.options.delete_linger_seconds, clock=clock
        )
        self._state = threading.Condition()
        self._running: dict[str, _Running] = {}  # by receipt handle: unique per delivery
        self._stop_requested_at: float | None = None  # no more receives from then on: the drain starts
        self._release_by: float | None = None  # a drain deadline sooner than drain_seconds (a Spot notice's)
        self._exit_requested = False  # run() returns once drained (a drain for a Spot notice does not set it)
        self._keeper_stop = threading.Event()
        self._keeper_wake = threading.Event()
        self._signal_received: int | None = None
        self._signals: frozenset[int] = frozenset()
        self._signal_pipe: int | None = None  # read end of the interpreter's wakeup pipe, see handle_signals

    # -- control ------------------------------------------------------------------------------------------------

    def handle_signals(self, *signums: int) -> None:
        """Make ``signums`` (SIGTERM, SIGINT) ask for a drain within a housekeeping tick, whichever thread of the
        process the kernel hands them to. Call from the main thread, before :meth:`run`.

        Python runs a signal's handler (:meth:`on_signal`) in the main thread, and only once that thread runs again.
        A signal sent to the process goes to any one of its threads; when it is not the main thread while the main
        thread waits (for a free job slot, for the shutdown after a Spot drain, on a 20 s long poll), the handler
        would wait with it: a SIGTERM from systemd seen only when a job ends. The interpreter's own C handler, in
        whichever thread the signal lands, also writes its number to a pipe at once (``signal.set_wakeup_fd``), and
        housekeeping reads that pipe every tick."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._signal_pipe = read_end
        self._signals = frozenset(signums)
        for signum in signums:
            signal.signal(signum, self.on_signal)

    def on_signal(self, signum: int, _frame: object = None) -> None:
        """The signal handler :meth:`handle_signals` installs: it asks for a drain.

        It only records the signal: taking locks or logging inside a signal handler can deadlock the main
        thread, so the housekeeping thread turns it into :meth:`request_stop` within one tick.
        """
        self._signal_received = signum

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop receiving and start draining; :meth:`run` returns once drained. Safe to call repeatedly and from
        any thread."""
        with self._state:
            self._exit_requested = True
            if self._stop_requested_at is None:
                self._stop_requested_at = self._clock()
                log.info("stopping", extra={"reason": reason, "in_flight": len(self._running)})
            self._state.notify_all()

    def request_drain(self, reason: str, *, release_at: float | None = None) -> None:
        """Stop receiving and drain, but keep running (:meth:`run` returns only on :meth:`request_stop`).

        ``release_at`` (epoch seconds): jobs still running then are released, even if the drain time has not run
        out (a Spot interruption notice's deadline). Safe to call repeatedly: only a sooner deadline changes it."""
        with self._state:
            if self._stop_requested_at is None:
                self._stop_requested_at = self._clock()
                log.info("draining: taking no new jobs", extra={"reason": reason, "in_flight": len(self._running)})
            if release_at is not None:
                release_by = self._clock() + release_at - self._wall_clock()
                if self._release_by is None or release_by < self._release_by - 1:
                    self._release_by = release_by
                    log.info(
                        "jobs still running will be released before the deadline",
                        extra={"reason": reason, "seconds_left": round(release_by - self._clock(), 1)},
                    )
            self._state.notify_all()

    @property
    def stopping(self) -> bool:
        with self._state:
            return self._stop_requested_at is not None

    def in_flight(self) -> int:
        with self._state:
            return len(self._running)

    def run(self) -> None:
        """Receive and run jobs until :meth:`request_stop`, then drain, flush deletes and return."""
        keeper = threading.Thread(target=self._keep_house, name="worker-housekeeping", daemon=True)
        keeper.start()
        log.info(
            "worker started",
            extra={"queue_url": self._queue_url, "concurrency": self.options.concurrency},
        )
        try:
            self._check_spot(now=True)  # a notice already there (the worker restarted) means no receive at all
            self._wait_until_ready()
            self._receive_loop()
        except BaseException:
            with self._state:
                self._exit_requested = True
            raise
        finally:
            self._drain()
            self._wait_for_exit()
            self._keeper_stop.set()
            keeper.join()
            self._deletes.flush()
            # Read the lifecycle state now, not at the next poll: a stop (SIGTERM) that came between two polls
            # right after the instance entered Terminating:Wait must still complete the hook.
            if self._termination is not None and self._termination.poll(now=True):
                self._termination.complete()
            else:
                self._scale_in.stop()
            log.info("worker stopped", extra={"counters": self.counters.jobs()})

    # -- receiving ----------------------------------------------------------------------------------------------

    def _wait_until_ready(self) -> None:
        """Hold the first receive until the start gate opens (or a stop or drain comes)."""
        if self._start_gate is None:
            return
        waited = False
        while not self.stopping and not self._start_gate.ready():
            if not waited:
                log.info("waiting for the instance to enter service before taking jobs")
                waited = True
            with self._state:
                self._state.wait_for(lambda: self._stop_requested_at is not None, self._start_gate.poll_seconds)
        if waited and not self.stopping:
            log.info("instance in service: taking jobs")

    def _receive_loop(self) -> None:
        failures = 0
        while True:
            slots = self._wait_for_free_slots()
            if slots == 0:
                return
            try:
                messages = self._receive(slots)
            except (BotoCoreError, ClientError) as error:
                failures += 1
                backoff = min(30.0, 2.0 ** min(failures, 5))
                log.error("ReceiveMessage failed", extra={"error": str(error), "retry_in_seconds": backoff})
                with self._state:
                    self._state.wait_for(lambda: self._stop_requested_at is not None, timeout=backoff)
                continue
            failures = 0
            if self.stopping:
                # The poll was already waiting when the stop came: hand these straight back to the queue.
                self._release(messages, reason="received during shutdown")
                return
            if messages:
                self._start(messages)

    def _wait_for_free_slots(self) -> int:
        """Block until a slot is free; linger briefly for more so fast jobs are received in full batches."""
        concurrency = self.options.concurrency
        wanted = min(SQS_BATCH_LIMIT, concurrency)
        with self._state:
            self._state.wait_for(lambda: self._stop_requested_at is not None or len(self._running) < concurrency)
            deadline = self._clock() + self.options.receive_linger_seconds
            while self._stop_requested_at is None and concurrency - len(self._running) < wanted:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._state.wait(remaining)
            if self._stop_requested_at is not None:
                return 0
            return min(SQS_BATCH_LIMIT, concurrency - len(self._running))

    def _receive(self, count: int) -> list[Message]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.options.wait_seconds,
            VisibilityTimeout=self.options.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"],
        )
        messages = [Message.from_sqs(raw) for raw in response.get("Messages", [])]
        self.counters.add("received", len(messages))
        return messages

    # -- running jobs -------------------------------------------------------------------------------------------

    def _start(self, messages: Sequence[Message]) -> None:
        now = self._clock()
        with self._state:
            for message in messages:
                self._running[message.receipt_handle] = _Running(message, visibility_set_at=now)
        self._scale_in.jobs_starting(len(messages))  # protection is on before any of them starts
        for message in messages:
            threading.Thread(
                target=self._run_job, args=(message,), name=f"job-{message.message_id}", daemon=True
            ).start()

    def _run_job(self, message: Message) -> None:
        context = {"message_id": message.message_id, "receive_count": message.receive_count}
        started = self._clock()
        outcome: JobOutcome | None
        try:
            outcome = self._handler(message)
        except Exception:
            outcome = None
            self.counters.add("transient_failures")
            log.exception("job failed; the message stays on the queue for a retry", extra=context)
        else:
            self.counters.add(_OUTCOME_COUNTERS[outcome])
            log.info(
                "job finished",
                extra=context | {"outcome": outcome.value, "seconds": round(self._clock() - started, 3)},
            )
        with self._state:
            # Absent when the drain deadline passed and the message was released: it is no longer ours to delete.
            still_ours = self._running.pop(message.receipt_handle, None) is not None
            if still_ours and outcome is not None and self._deletes.add(message):
                self._keeper_wake.set()
            self._state.notify_all()
        if still_ours:
            self._scale_in.job_finished()

    # -- housekeeping (its own thread, so a 20 s long poll never delays a heartbeat or a delete) ---------------

    def _keep_house(self) -> None:
        while not self._keeper_stop.is_set():
            self._keeper_wake.wait(self.options.tick_seconds)
            self._keeper_wake.clear()
            try:
                self._housekeeping_tick()
            except Exception:
                # Dying here would silently stop heartbeats and deletes; log the bug and keep going.
                log.exception("housekeeping failed")

    def _housekeeping_tick(self) -> None:
        signum = self._signal_received or self._signal_from_pipe()
        if signum is not None:
            self.request_stop(f"signal {signum}")
        if self._deletes.due():
            self._deletes.flush()
        if self.options.heartbeats:
            self._heartbeat()
        self._scale_in.tick()
        self._send_in_flight_metric()
        self._check_spot()
        if self._termination is not None and self._termination.poll():
            self.request_stop("instance terminating")
            self._termination.keep_alive()

    def _signal_from_pipe(self) -> int | None:
        """The last of :meth:`handle_signals`' signals written to the wakeup pipe since the last tick, if any."""
        if self._signal_pipe is None:
            return None
        try:
            written = os.read(self._signal_pipe, 64)
        except BlockingIOError:  # nothing written
            return None
        ours = [signum for signum in written if signum in self._signals]
        return ours[-1] if ours else None

    def _check_spot(self, *, now: bool = False) -> None:
        notice = self._spot.poll(now=now) if self._spot is not None else None
        if notice is not None:
            self.request_drain(notice.reason, release_at=notice.release_at())

    def _heartbeat(self) -> None:
        now = self._clock()
        with self._state:
            due = [
                job for job in self._running.values() if now - job.visibility_set_at >= self.options.heartbeat_interval
            ]
            for job in due:
                job.visibility_set_at = now
        if not due:
            return
        # Never past SQS's 12-hour cap (the request would be refused): a job's budget ends before it anyway.
        wall_clock = self._wall_clock()
        by_timeout: dict[int, list[Message]] = {}
        for job in due:
            left = int(job.message.visibility_cap(wall_clock) - wall_clock)
            timeout = min(self.options.visibility_timeout, left)
            if timeout > 0:
                by_timeout.setdefault(timeout, []).append(job.message)
        failures = [
            failure
            for timeout, messages in by_timeout.items()
            for failure in change_visibility(self._sqs, self._queue_url, messages, timeout)
        ]
        self.counters.add("heartbeats", sum(map(len, by_timeout.values())) - len(failures))
        for message, code in failures:
            with self._state:
                finished = message.receipt_handle not in self._running
            if not finished:  # a job that just finished has no visibility left to extend; that is fine
                log.warning("visibility heartbeat failed", extra={"message_id": message.message_id, "error": code})

    def _send_in_flight_metric(self) -> None:
        now = self._clock()
        if self._metrics_sent_at is not None and now - self._metrics_sent_at < self.options.metrics_interval_seconds:
            return
        self._metrics_sent_at = now
        self._metrics.in_flight(self.in_flight())

    # -- shutdown -----------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Let in-flight jobs finish until the drain deadline, then release the rest (visibility 0)."""
        with self._state:
            if self._stop_requested_at is None:  # run() is unwinding from an exception
                self._stop_requested_at = self._clock()
            drain_until = self._stop_requested_at + self.options.drain_seconds

            def deadline() -> float:  # a Spot notice during the drain brings it forward
                return drain_until if self._release_by is None else min(drain_until, self._release_by)

            if self._running:
                log.info(
                    "draining", extra={"in_flight": len(self._running), "drain_seconds": self.options.drain_seconds}
                )
            while self._running and self._clock() < deadline():
                self._state.wait(min(1.0, max(0.0, deadline() - self._clock())))
            abandoned = [job.message for job in self._running.values()]
            self._running.clear()
        if abandoned:
            self._release(abandoned, reason="drain deadline passed")
            if self._on_abandon is not None:
                self._on_abandon()

    def _wait_for_exit(self) -> None:
        """After a drain for a Spot notice: stay up, idle, until stopped (housekeeping runs on meanwhile: scale-in
        protection goes off, the termination lifecycle hook is watched and completed)."""
        with self._state:
            if not self._exit_requested:
                log.info("drained; taking no new jobs until the instance stops")
            self._state.wait_for(lambda: self._exit_requested)

    def _release(self, messages: Sequence[Message], *, reason: str) -> None:
        """Make messages visible again now, so another worker picks them up without waiting out the timeout."""
        if not messages:
            return
        failures = change_visibility(self._sqs, self._queue_url, messages, 0)
        self.counters.add("released", len(messages) - len(failures))
        for message in messages:
            log.info("message released", extra={"message_id": message.message_id, "reason": reason})
        for message, code in failures:
            log.warning(
                "release failed; the message becomes visible when its timeout runs out",
                extra={"message_id": message.message_id, "error": code},
            )
