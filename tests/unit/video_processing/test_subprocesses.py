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
        ChildProcesses().run([SLEEP, "30"], timeout=0.05)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="Linux's pidfd_open: elsewhere the run polls (next test)")
def test_a_run_returns_when_the_child_exits_without_polling_and_leaves_no_descriptor_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN subprocess's polling wait made to fail in this thread (other threads of the process sleep as usual):
    # Popen.wait with a timeout sleeps between polls (up to 50 ms each in CPython 3.11), so a run that polled would end
    # up to 50 ms after its child did
    this_thread, sleep = threading.current_thread(), time.sleep

    def no_polling(seconds: float) -> None:
        if threading.current_thread() is this_thread:
            raise AssertionError(f"the run polled (slept {seconds} s) instead of waiting for the child's exit")
        sleep(seconds)

    children = ChildProcesses()
    before = _open_descriptors()
    monkeypatch.setattr(subprocess.time, "sleep", no_polling)
    # WHEN children that run 50 ms, fail and time out are run
    finished = children.run(["/bin/sh", "-c", "sleep 0.05; echo done"], timeout=10)
    failed = children.run(["/bin/sh", "-c", "exit 3"], timeout=10)
    with pytest.raises(subprocess.TimeoutExpired):
        children.run([SLEEP, "30"], timeout=0.05)
    monkeypatch.undo()
    # THEN each returned as its child ended, with its exit code and output, and no descriptor was left open
    assert (finished.returncode, finished.stdout, failed.returncode) == (0, "done\n", 3)
    assert _open_descriptors() == before


def test_where_the_system_has_no_pidfd_a_run_polls_as_subprocess_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a system without pidfd_open (macOS), or one that refuses the call (an older kernel, a sandbox)
    def refused(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    for pidfd_open in (None, refused):
        if pidfd_open is None:
            monkeypatch.delattr(os, "pidfd_open", raising=False)
        else:
            monkeypatch.setattr(os, "pidfd_open", refused, raising=False)
        children = ChildProcesses()
        # WHEN a child is run, and another outlives its timeout
        result = children.run(["/bin/sh", "-c", "sleep 0.02; echo done"], timeout=10)
        with pytest.raises(subprocess.TimeoutExpired):
            children.run([SLEEP, "30"], timeout=0.05)
        # THEN the run still returns its result, and the timeout still kills the child
        assert (result.returncode, result.stdout, children.pids()) == (0, "done\n", [])
