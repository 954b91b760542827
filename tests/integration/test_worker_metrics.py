"""The worker's job metrics: EMF documents to the CloudWatch agent's listener, received here on a local UDP socket."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqs_decoupling.video")

from sqs_decoupling.contracts import telemetry
from sqs_decoupling.contracts.telemetry import MetricPoint
from sqs_decoupling.video.jobs import VideoJob, sqs_body_for
from sqs_decoupling.worker_fleet.worker.metrics import MetricsEmitter
from tests.integration.conftest import send_messages
from tests.support.videos import cached_video_bytes
from tools.localcloud.server import wait_until


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    """A UDP socket on a free localhost port, standing in for the agent's EMF listener."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    yield listener
    listener.close()


def received(listener: socket.socket) -> list[dict[str, Any]]:
    documents = []
    while True:
        try:
            data = listener.recv(65536)
        except TimeoutError:
            return documents
        documents.extend(json.loads(line) for line in data.decode().splitlines())


def metric_values(documents: list[dict[str, Any]]) -> dict[str, list[tuple[float, dict[str, str]]]]:
    """Metric name -> [(value, dimensions)], checking each document is valid EMF for the contract's namespace."""
    found: dict[str, list[tuple[float, dict[str, str]]]] = {}
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == telemetry.METRICS_NAMESPACE
        dimensions = {name: document[name] for group in directive["Dimensions"] for name in group}
        for metric in directive["Metrics"]:
            values = document[metric["Name"]]
            for value in values if isinstance(values, list) else [values]:
                found.setdefault(metric["Name"], []).append((value, dimensions))
    return found


def test_points_become_emf_documents_one_per_dimension_set(udp_listener: socket.socket) -> None:
    # GIVEN an emitter pointed at the local listener
    host, port = udp_listener.getsockname()
    emitter = MetricsEmitter(f"udp://{host}:{port}")

    # WHEN a success and a failure with a reason are emitted
    emitter.emit(
        [
            MetricPoint(telemetry.VIDEOS_PROCESSED, "Count", 1),
            MetricPoint(telemetry.PROCESSING_SECONDS, "Seconds", 2.5),
            MetricPoint(telemetry.VIDEOS_FAILED, "Count", 1, {telemetry.FAILURE_REASON_DIMENSION: "not_a_video"}),
        ]
    )
    emitter.close()

    # THEN two documents arrive: the reason labels only the failure, and every metric has service=video-worker
    documents = received(udp_listener)
    assert len(documents) == 2
    assert metric_values(documents) == {
        "VideosProcessed": [(1.0, {"service": "video-worker"})],
        "ProcessingSeconds": [(2.5, {"service": "video-worker"})],
        "VideosFailed": [(1.0, {"service": "video-worker", "reason": "not_a_video"})],
    }


def test_documents_name_the_fleets_log_group_so_the_agent_files_them_there(udp_listener: socket.socket) -> None:
    # GIVEN an emitter with the log group the fleet passes in WORKER_METRICS_LOG_GROUP
    host, port = udp_listener.getsockname()
    emitter = MetricsEmitter(f"udp://{host}:{port}", log_group="/WorkerFleetStack/video-worker")

    # WHEN a metric is emitted
    emitter.emit([MetricPoint(telemetry.VIDEOS_PROCESSED, "Count", 1)])
    emitter.close()

    # THEN the document names that group (the agent would otherwise use emf/logs/default, which the role may not
    # create)
    (document,) = received(udp_listener)
    assert document["_aws"]["LogGroupName"] == "/WorkerFleetStack/video-worker"


def test_without_an_endpoint_nothing_is_sent_and_a_bad_endpoint_is_refused() -> None:
    assert not MetricsEmitter(None).enabled
    MetricsEmitter(None).emit([MetricPoint(telemetry.VIDEOS_PROCESSED, "Count", 1)])  # no socket, no error
    with pytest.raises(ValueError, match="udp://host:port or tcp://host:port"):
        MetricsEmitter("http://127.0.0.1:25888")


def test_the_worker_process_sends_job_metrics_to_the_endpoint(
    worker_env, client, make_queue, sqs, udp_listener: socket.socket
) -> None:
    # GIVEN a video, a text file posing as one, and S3's s3:TestEvent on the queue
    s3 = client("s3")
    suffix = uuid.uuid4().hex[:8]
    uploads, output = f"uploads-{suffix}", f"processed-{suffix}"
    s3.create_bucket(Bucket=uploads)
    s3.create_bucket(Bucket=output)
    bodies = []
    for key, data in (("uploads/clip.mp4", cached_video_bytes()), ("uploads/notes.mp4", b"not a video\n")):
        etag = s3.put_object(Bucket=uploads, Key=key, Body=data)["ETag"]
        bodies.append(sqs_body_for(VideoJob(bucket=uploads, key=key, version_id=None, etag=etag, size=len(data))))
    bodies.append(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": uploads}))
    queue = make_queue()
    send_messages(sqs, queue.url, bodies)

    # WHEN the real worker runs with WORKER_METRICS_ENDPOINT pointing at the listener
    host, port = udp_listener.getsockname()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sqs_decoupling.worker_fleet.worker",
            "--queue-url",
            queue.url,
            "--output-bucket",
            output,
            "--wait-seconds",
            "1",
        ],
        env=worker_env | {telemetry.WORKER_METRICS_ENDPOINT_ENV: f"udp://{host}:{port}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    documents: list[dict[str, Any]] = []
    try:
        wait_until(
            lambda: documents.extend(received(udp_listener)) or len(metric_values(documents)) >= 5,
            timeout=60,
            what="the job metrics",
        )
    finally:
        worker.terminate()
        worker.communicate(timeout=60)

    # THEN the listener got one of each outcome, with the reason on the failure, and the jobs in flight
    metrics = metric_values(documents)
    assert metrics["VideosProcessed"] == [(1.0, {"service": "video-worker"})]
    assert len(metrics["ProcessingSeconds"]) == 1
    assert metrics["VideosFailed"] == [(1.0, {"service": "video-worker", "reason": "not_a_video"})]
    assert metrics["InputsIgnored"] == [(1.0, {"service": "video-worker"})]
    assert metrics["JobsInFlight"][0][1] == {"service": "video-worker"}
