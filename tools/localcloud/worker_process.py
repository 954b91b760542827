"""The real worker (``python -m sqs_decoupling.worker_fleet.worker``) as a subprocess against moto server, with its
JSON logs tallied live."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqs_decoupling.contracts.worker import IMDS_URL_ENV
from tools.localcloud.paths import REPO_ROOT


class WorkerProcess:
    """``python -m sqs_decoupling.worker_fleet.worker --queue-url ... --output-bucket ...``; counts "job finished"
    outcomes from its logs and keeps its final counters line (``{"jobs": ..., "requests": ...}``, printed after a
    clean stop).

    ``imds_url``: an instance metadata service for the worker to read (a test's fake, e.g. to post a Spot
    interruption notice); without it the worker runs as on premises (AWS_EC2_METADATA_DISABLED)."""

    def __init__(
        self,
        *,
        queue_url: str,
        output_bucket: str,
        env: Mapping[str, str],
        log_path: Path,
        concurrency: int = 2,
        wait_seconds: int = 1,
        extra_args: Sequence[str] = (),
        imds_url: str | None = None,
    ) -> None:
        self.log_path = log_path
        self.outcomes: Counter[str] = Counter()
        self.transient_failures = 0
        self.final: dict[str, Any] | None = None
        self._lock = threading.Lock()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sqs_decoupling.worker_fleet.worker",
                "--queue-url",
                queue_url,
                "--output-bucket",
                output_bucket,
                "--concurrency",
                str(concurrency),
                "--wait-seconds",
                str(wait_seconds),
                *extra_args,
            ],
            cwd=REPO_ROOT,
            env=_with_imds(env, imds_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, not the worker's
        )
        self._reader = threading.Thread(target=self._read, name="worker-log-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            with self._lock:
                if entry.get("message") == "job finished":
                    self.outcomes[str(entry.get("outcome"))] += 1
                elif str(entry.get("message", "")).startswith("job failed"):
                    self.transient_failures += 1
                elif "jobs" in entry and "requests" in entry:
                    self.final = entry

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.outcomes)

    def request_stop(self) -> None:
        """SIGTERM: the worker stops taking jobs and drains; :meth:`stop` waits for it to exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (the worker drains), wait for it to exit; return its exit code."""
        self.request_stop()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(timeout=5)
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL: no drain, no deletes; held messages come back when their visibility timeout runs out."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
        self._log.close()


def _with_imds(env: Mapping[str, str], imds_url: str | None) -> dict[str, str]:
    if imds_url is None:
        return dict(env) | {"AWS_EC2_METADATA_DISABLED": "true"}
    # The credentials come from the environment, so boto3 never asks this IMDS for any.
    return {k: v for k, v in env.items() if k != "AWS_EC2_METADATA_DISABLED"} | {IMDS_URL_ENV: imds_url}
