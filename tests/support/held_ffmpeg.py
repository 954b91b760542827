"""Hold a worker subprocess's jobs mid-ffmpeg, so a test can stop or interrupt it while a job is certainly running.

A job of the real worker takes 0.15 s on a small clip: a test that waits to see one in flight and then signals the
worker races the job's end (and the queue's in-flight count also holds messages a killed worker took). Instead, the
worker is given, through ``IMAGEIO_FFMPEG_EXE``, a stand-in that marks that it started, waits for :meth:`release`
and then runs the real ffmpeg with the same arguments. What ffmpeg does is unchanged; only when it starts is the
test's to choose. The stand-in runs where ffmpeg would: in its own process group, which the worker ends when it gives
a job up.

The in-process worker tests hold a job the same way with a handler that waits (``HeldJob`` in test_worker_spot.py).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sqs_decoupling.video.ffmpeg import ffmpeg_exe

# A stand-in nobody releases (a test that failed before its release) gives up waiting after this long and runs ffmpeg,
# so no process outlives its test by more than that.
MAX_HOLD_SECONDS = 60
_POLL_SECONDS = 0.05


class HeldFfmpeg:
    """``env``: the variables to add to a worker's environment; ``started()``: how many ffmpeg runs have begun (and
    wait); ``release()``: let them, and every later one, run."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self._directory = directory
        self._gate = directory / "released"
        script = directory / "ffmpeg"
        polls = int(MAX_HOLD_SECONDS / _POLL_SECONDS)
        script.write_text(
            "#!/bin/sh\n"
            f": > {shlex.quote(str(directory))}/started.$$\n"
            "polls=0\n"
            f"while [ ! -e {shlex.quote(str(self._gate))} ] && [ $polls -lt {polls} ]; do\n"
            f"  sleep {_POLL_SECONDS}\n"
            "  polls=$((polls + 1))\n"
            "done\n"
            f'exec {shlex.quote(ffmpeg_exe())} "$@"\n'
        )
        script.chmod(0o755)
        self.env = {"IMAGEIO_FFMPEG_EXE": str(script)}

    def started(self) -> int:
        return len(list(self._directory.glob("started.*")))

    def release(self) -> None:
        self._gate.touch()
