"""Child processes (ffmpeg) that a group signal cannot reach and that the worker can end when it gives up a job.

Each child starts in its own session (``start_new_session=True``), so it is not in the consumer's process group:
``systemctl stop`` with ``KillMode=mixed``, a shell's Ctrl-C or ``kill -TERM -<pgid>`` reach the worker only, and
the worker decides what happens to the transcodes in flight (let them finish within the drain time).

The price of leaving the process group is that nobody else ends these children, so the worker must: at the drain
deadline it releases the jobs still running and calls :meth:`ChildProcesses.end_all`, which ends every child it
is still waiting for and refuses to start new ones. At that moment every job still running has been given up, so
"every child" is exactly "the children of the jobs given up".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any


class ChildProcesses:
    """The children started through :meth:`run` that have not exited yet. Safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._closed = False

    def run(self, command: Sequence[str], *, timeout: float, **popen: Any) -> subprocess.CompletedProcess[str]:
        """Like ``subprocess.run(command, capture_output=True, text=True, timeout=timeout)``, in a new session.

        Raises ``subprocess.TimeoutExpired`` (the child killed) like ``subprocess.run``, and ``ChildProcessError``
        once :meth:`end_all` was called. ``popen``: further ``Popen`` arguments.
        """
        with self._lock:
            if self._closed:
                raise ChildProcessError("not starting a new process: the jobs were given up (worker stopping)")
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                **popen,
            )
            self._running.add(process)
        try:
            with process:
                try:
                    stdout, stderr = process.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
                    raise
        finally:
            with self._lock:
                self._running.discard(process)
        return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)

    def pids(self) -> list[int]:
        """Process ids of the children running now."""
        with self._lock:
            return [process.pid for process in self._running]

    def end_all(self, grace_seconds: float = 2.0) -> int:
        """Refuse new children; SIGTERM each running one, SIGKILL it after ``grace_seconds``. Returns how many."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        return len(running)


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    # The child leads its own session and process group (pgid == pid), so this also reaches anything it started.
    with contextlib.suppress(ProcessLookupError):  # it has just exited
        os.killpg(process.pid, signum)


children = ChildProcesses()
"""The process-wide registry ``video_processing.ffmpeg`` runs ffmpeg through."""
