"""``python -m tests.support.fake_worker --queue-url ... [worker options]``: the real worker process (its options,
signals, drain, deletes and JSON summary, through :func:`sqs_decoupling.worker_fleet.worker.__main__.main`) around
a stand-in job, so a test can run it without the video library and watch it through files.

The job sleeps ``FAKE_JOB_SLEEP_SECONDS`` (default 1) and appends the message id to ``FAKE_JOB_STARTED_FILE`` when it
starts and to ``FAKE_JOB_DONE_FILE`` when it finishes. It needs no output bucket: one is named for the option
parser only, and never used.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from sqs_decoupling.worker_fleet.worker.__main__ import WorkerClients, main
from sqs_decoupling.worker_fleet.worker.config import Settings
from sqs_decoupling.worker_fleet.worker.job import JobHandler, JobOutcome, Message
from sqs_decoupling.worker_fleet.worker.metrics import MetricsEmitter

UNUSED_OUTPUT_BUCKET = "fake-job-writes-nothing"


def _append_line(path: str | None, line: str) -> None:
    if path:
        # One short write to a file opened for appending lands whole, even with several writers.
        with Path(path).open("a", encoding="utf-8") as file:
            file.write(line + "\n")


def sleeping_job(environ: Mapping[str, str]) -> JobHandler:
    seconds = float(environ.get("FAKE_JOB_SLEEP_SECONDS", "1"))
    started_file = environ.get("FAKE_JOB_STARTED_FILE")
    done_file = environ.get("FAKE_JOB_DONE_FILE")

    def job(message: Message) -> JobOutcome:
        _append_line(started_file, message.message_id)
        time.sleep(seconds)
        _append_line(done_file, message.message_id)
        return JobOutcome.DONE

    return job


def make_sleeping_job(_clients: WorkerClients, _settings: Settings, _metrics: MetricsEmitter) -> JobHandler:
    return sleeping_job(os.environ)


if __name__ == "__main__":
    sys.exit(main([*sys.argv[1:], "--output-bucket", UNUSED_OUTPUT_BUCKET], make_handler=make_sleeping_job))
