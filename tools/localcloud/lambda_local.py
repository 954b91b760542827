"""Run the real Lambda handler (``sqs_decoupling.lambda_consumer.runtime.handler``) in this process, against the moto
server.

The handler logs (Powertools Logger) and emits metrics (EMF) as JSON on stdout, as it does in Lambda. Here the
lines of the threads that run it go to a log file instead of the terminal. What the handler did is read where it
is recorded: in the output bucket (manifests, failure records, latest-outcome pointers), not in these lines.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqs_decoupling.contracts import telemetry
from tools.localcloud.poller import Handler


class TextSink(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class HandlerLog:
    """The handler's stdout (JSON log lines, EMF metric documents), appended to ``path``; safe from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, text: str, /) -> int:
        with self._lock:
            return self._file.write(text)

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout that sends what chosen threads write to their own sink (the poller's to the handler's log)."""

    def __init__(self, default: TextIO) -> None:
        self._default = default
        self._routes: dict[int, TextSink] = {}

    def _target(self) -> TextSink:
        return self._routes.get(threading.get_ident(), self._default)

    def write(self, text: str, /) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._default.isatty()

    # typeshed declares TextIOBase.encoding a plain attribute; at run time it is a read-only property, so a
    # property is the only way to give the terminal's encoding.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._default, "encoding", "utf-8")

    @contextmanager
    def route(self, sink: TextSink) -> Iterator[None]:
        ident = threading.get_ident()
        self._routes[ident] = sink
        try:
            yield
        finally:
            self._routes.pop(ident, None)


def _routed_stdout() -> _ThreadRoutedStdout:
    if not isinstance(sys.stdout, _ThreadRoutedStdout):
        sys.stdout = _ThreadRoutedStdout(sys.stdout)
    return sys.stdout


def load_handler(*, output_bucket: str, max_video_bytes: int, log: HandlerLog) -> Handler:
    """Import the real handler configured as the stack configures the function; return a callable that runs it
    with its stdout (logs, metrics) going to ``log``. AWS endpoint and credentials come from the environment."""
    from sqs_decoupling.contracts.lambda_function import Settings

    # The handler's own settings contract writes the variables, as the stack does for the real function.
    os.environ.update(Settings(output_bucket=output_bucket, max_video_bytes=max_video_bytes).environment())
    os.environ.update(
        {
            "POWERTOOLS_SERVICE_NAME": telemetry.LAMBDA_SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": telemetry.METRICS_NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    stdout = _routed_stdout()
    from sqs_decoupling.lambda_consumer.runtime import handler as module

    # Powertools' Logger keeps the stream it found when the module was first imported (maybe earlier in this
    # process, e.g. by a test): point its handler at the routed stdout whenever the handler is loaded.
    registered = module.logger.registered_handler
    if isinstance(registered, logging.StreamHandler):
        registered.setStream(stdout)
    module.s3_client.cache_clear()  # a client for this endpoint, not one made earlier in the process
    module.settings.cache_clear()  # the settings just set, not ones parsed earlier in the process

    def invoke(event: dict[str, Any], context: Any) -> Any:
        with stdout.route(log):
            return module.lambda_handler(event, context)

    return invoke
