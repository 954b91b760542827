"""ChildProcesses: children in their own session, ended (and no new ones started) when the worker gives up jobs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sqs_decoupling.video.subprocesses import ChildProcesses

SLEEP = shutil.which("sleep") or "/bin/sleep"


def _run_in_a_job_thread(children: ChildProcesses, command: list[str]) -> tuple[threading.Thread, list[object]]:
    """Start ``command`` from a job thread; wait until it runs. The list gets its result or what it raised."""
    outcome: list[object] = []

    def job() -> None:
        try:
            outcome.append(children.run(command, timeout=60))
        except ChildProcessError as error:
            outcome.append(error)

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 10
    while not children.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread, outcome


def test_a_child_is_outside_our_process_group_and_end_all_stops_it_and_refuses_new_ones() -> None:
    # GIVEN a long child process started from a job thread
    children = ChildProcesses()
    job, outcome = _run_in_a_job_thread(children, [SLEEP, "30"])
    (child,) = children.pids()

    # THEN it leads its own process group: a signal to ours would not reach it
    assert os.getpgid(child) == child != os.getpgid(0)

    # WHEN the jobs are given up
    started = time.monotonic()
    assert children.end_all(grace_seconds=10) == 1
    job.join(timeout=15)

    # THEN it ended at once on SIGTERM (not with SIGKILL after the 10 s grace), the job thread learnt that its job was
    # given up (not a result to judge), and no new child may start
    assert time.monotonic() - started < 5
    (error,) = outcome
    assert isinstance(error, ChildProcessError)
    assert f"exit code {-signal.SIGTERM}: the job was given up" in str(error)
    with pytest.raises(ChildProcessError, match="worker stopping"):
        children.run([SLEEP, "0"], timeout=5)


def test_a_child_that_catches_sigterm_and_exits_with_an_error_code_is_still_reported_as_given_up(
    tmp_path: Path,
) -> None:
    # GIVEN a child that, like ffmpeg, catches SIGTERM and exits with an error code of its own (255), which would read
    # like a failure of the input (a corrupt video: a permanent failure record for a job that was only given up)
    children = ChildProcesses()
    ready = tmp_path / "trap-set"
    script = f"trap 'exit 255' TERM; touch {ready}; while :; do sleep 0.05; done"
    job, outcome = _run_in_a_job_thread(children, ["/bin/sh", "-c", script])
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)

    # WHEN the jobs are given up
    children.end_all(grace_seconds=2)
    job.join(timeout=10)

    # THEN the job thread gets ChildProcessError (a transient end: its message was released), not exit code 255
    (error,) = outcome
    assert isinstance(error, ChildProcessError), error
    assert "exit code 255: the job was given up (worker stopping)" in str(error)


def test_a_timeout_kills_the_child_like_subprocess_run() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        ChildProcesses().run([SLEEP, "30"], timeout=0.2)
