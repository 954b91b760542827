"""ChildProcesses: children in their own session, ended (and no new ones started) when the worker gives up jobs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from video_processing.subprocesses import ChildProcesses

SLEEP = shutil.which("sleep") or "/bin/sleep"


def test_a_child_is_outside_our_process_group_and_end_all_stops_it_and_refuses_new_ones() -> None:
    # GIVEN a long child process started from a job thread
    children = ChildProcesses()
    results: list[subprocess.CompletedProcess[str]] = []
    job = threading.Thread(target=lambda: results.append(children.run([SLEEP, "30"], timeout=60)))
    job.start()
    deadline = time.monotonic() + 10
    while not children.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    (child,) = children.pids()

    # THEN it leads its own process group: a signal to ours would not reach it
    assert os.getpgid(child) == child != os.getpgid(0)

    # WHEN the jobs are given up
    started = time.monotonic()
    assert children.end_all(grace_seconds=2) == 1
    job.join(timeout=10)

    # THEN it ended at once on SIGTERM, the job thread got its result, and no new child may start
    assert time.monotonic() - started < 2
    assert [result.returncode for result in results] == [-signal.SIGTERM]
    with pytest.raises(ChildProcessError, match="worker stopping"):
        children.run([SLEEP, "0"], timeout=5)


def test_a_timeout_kills_the_child_like_subprocess_run() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        ChildProcesses().run([SLEEP, "30"], timeout=0.2)
