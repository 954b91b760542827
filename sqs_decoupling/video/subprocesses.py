"""Child processes (ffmpeg) that a group signal cannot reach and that the worker can end when it gives up a job.

Each child starts in its own session (``start_new_session=True``), so it is not in the consumer's process group:
``systemctl stop`` with ``KillMode=mixed``, a shell's Ctrl-C or ``kill -TERM -<pgid>`` reach the worker only, and
the worker decides what happens to the transcodes in flight (let them finish within the drain time).

The price of leaving the process group is that nobody else ends these children, so the worker must: at the drain
deadline it releases the jobs still running and calls :meth:`ChildProcesses.end_all`, which ends every child it
is still waiting for and refuses to start new ones. At that moment every job still running has been given up, so
"every child" is exactly "the children of the jobs given up".

What a child prints is read as it comes, by one thread per stream, and only its first and last ``KEPT_BYTES`` are
kept (:class:`BoundedOutput`): the consumer's memory does not grow with what a child prints. A child that prints
more than anyone should keep (ffmpeg's per-packet lines) hands each stdout line to a callback instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Final

# What is kept of each end of a child's stdout and stderr: enough for ffmpeg's error lines, a few KiB whatever the
# child prints (a file's tags can make ffmpeg print hundreds of MB).
KEPT_BYTES: Final = 4096
_CHUNK_BYTES: Final = 65536


class ChildProcesses:
    """The children started through :meth:`run` that have not exited yet. Safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._ended: set[int] = set()  # pids end_all signalled
        self._closed = False

    def run(
        self,
        command: Sequence[str],
        *,
        timeout: float,
        on_stdout_line: Callable[[str], None] | None = None,
        **popen: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Like ``subprocess.run(command, capture_output=True, text=True, timeout=timeout)``, in a new session, with
        bounded memory: of each stream only the first and last ``KEPT_BYTES`` are kept (see :class:`BoundedOutput`).
        ``on_stdout_line``: called with each line of stdout (without its newline) as it arrives, for output too
        long to keep; the result's ``stdout`` is then empty.

        Raises ``subprocess.TimeoutExpired`` (the child killed) like ``subprocess.run``, and ``ChildProcessError``
        once :meth:`end_all` was called, or when it ended this child (whatever its exit code). ``popen``: further
        ``Popen`` arguments.
        """
        with self._lock:
            if self._closed:
                raise ChildProcessError("not starting a new process: the jobs were given up (worker stopping)")
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **popen
            )
            # Opened before the process is listed: no other thread (end_all) can have reaped it yet.
            exit_fd = _exit_fd(process)
            self._running.add(process)
        stdout, stderr = BoundedOutput(), BoundedOutput()
        assert process.stdout is not None and process.stderr is not None  # PIPE above
        readers = [
            threading.Thread(target=_drain, args=(process.stderr, stderr.add), daemon=True),
            threading.Thread(
                target=_drain_lines if on_stdout_line else _drain,
                args=(process.stdout, on_stdout_line or stdout.add),
                daemon=True,
            ),
        ]
        try:
            with process:
                for reader in readers:
                    reader.start()
                try:
                    _wait(process, timeout, exit_fd)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    raise
                finally:
                    for reader in readers:
                        reader.join()
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
            with self._lock:
                self._running.discard(process)
                ended = process.pid in self._ended
        if ended:
            # ffmpeg catches SIGTERM and exits with its own error code (255), which reads like a failure of the input:
            # say what happened instead, so that a job given up is never recorded as a bad video.
            raise ChildProcessError(
                f"ended with exit code {process.returncode}: the job was given up (worker stopping)"
            )
        return subprocess.CompletedProcess(list(command), process.returncode, stdout.text(), stderr.text())

    def pids(self) -> list[int]:
        """Process ids of the children running now."""
        with self._lock:
            return [process.pid for process in self._running]

    def end_all(self, grace_seconds: float = 2.0) -> int:
        """Refuse new children; SIGTERM each running one, SIGKILL it after ``grace_seconds``. Returns how many."""
        with self._lock:
            self._closed = True
            running = list(self._running)
            self._ended.update(process.pid for process in running)
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


class BoundedOutput:
    """What a child printed on one stream, in bounded memory: the first and last ``kept`` bytes and how many lines
    and bytes there were in all."""

    def __init__(self, kept: int = KEPT_BYTES) -> None:
        self._kept = kept
        self._head = bytearray()
        self._tail = bytearray()
        self.total_bytes = 0
        self.lines = 0

    def add(self, chunk: bytes) -> None:
        """Take the next ``chunk`` of the stream."""
        self.total_bytes += len(chunk)
        self.lines += chunk.count(b"\n")
        room = self._kept - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            del self._tail[: -self._kept]

    def text(self) -> str:
        """The kept text; where bytes were left out, one line says how many lines and bytes."""
        head = self._head.decode(errors="replace")
        if not self._tail:
            return head
        left_out = self.total_bytes - len(self._head) - len(self._tail)
        tail = self._tail.decode(errors="replace")
        if left_out == 0:
            return head + tail
        # Cut at line ends, so no half line is read as a whole one.
        head, _, _ = head.rpartition("\n")
        _, _, tail = tail.partition("\n")
        return f"{head}\n[{self.lines} lines, {self.total_bytes} bytes in all: only the first and last kept]\n{tail}"


def _drain(stream: IO[bytes], take: Callable[[bytes], None]) -> None:
    with stream:
        while chunk := os.read(stream.fileno(), _CHUNK_BYTES):
            take(chunk)


def _drain_lines(stream: IO[bytes], take: Callable[[str], None]) -> None:
    with stream:
        # Lines longer than the chunk size are cut into several: a line-oriented child never prints such lines.
        for line in iter(lambda: stream.readline(_CHUNK_BYTES), b""):
            take(line.rstrip(b"\r\n").decode(errors="replace"))


def _exit_fd(process: subprocess.Popen[bytes]) -> int | None:
    """A file descriptor that becomes readable when ``process`` exits (Linux's pidfd); None where there is none
    (macOS, a kernel before 5.3, a sandbox that refuses the call): :func:`_wait` then polls as ``Popen.wait`` does."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(process.pid))
    except OSError:
        return None


def _wait(process: subprocess.Popen[bytes], timeout: float, exit_fd: int | None) -> None:
    """``process.wait(timeout=timeout)`` that returns as soon as the child exits. ``Popen.wait`` with a timeout polls,
    sleeping up to 50 ms between polls (CPython 3.11's subprocess), and a run of ffmpeg takes 10 ms to a few seconds:
    each run would end up to 50 ms after ffmpeg did, billed in a Lambda batch's duration."""
    if exit_fd is not None:
        poller = select.poll()
        poller.register(exit_fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(process.args, timeout)
    process.wait(timeout=timeout)  # reaps the child at once when it has exited


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # The child leads its own session and process group (pgid == pid), so this also reaches anything it started.
    with contextlib.suppress(ProcessLookupError):  # it has just exited
        os.killpg(process.pid, signum)


children = ChildProcesses()
"""The process-wide registry ``sqs_decoupling.video.ffmpeg`` runs ffmpeg through."""
