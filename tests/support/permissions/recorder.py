"""Records the AWS calls the runtime makes in the moto-server runs, as ``Call``s for the permission rehearsal.

    with CallRecorder(tmp_path, symbols={queue_url: "<jobs_queue>", bucket: "<processed_bucket>"}) as recording:
        with recording.as_principal("lambda"):
            handler(event, context)                      # in this process (and the threads it starts)
        worker = subprocess.Popen(argv, env=env | recording.subprocess_env("worker", env))  # a subprocess
        ...
    assert_catalogued(recording.calls(), needs=[("worker", "sqs", "ReceiveMessage")])

In this process, only calls made while a principal is active are recorded: the test's own set-up and inspection
calls never are. A principal is active in the ``as_principal`` block's thread and in every thread started from it
(a worker's job threads, s3transfer's, the poller's), until that thread ends. A subprocess records every call it
makes, through ``site/sitecustomize.py``.

Recorded values are symbolized when read: a value in ``symbols`` (a queue URL, a bucket name, a key ARN...) becomes
its symbol, and so does a queue URL or an ARN whose last part is in ``symbols``; anything else is kept, so a
resource the test did not name stays concrete and no catalogue entry covers it.

Wired into the moto runs (each asserts ``assert_catalogued`` in its THEN part):

- tests/integration/test_end_to_end_faults.py: the Lambda path (handler and poller, "lambda") and three
  ``python -m sqs_decoupling.worker_fleet.worker`` subprocesses ("worker");
- tests/integration/test_user_data_install.py: the worker the user data installs, under /usr/bin/python3.11;
- tests/integration/test_worker_process.py: ``python -m sqs_decoupling.worker_fleet.worker`` releasing jobs at its
drain deadline (the same
  ChangeMessageVisibilityBatch its heartbeats send, which the fault test's workers send only when a job runs long);
- tests/integration/test_worker_video_jobs.py: ``python -m sqs_decoupling.worker_fleet.worker`` opening client-side
encrypted bodies (KMS);
- tests/integration/test_worker_autoscaling.py: the group lookup, scale-in protection, the lifecycle hook calls
  (against botocore's Stubber: moto lacks them; recorded all the same, the Stubber answers inside the same call);
- tests/unit/producer/test_producer.py: the sqs-submit CLI, plain and encrypting ("producer");
- tests/unit/lambdas/test_video_processor_encryption.py: the handler opening an encrypted body (in-process moto).

The demo's flow (tools/demo/flow.py) runs the same handler, poller, worker and sqs_decoupling.producer.submit, but only
under ``make demo`` (a real CDK deploy into moto): no test runs it.

With ``PERMISSION_CALLS_OUT=<file>`` in the environment, each recording appends its symbolized calls to that file as
JSON lines (``python -m tests.support.permissions.table <file>`` prints them as a table).
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.permissions import hook
from tests.support.permissions.calls import CATALOGUE, Call, CatalogueEntry, uncovered
from tests.support.permissions.table import row_text

SITE_DIR = Path(__file__).parent / "site"
"""Put first on a subprocess's PYTHONPATH (with the variables below) to record its calls."""
CALL_LOG_ENV = "PERMISSION_CALL_LOG"
PRINCIPAL_ENV = "PERMISSION_PRINCIPAL"
CALLS_OUT_ENV = "PERMISSION_CALLS_OUT"

_principal: contextvars.ContextVar[str | None] = contextvars.ContextVar("permission_principal", default=None)


class CallRecorder:
    """Records botocore API calls while entered; see the module's docstring. ``log_dir`` holds the subprocesses'
    call log; ``symbols`` maps concrete names (queue URLs or names, bucket names, ARNs, ids) to symbols."""

    def __init__(self, log_dir: Path, symbols: Mapping[str, str] | None = None) -> None:
        self.symbols: dict[str, str] = dict(symbols or {})
        self.principal_symbols: dict[str, dict[str, str]] = {}
        """Symbols for one principal's calls only (``{"worker": {fleet_queue_url: "<jobs_queue>"}}``), consulted
        before ``symbols``: where a test runs two stacks' consumers, a worker call on the Lambda path's queue stays
        concrete, so no catalogue entry covers it."""
        self.subprocess_log = log_dir / "permission-calls.jsonl"
        self._raw: list[tuple[str, str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._thread_start: Callable[[threading.Thread], None] | None = None

    # -- in this process --------------------------------------------------------------------------------------

    def __enter__(self) -> CallRecorder:
        hook.install(self._on_call)
        self._thread_start = start = threading.Thread.start

        def start_as_starter(thread: threading.Thread) -> None:
            # Threads start with an empty context: carry the starter's principal into the new thread's run().
            principal = _principal.get()
            if principal is not None:
                run = thread.run

                def run_as_principal() -> None:
                    _principal.set(principal)
                    run()

                thread.run = run_as_principal  # type: ignore[method-assign]
            start(thread)

        threading.Thread.start = start_as_starter  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc_info: object) -> None:
        hook.uninstall()
        if self._thread_start is not None:
            threading.Thread.start = self._thread_start  # type: ignore[method-assign,assignment]
            self._thread_start = None
        out = os.environ.get(CALLS_OUT_ENV)
        if out:
            with open(out, "a", encoding="utf-8") as file:
                file.writelines(json.dumps(_as_json(call)) + "\n" for call in self.calls())

    @contextmanager
    def as_principal(self, principal: str) -> Iterator[None]:
        """Calls made in this block, in this thread and the threads it starts, are ``principal``'s."""
        token = _principal.set(principal)
        try:
            yield
        finally:
            _principal.reset(token)

    @contextmanager
    def unrecorded(self) -> Iterator[None]:
        """The test's own calls made inside a principal's thread (an inspection hook in a job): not recorded."""
        token = _principal.set(None)
        try:
            yield
        finally:
            _principal.reset(token)

    def _on_call(self, service: str, operation: str, params: dict[str, str]) -> None:
        principal = _principal.get()
        if principal is not None:
            with self._lock:
                self._raw.append((principal, service, operation, params))

    # -- in subprocesses --------------------------------------------------------------------------------------

    def subprocess_env(self, principal: str, env: Mapping[str, str]) -> dict[str, str]:
        """Variables to add to ``env`` (a subprocess's environment) so that the subprocess records its calls as
        ``principal``'s: the recorder's folder first on PYTHONPATH (``env``'s own entries kept after it)."""
        python_path = os.pathsep.join(p for p in (str(SITE_DIR), env.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": python_path, CALL_LOG_ENV: str(self.subprocess_log), PRINCIPAL_ENV: principal}

    # -- reading ----------------------------------------------------------------------------------------------

    def calls(self) -> list[Call]:
        """Every call recorded so far, in this process then in subprocesses, with symbolized parameters."""
        with self._lock:
            raw = list(self._raw)
        if self.subprocess_log.exists():
            for line in self.subprocess_log.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                raw.append((entry["principal"], entry["service"], entry["operation"], entry["params"]))
        return [
            Call(
                principal,
                service,
                operation,
                {name: self.symbolize(value, principal) for name, value in params.items()},
            )
            for principal, service, operation, params in raw
        ]

    def symbolize(self, value: str, principal: str = "") -> str:
        """``value``'s symbol: its own, or that of a queue URL's last path part or an ARN's resource name. A queue
        known by its URL is known by its name too (KMS encryption contexts name the queue)."""
        symbols = self.symbols | self.principal_symbols.get(principal, {})
        symbols |= {
            name.rstrip("/").rsplit("/", 1)[-1]: symbol
            for name, symbol in symbols.items()
            if name.startswith(("http://", "https://"))
        }
        if value in symbols:
            return symbols[value]
        if value.startswith(("http://", "https://", "arn:")):
            last = value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
            return symbols.get(last, value)
        return value


@pytest.fixture
def call_recorder(tmp_path: Path) -> Iterator[CallRecorder]:
    """A :class:`CallRecorder` recording for the test's duration (its subprocess log in ``tmp_path``); add the
    test's resources to ``call_recorder.symbols``."""
    with CallRecorder(tmp_path) as recording:
        yield recording


def _as_json(call: Call) -> dict[str, Any]:
    return {
        "principal": call.principal,
        "service": call.service,
        "operation": call.operation,
        "params": dict(call.params),
    }


def assert_catalogued(
    calls: Iterable[Call],
    *,
    needs: Iterable[tuple[str, str, str]],
    catalogue: Iterable[CatalogueEntry] = CATALOGUE,
) -> None:
    """Every call is covered by a catalogue entry, and the recorder saw at least the (principal, service,
    operation) the test's behaviour ``needs`` (so a recorder that records nothing fails too)."""
    calls = list(calls)
    missing = uncovered(calls, catalogue)
    kinds: dict[str, list[Call]] = {}  # by the table's row: calls that differ only in a key's generated parts
    for call in missing:
        kinds.setdefault(row_text(call), []).append(call)
    assert not missing, (
        f"{len(missing)} recorded AWS call(s) have no entry in the permission catalogue:\n"
        + "\n".join(
            f"  {describe(same[0])}" + (f" and {len(same) - 1} more like it" if len(same) > 1 else "")
            for same in kinds.values()
        )
        + "\nAdd a CatalogueEntry for each to CATALOGUE in tests/support/permissions/calls.py (principal, service, "
        "operation, and an fnmatch pattern for each parameter that names a resource), and its IAM action and ARN "
        "mapping, so the permission rehearsal checks the role allows it."
    )
    seen = {(call.principal, call.service, call.operation) for call in calls}
    unseen = [need for need in needs if need not in seen]
    assert not unseen, f"the recorder did not see {unseen}; it saw {sorted(seen)}"


def describe(call: Call) -> str:
    params = ", ".join(f"{name}={value!r}" for name, value in sorted(call.params.items()))
    return f"{call.principal}: {call.service}.{call.operation}({params})"
