"""Test seam: stand-in job handlers for running the real worker process without the video library.

Selected with ``WORKER_TEST_HANDLER=<name>`` (see :data:`HANDLERS`) and configured with environment variables, so
a test can start ``python -m sqs_decoupling.worker_fleet.worker`` as a subprocess and observe it through files. Not for
production use.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from sqs_decoupling.worker_fleet.worker.job import JobHandler, JobOutcome, Message


def _append_line(path: str | None, line: str) -> None:
    if path:
        # One short write to a file opened for appending lands whole, even with several writers.
        with Path(path).open("a", encoding="utf-8") as file:
            file.write(line + "\n")


def make_sleep_handler(environ: Mapping[str, str]) -> JobHandler:
    """Sleeps ``WORKER_TEST_SLEEP_SECONDS`` (default 1); appends the message id to ``WORKER_TEST_STARTED_FILE``
    when it starts and to ``WORKER_TEST_DONE_FILE`` when it finishes."""
    seconds = float(environ.get("WORKER_TEST_SLEEP_SECONDS", "1"))
    started_file = environ.get("WORKER_TEST_STARTED_FILE")
    done_file = environ.get("WORKER_TEST_DONE_FILE")

    def sleep_handler(message: Message) -> JobOutcome:
        _append_line(started_file, message.message_id)
        time.sleep(seconds)
        _append_line(done_file, message.message_id)
        return JobOutcome.DONE

    return sleep_handler


def make_failing_handler(environ: Mapping[str, str]) -> JobHandler:
    """Always raises: a transient failure on every delivery (a poison message)."""

    def failing_handler(message: Message) -> JobOutcome:
        raise RuntimeError(f"test handler fails message {message.message_id} on purpose")

    return failing_handler


HANDLERS = {"sleep": make_sleep_handler, "fail": make_failing_handler}


def handler_from_env(name: str, environ: Mapping[str, str]) -> JobHandler:
    try:
        factory = HANDLERS[name]
    except KeyError:
        raise ValueError(f"unknown test handler {name!r}; choose one of {sorted(HANDLERS)}") from None
    return factory(environ)
