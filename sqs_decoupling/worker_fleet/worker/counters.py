"""Counts of what the worker did and of the AWS requests it made, safe to update from any thread."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from botocore.client import BaseClient


class Counters:
    """Job counts (``received``, ``succeeded``, ``duplicates``, ``permanent_failures``, ``transient_failures``,
    ``ignored``, ``deleted``, ``delete_failures``, ``released``, ``heartbeats``...) and requests per
    ``service.Operation``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._jobs[name] += amount

    def add_request(self, operation: str) -> None:
        with self._lock:
            self._requests[operation] += 1

    def get(self, name: str) -> int:
        with self._lock:
            return self._jobs[name]

    def jobs(self) -> dict[str, int]:
        with self._lock:
            return dict(self._jobs)

    def requests(self) -> dict[str, int]:
        """HTTP requests per ``service.Operation`` (retries included: each one is billed)."""
        with self._lock:
            return dict(self._requests)

    def total_requests(self, service: str) -> int:
        with self._lock:
            return sum(n for op, n in self._requests.items() if op.startswith(f"{service}."))


def count_requests(client: BaseClient, counters: Counters) -> None:
    """Count every HTTP request ``client`` sends, retries included, into ``counters``."""
    service = client.meta.service_model.service_id.hyphenize()

    def on_send(event_name: str, **_: Any) -> None:
        # event_name is "before-send.<service>.<Operation>"
        counters.add_request(f"{service}.{event_name.rsplit('.', 1)[-1]}")

    # A unique_id makes registering twice for the same client harmless.
    client.meta.events.register(f"before-send.{service}", on_send, unique_id=f"worker-count-{id(counters)}")
