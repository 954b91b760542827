"""Records the AWS calls of a Python subprocess a test starts (``python -m sqs_decoupling.worker_fleet.worker``), for
the permission rehearsal.

Python imports ``sitecustomize`` at start-up from the first folder on its path that has one; a test that wants a
subprocess's calls recorded puts this folder first on its PYTHONPATH with two variables (see
``tests.support.permissions.recorder.CallRecorder.subprocess_env``):

- ``PERMISSION_CALL_LOG``: a file; each botocore API call is appended as one JSON line
  ``{"principal", "service", "operation", "params"}`` (raw parameter values: the test symbolizes them);
- ``PERMISSION_PRINCIPAL``: whose calls they are ("worker").

Without both it does nothing. Either way it then runs the ``sitecustomize`` it hides, if any (Debian's python3.11
has one), so the interpreter behaves as it would without this folder. Nothing in the project's code knows about it.
"""

import importlib.machinery
import importlib.util
import json
import os
import sys
import threading


def _record_calls(log_path: str, principal: str) -> None:
    spec = importlib.util.spec_from_file_location(
        "_permission_call_hook", os.path.join(os.path.dirname(os.path.dirname(__file__)), "hook.py")
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    lock = threading.Lock()

    def append(service: str, operation: str, params: dict[str, str]) -> None:
        line = json.dumps({"principal": principal, "service": service, "operation": operation, "params": params})
        with lock:  # one write per line, O_APPEND: the lines of several processes never interleave
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

    hook.install(append)


def _run_the_hidden_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.environ.get("PERMISSION_CALL_LOG") and os.environ.get("PERMISSION_PRINCIPAL"):
    _record_calls(os.environ["PERMISSION_CALL_LOG"], os.environ["PERMISSION_PRINCIPAL"])
_run_the_hidden_sitecustomize()
