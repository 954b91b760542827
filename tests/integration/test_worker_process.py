"""The real worker process against the moto server: signals, crashes and bad settings.

Signals and crashes run the worker around a stand-in job (``python -m tests.support.fake_worker``: the worker's own
``main`` with a job that sleeps and writes message ids to files when it starts and when it finishes, so the test can
see what the process did). Bad settings run the real entry point, ``python -m sqs_decoupling.worker_fleet.worker``.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, WorkerOptions
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from tests.integration.conftest import TEST_PACING, send_messages
from tests.support.permissions.recorder import assert_catalogued
from tools.localcloud.server import queue_depth, wait_until


class WorkerProcess:
    def __init__(self, env: dict[str, str], queue_url: str, tmp_path: Path, name: str, *args: str) -> None:
        self.started_file = tmp_path / f"{name}-started.txt"
        self.done_file = tmp_path / f"{name}-done.txt"
        env = env | {"FAKE_JOB_STARTED_FILE": str(self.started_file), "FAKE_JOB_DONE_FILE": str(self.done_file)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.fake_worker",
                "--queue-url",
                queue_url,
                "--wait-seconds",
                "1",
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def _lines(path: Path) -> list[str]:
        return path.read_text().split() if path.exists() else []

    def started(self) -> list[str]:
        return self._lines(self.started_file)

    def done(self) -> list[str]:
        return self._lines(self.done_file)

    def finish(self, timeout: float = 30) -> tuple[int, list[dict[str, object]], str]:
        """Wait for exit: (exit code, JSON log lines and the final counters line, stderr)."""
        stdout, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, [json.loads(line) for line in stdout.splitlines()], stderr


@pytest.fixture
def worker_process(worker_env, tmp_path):
    processes: list[WorkerProcess] = []

    def start(queue_url: str, name: str, *args: str, **env: str) -> WorkerProcess:
        processes.append(WorkerProcess(worker_env | env, queue_url, tmp_path, name, *args))
        return processes[-1]

    yield start
    for each in processes:
        if each.process.poll() is None:
            each.process.kill()
            each.process.communicate()


def test_sigterm_lets_jobs_in_flight_finish_and_leaves_the_rest_on_the_queue(sqs, make_queue, worker_process):
    # GIVEN six 2-second jobs and a worker with three slots
    queue = make_queue(visibility_timeout=30)
    sent = send_messages(sqs, queue.url, [f"job {i}" for i in range(6)])
    worker = worker_process(queue.url, "w", "--concurrency", "3", "--drain-seconds", "20", FAKE_JOB_SLEEP_SECONDS="2")
    wait_until(lambda: len(worker.started()) == 3, timeout=15, what="three jobs to start")

    # WHEN SIGTERM arrives while they run
    worker.process.send_signal(signal.SIGTERM)
    code, logs, stderr = worker.finish()

    # THEN the process exits 0 after finishing and deleting those three; the other three were never taken
    assert code == 0, stderr
    assert sorted(worker.done()) == sorted(worker.started())
    assert queue_depth(sqs, queue.url) == (3, 0)
    assert len(worker.done()) + 3 == len(sent)  # nothing lost
    assert logs[-1]["jobs"] == {"received": 3, "succeeded": 3, "deleted": 3}
    assert "Traceback" not in stderr


def test_sigterm_releases_jobs_that_outlast_the_drain_deadline(
    sqs, make_queue, worker_process, worker_env, call_recorder
):
    # GIVEN long jobs in flight and a half-second drain deadline
    queue = make_queue(visibility_timeout=60)
    sent = send_messages(sqs, queue.url, [f"job {i}" for i in range(5)])
    call_recorder.symbols[queue.url] = "<jobs_queue>"
    worker = worker_process(
        queue.url,
        "w",
        "--concurrency",
        "3",
        "--drain-seconds",
        "0.5",
        FAKE_JOB_SLEEP_SECONDS="60",
        **call_recorder.subprocess_env("worker", worker_env),
    )
    wait_until(lambda: len(worker.started()) == 3, timeout=15, what="three jobs to start")

    # WHEN SIGTERM arrives
    worker.process.send_signal(signal.SIGTERM)
    code, logs, stderr = worker.finish()

    # THEN it exits 0 at once, and the unfinished messages are visible again now, not after their 60 s timeout
    assert code == 0, stderr
    assert worker.done() == []
    assert queue_depth(sqs, queue.url) == (len(sent), 0)
    assert logs[-1]["jobs"] == {"received": 3, "released": 3}
    # AND the release (a visibility change, as the worker's heartbeats are) is in the permission catalogue
    assert_catalogued(call_recorder.calls(), needs=[("worker", "sqs", "ChangeMessageVisibilityBatch")])


def test_a_killed_worker_loses_nothing_a_second_worker_completes_the_job_once(sqs, make_queue, worker_process):
    # GIVEN a worker in the middle of a long job, its message hidden by a 2 s visibility timeout + heartbeats
    queue = make_queue()
    (message_id,) = send_messages(sqs, queue.url, ["the only job"])
    first = worker_process(queue.url, "first", "--visibility-timeout", "2", FAKE_JOB_SLEEP_SECONDS="60")
    wait_until(first.started, timeout=15, what="the job to start")
    assert queue_depth(sqs, queue.url) == (0, 1)

    # WHEN it is killed without warning (no drain, no release)
    first.process.kill()
    first.finish()

    # THEN the message comes back once its visibility timeout runs out ...
    wait_until(lambda: queue_depth(sqs, queue.url) == (1, 0), timeout=10, what="the message to reappear")
    # ... and a second worker completes it, exactly once
    second = worker_process(queue.url, "second", FAKE_JOB_SLEEP_SECONDS="0.1")
    wait_until(second.done, timeout=15, what="the second worker to finish the job")
    wait_until(lambda: queue_depth(sqs, queue.url) == (0, 0), timeout=10, what="the delete")
    second.process.send_signal(signal.SIGTERM)
    code, logs, _ = second.finish()
    assert code == 0
    assert first.done() == []
    assert second.done() == [message_id]
    (finished,) = [line for line in logs if line.get("message") == "job finished"]
    assert (finished["message_id"], finished["receive_count"]) == (message_id, 2)


def test_missing_settings_are_reported_without_a_traceback(worker_env):
    result = subprocess.run(
        [sys.executable, "-m", "sqs_decoupling.worker_fleet.worker"],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--queue-url or set WORKER_QUEUE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_queue_is_reported_without_a_traceback(worker_env, moto_endpoint):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sqs_decoupling.worker_fleet.worker",
            "--queue-url",
            f"{moto_endpoint}/123456789012/missing",
            "--output-bucket",
            "b",
        ],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "video-worker: error: cannot read queue" in result.stderr
    assert "Traceback" not in result.stderr


def _start_without_output_bucket(queue_url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``video-worker`` for ``queue_url`` with an output bucket that does not exist: it stops at start-up."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sqs_decoupling.worker_fleet.worker",
            "--queue-url",
            queue_url,
            "--output-bucket",
            "no-such-output-bucket",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_output_bucket_is_reported_at_start_up_naming_it(worker_env, sqs, make_queue):
    # GIVEN a queue that exists and an output bucket that does not
    queue = make_queue()

    # WHEN the worker starts with the video job
    result = _start_without_output_bucket(queue.url, worker_env)

    # THEN it refuses before taking any job: one line that names the bucket as the output bucket
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot use output bucket 'no-such-output-bucket' (--output-bucket / WORKER_OUTPUT_BUCKET)" in result.stderr
    assert queue_depth(sqs, queue.url) == (0, 0)


def test_aws_region_alone_gives_the_worker_its_region(worker_env, make_queue):
    # GIVEN only AWS_REGION (no AWS_DEFAULT_REGION, no WORKER_REGION, no profile; moto's queue URL names no region)
    queue = make_queue()
    env = {k: v for k, v in worker_env.items() if k != "AWS_DEFAULT_REGION"} | {"AWS_CONFIG_FILE": "/nonexistent"}

    # WHEN the worker starts with an output bucket that does not exist
    result = _start_without_output_bucket(queue.url, env)

    # THEN it found the region and got as far as the output bucket (the queue was read in that region)
    assert result.returncode == 1
    assert "cannot use output bucket 'no-such-output-bucket'" in result.stderr


def test_no_region_anywhere_is_one_line_naming_every_source(worker_env, moto_endpoint):
    # GIVEN no region in any source
    env = {k: v for k, v in worker_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    env |= {"AWS_CONFIG_FILE": "/nonexistent"}

    # WHEN the worker starts
    result = _start_without_output_bucket(f"{moto_endpoint}/123456789012/jobs", env)

    # THEN one line names where a region is looked for, exit 1 (could not start)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "video-worker: error: no AWS region: pass --region, or set WORKER_REGION, AWS_REGION or AWS_DEFAULT_REGION"
    )


def test_the_s3_connection_pool_is_sized_for_the_concurrency(worker_env, client, make_queue, monkeypatch):
    # GIVEN settings for 8 concurrent jobs, against an existing queue and output bucket
    from sqs_decoupling.worker_fleet.worker.__main__ import build_worker
    from sqs_decoupling.worker_fleet.worker.config import parse_settings

    queue = make_queue()
    bucket = f"processed-{queue.url.rsplit('-', 1)[-1]}"
    client("s3").create_bucket(Bucket=bucket)
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    settings = parse_settings(["--queue-url", queue.url, "--output-bucket", bucket, "--concurrency", "8"], worker_env)
    pools: dict[str, int] = {}
    real_client = boto3.session.Session.client

    def spy(self, service, *args, config=None, **kwargs):
        pools[service] = config.max_pool_connections
        return real_client(self, service, *args, config=config, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", spy)

    # WHEN the worker is built
    build_worker(settings)

    # THEN its S3 client may keep a transfer's worth of connections (10) per job, not botocore's default 10
    assert pools["s3"] >= 8 * 10


def test_a_sigterm_the_kernel_hands_to_another_thread_still_stops_a_worker_with_every_slot_busy(
    sqs, make_queue, client, caplog
):
    # GIVEN the worker in this process's main thread, its signals handled as its entry point handles them, and its
    # one slot busy with a job that runs until it is let go: the main thread waits for a free slot
    queue = make_queue(visibility_timeout=300)
    send_messages(sqs, queue.url, ["in flight"])
    started, finish = threading.Event(), threading.Event()

    def held_job(message: Message) -> JobOutcome:
        started.set()
        finish.wait(30)
        return JobOutcome.DONE

    options = WorkerOptions(**TEST_PACING, concurrency=1, drain_seconds=0)
    worker = QueueWorker(client("sqs"), queue.url, held_job, options)
    bystander = threading.Thread(target=finish.wait, args=(30,), name="bystander", daemon=True)
    bystander.start()
    signalled: list[float] = []

    def send_sigterm_to_the_bystander() -> None:
        started.wait(15)
        time.sleep(0.5)  # the main thread is back waiting for a free slot
        signalled.append(time.monotonic())
        # WHEN SIGTERM lands on a thread other than the main one (as the kernel may pick any thread not blocking it)
        signal.pthread_kill(bystander.ident, signal.SIGTERM)
        if not stopped.wait(10):  # the worker never saw it: end the test instead of hanging
            worker.request_stop("the test's watchdog")
        finish.set()

    stopped = threading.Event()
    saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    caplog.set_level(logging.INFO, logger="sqs_decoupling.worker_fleet.worker.consumer")
    try:
        worker.handle_signals(signal.SIGTERM, signal.SIGINT)
        threading.Thread(target=send_sigterm_to_the_bystander, daemon=True).start()
        worker.run()
        stopped.set()
        returned = time.monotonic()
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, saved[0])
        signal.signal(signal.SIGINT, saved[1])
        finish.set()

    # THEN the worker took it as a stop within a housekeeping tick or two, not when the job ended: the drain deadline
    # (0 s here) passed at once and the job's message went back to the queue
    (stopping,) = [r for r in caplog.records if r.getMessage() == "stopping"]
    assert stopping.reason == "signal 15"
    assert returned - signalled[0] < 2, returned - signalled[0]
    assert worker.counters.get("released") == 1
    assert queue_depth(sqs, queue.url) == (1, 0)
