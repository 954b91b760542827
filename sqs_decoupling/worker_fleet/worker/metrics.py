"""The worker's metrics: CloudWatch embedded metric format (EMF) documents sent to the CloudWatch agent.

On EC2 the agent listens for EMF on ``udp://127.0.0.1:25888`` (``tcp://`` works too) and turns each document into
metrics; the worker sets the endpoint from :data:`~sqs_decoupling.contracts.telemetry.WORKER_METRICS_ENDPOINT_ENV`, and
with none set it sends nothing. Names, namespace and the ``service`` dimension are the telemetry contract's
(:mod:`sqs_decoupling.contracts.telemetry`), so the fleet's metrics sit beside the Lambda's.

Documents are built by Powertools' EMF provider (``AmazonCloudWatchEMFProvider``: unit and dimension checks, the EMF
schema). Powertools' ``Metrics`` class itself does not fit here: its metric set is shared by every instance in the
process and flushing prints to stdout, while the worker emits from many job threads to a socket. So each call
serializes its own small document and sends it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from sqs_decoupling.contracts import telemetry
from sqs_decoupling.contracts.telemetry import MetricPoint

log = logging.getLogger(__name__)


def parse_endpoint(endpoint: str) -> tuple[str, str, int]:
    """``udp://127.0.0.1:25888`` -> ``("udp", "127.0.0.1", 25888)``; ValueError saying what is accepted."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or port is None:
        raise ValueError(
            f"{telemetry.WORKER_METRICS_ENDPOINT_ENV}={endpoint!r} is not an EMF endpoint: use udp://host:port or "
            f"tcp://host:port (the CloudWatch agent listens on {telemetry.CLOUDWATCH_AGENT_EMF_ENDPOINT})"
        )
    return parts.scheme, parts.hostname, port


class MetricsEmitter:
    """Sends metric points as EMF documents to ``endpoint``; ``None`` sends nothing. Safe to call from any thread.

    A metric that cannot be sent is logged once and dropped: metrics never fail a job.
    """

    def __init__(
        self, endpoint: str | None, *, service: str = telemetry.WORKER_SERVICE_NAME, log_group: str | None = None
    ) -> None:
        self._target = parse_endpoint(endpoint) if endpoint else None
        self._service = service
        # The CloudWatch agent files a document under _aws.LogGroupName; without one it uses "emf/logs/default",
        # which the fleet's role may not create, so the metrics would be lost.
        self._log_group = log_group
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._target is not None

    def emit(self, points: Sequence[MetricPoint]) -> None:
        """One document per distinct set of extra dimensions (a reason must not label the other metrics)."""
        if self._target is None or not points:
            return
        groups: dict[tuple[tuple[str, str], ...], list[MetricPoint]] = {}
        for point in points:
            groups.setdefault(tuple(sorted(point.dimensions.items())), []).append(point)
        for dimensions, group in groups.items():
            self._send(self._document(dict(dimensions), group))

    def in_flight(self, jobs: int) -> None:
        self.emit([MetricPoint(telemetry.JOBS_IN_FLIGHT, "Count", jobs)])

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _document(self, dimensions: dict[str, str], points: Sequence[MetricPoint]) -> str:
        provider = AmazonCloudWatchEMFProvider(
            namespace=telemetry.METRICS_NAMESPACE, service=self._service, metric_set={}, dimension_set={}
        )
        for name, value in dimensions.items():
            provider.add_dimension(name=name, value=value)
        for point in points:
            provider.add_metric(name=point.name, unit=MetricUnit(point.unit), value=point.value)
        document: dict[str, Any] = dict(provider.serialize_metric_set())
        if self._log_group:
            document["_aws"] = {**document["_aws"], "LogGroupName": self._log_group}
        return json.dumps(document, separators=(",", ":")) + "\n"

    def _send(self, document: str) -> None:
        assert self._target is not None
        scheme, host, port = self._target
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = _connect(scheme, host, port)
                self._socket.sendall(document.encode())
            except OSError as error:
                if self._socket is not None:
                    self._socket.close()
                    self._socket = None
                if not self._warned:  # once: an agent that is down must not flood the log
                    self._warned = True
                    log.warning(
                        "cannot send metrics to the EMF endpoint; dropping them",
                        extra={"endpoint": f"{scheme}://{host}:{port}", "error": str(error)},
                    )


def _connect(scheme: str, host: str, port: int) -> socket.socket:
    if scheme == "tcp":
        return socket.create_connection((host, port), timeout=2)
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    udp = socket.socket(family, kind, proto)
    udp.connect(address)  # a connected UDP socket: sendall() sends one datagram per document
    return udp
