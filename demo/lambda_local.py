"""Run the real Lambda handler (``lambdas.video_processor.handler``) in this process, against moto server.

The handler logs (Powertools Logger) and emits metrics (EMF) as JSON on stdout, as it does in Lambda. Here those
lines go to a log file instead of the terminal, and are tallied: processed, duplicates, permanent failures.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from demo.poller import Handler

# The "outcome" field of the handler's log lines (video_processing.pipeline.OutcomeKind) -> the demo's name.
OUTCOMES = {"processed": "processed", "duplicate": "duplicate", "failed": "permanent_failure"}


class HandlerLogTap(io.TextIOBase):
    """A text stream that keeps the handler's JSON log lines in a file and counts the outcomes they report."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._buffer = ""
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.failure_reasons: Counter[str] = Counter()
        self.malformed = 0

    def write(self, text: str) -> int:
        with self._lock:
            self._file.write(text)
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
            for line in lines:
                self._tally(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        super().close()
        self._file.close()

    def _tally(self, line: str) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            return
        if not isinstance(entry, dict):
            return
        message = str(entry.get("message", ""))
        outcome = OUTCOMES.get(str(entry.get("outcome")))
        if outcome:
            self.outcomes[outcome] += 1
            if outcome == "permanent_failure":
                self.failure_reasons[str(entry.get("reason"))] += 1
        elif message.startswith("Malformed message"):
            self.malformed += 1


class _ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout that sends what chosen threads write to their own stream (the poller's to the log tap)."""

    def __init__(self, default: TextIO) -> None:
        self._default = default
        self._routes: dict[int, TextIO] = {}

    def _target(self) -> TextIO:
        return self._routes.get(threading.get_ident(), self._default)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._default.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._default, "encoding", "utf-8")

    @contextmanager
    def route(self, stream: TextIO) -> Iterator[None]:
        ident = threading.get_ident()
        self._routes[ident] = stream
        try:
            yield
        finally:
            self._routes.pop(ident, None)


def _routed_stdout() -> _ThreadRoutedStdout:
    if not isinstance(sys.stdout, _ThreadRoutedStdout):
        sys.stdout = _ThreadRoutedStdout(sys.stdout)
    return sys.stdout


def load_handler(*, output_bucket: str, max_video_bytes: int, tap: HandlerLogTap) -> Handler:
    """Import the real handler configured as the stack configures the function; return a callable that runs it
    with its stdout (logs, metrics) going to ``tap``. AWS endpoint and credentials come from the environment."""
    os.environ.update(
        {
            "OUTPUT_BUCKET": output_bucket,
            "MAX_VIDEO_BYTES": str(max_video_bytes),
            "POWERTOOLS_SERVICE_NAME": "video-processor",
            "POWERTOOLS_METRICS_NAMESPACE": "SqsDecoupling/VideoPipeline",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    stdout = _routed_stdout()
    from lambdas.video_processor import handler as module

    # Powertools' Logger keeps the stream it found when the module was first imported (maybe earlier in this
    # process, e.g. by a test): point its handler at the routed stdout whenever the handler is loaded.
    registered = module.logger.registered_handler
    if isinstance(registered, logging.StreamHandler):
        registered.setStream(stdout)
    module.s3_client.cache_clear()  # a client for this endpoint, not one made earlier in the process
    module.settings.cache_clear()  # the settings just set, not ones parsed earlier in the process

    def invoke(event: dict[str, Any], context: Any) -> Any:
        with stdout.route(tap):  # type: ignore[arg-type]
            return module.lambda_handler(event, context)

    return invoke
