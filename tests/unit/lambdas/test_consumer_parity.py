"""The two consumers are adapters of one core: the same messages through the Lambda's record handler and the
worker's job handler end the same way (deleted or left on the queue), log the same lines and emit the same metrics."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sqs_decoupling.contracts.telemetry import MetricPoint
from sqs_decoupling.lambda_consumer.runtime import handler
from sqs_decoupling.queue.envelope.envelope import ENCRYPTED_PREFIX
from sqs_decoupling.worker_fleet.worker.job import JobHandler, Message
from sqs_decoupling.worker_fleet.worker.metrics import MetricsEmitter
from sqs_decoupling.worker_fleet.worker.video_jobs import make_video_handler
from tests.support.videos import cached_video_bytes
from tests.unit.lambdas.conftest import LambdaContext, Pipeline, emitted_metrics, sqs_event, sqs_record

WORKER_OUTPUT_BUCKET = "worker-processed"
WORKER_LOGGER = "sqs_decoupling.worker_fleet.worker.video_jobs"
DELETED, RETRIED = "deleted", "left on the queue"
# A metric the test sends through the worker's emitter after each message: its documents are on the listener once
# this one is (one connected socket, one thread), so the test reads up to it instead of waiting out a silence.
END_OF_MESSAGE = "TestEndOfMessage"
# What each message must come to, whichever consumer takes it: (its end, its metrics' names and extra dimensions).
EXPECTED = {
    "processed": (DELETED, [("ProcessingSeconds", ()), ("VideosProcessed", ())]),
    "duplicate": (DELETED, [("DuplicatesSkipped", ())]),
    "ignored": (DELETED, [("InputsIgnored", ())]),
    "permanent failure": (DELETED, [("VideosFailed", (("reason", "not_a_video"),))]),
    "transient failure": (RETRIED, [("TransientFailures", (("error_type", "EndpointConnectionError"),))]),
    "undecryptable body": (RETRIED, [("TransientFailures", (("error_type", "ClientSideEncryptionError"),))]),
    "malformed body": (RETRIED, [("TransientFailures", (("error_type", "MalformedMessageError"),))]),
}

Report = tuple[str, list[tuple[str, tuple[tuple[str, str], ...]]], list[tuple[str, str]]]
"""What one consumer did with one message: its end, its metrics (name, extra dimensions), its log lines."""


def metric_names(stdout: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(name, dimensions other than ``service``) of every metric in the EMF documents of ``stdout``."""
    return sorted(
        (name, tuple(sorted((k, v) for k, v in dimensions.items() if k != "service")))
        for name, points in emitted_metrics(stdout).items()
        for _, dimensions in points
    )


@pytest.fixture
def messages(pipeline: Pipeline) -> dict[str, str]:
    """One message body of each kind, from real S3 notifications where S3 makes them."""
    pipeline.s3.create_bucket(Bucket=WORKER_OUTPUT_BUCKET)
    pipeline.upload("uploads/ok.mp4", cached_video_bytes())
    pipeline.upload("uploads/notes.mp4", b"these are meeting notes, not a video\n")
    pipeline.upload("uploads/unlucky.mp4", cached_video_bytes())
    bodies = [record["body"] for record in pipeline.deliveries()]
    video, notes, unlucky = (next(b for b in bodies if name in b) for name in ("ok.mp4", "notes.mp4", "unlucky"))
    return {
        "processed": video,
        "duplicate": video,  # the same notification again, after the first was processed
        "ignored": next(b for b in bodies if "s3:TestEvent" in b),
        "permanent failure": notes,
        "transient failure": unlucky,
        "undecryptable body": ENCRYPTED_PREFIX + "bm90IGFuIGVudmVsb3Bl",
        "malformed body": '{"hello": "world"}',
    }


@pytest.fixture
def unreachable_s3_for_unlucky_thumbnails(pipeline: Pipeline) -> None:
    """S3 cannot be reached for the thumbnail of ``unlucky.mp4``, in either consumer's output bucket."""

    def fail(params: dict[str, object], **_: object) -> None:
        key = str(params.get("Key", ""))
        if "unlucky" in key and key.endswith("thumbnail.jpg"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    handler.s3_client().meta.events.register("provide-client-params.s3.PutObject", fail)


@pytest.fixture
def emf_listener() -> Iterator[socket.socket]:
    """A UDP socket on localhost standing in for the CloudWatch agent's EMF listener."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(10)  # only a lost datagram waits this long, and fails the test
    yield listener
    listener.close()


def through_the_lambda(message_id: str, body: str, logs: io.StringIO, capsys: pytest.CaptureFixture[str]) -> Report:
    try:
        response = handler.lambda_handler(sqs_event([sqs_record(body, message_id=message_id)]), LambdaContext())
        end = RETRIED if response["batchItemFailures"] else DELETED
    except BatchProcessingError:  # the only record of the batch failed
        end = RETRIED
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    said = [(line["level"], line["message"]) for line in lines if line.get("message_id") == message_id]
    return end, metric_names(capsys.readouterr().out), said


def through_the_worker(
    job: JobHandler,
    message_id: str,
    body: str,
    caplog: pytest.LogCaptureFixture,
    emitter: MetricsEmitter,
    listener: socket.socket,
) -> Report:
    try:
        job(Message(message_id=message_id, receipt_handle=f"handle-{message_id}", body=body, receive_count=1))
        end = DELETED
    except Exception:
        end = RETRIED
    emitter.emit([MetricPoint(END_OF_MESSAGE, "Count", 1)])
    documents = []
    while END_OF_MESSAGE not in (document := listener.recv(65536).decode()):
        documents.append(document)
    said = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == WORKER_LOGGER and getattr(r, "message_id", None) == message_id
    ]
    return end, metric_names("".join(documents)), said


@pytest.mark.usefixtures("unreachable_s3_for_unlucky_thumbnails")
def test_every_kind_of_message_ends_logs_and_counts_the_same_in_the_lambda_and_in_the_worker(
    messages: dict[str, str],
    handler_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    emf_listener: socket.socket,
) -> None:
    # GIVEN the Lambda's handler, and the worker's job handler making the same profile into its own bucket
    host, port = emf_listener.getsockname()
    emitter = MetricsEmitter(f"udp://{host}:{port}")
    worker_job = make_video_handler(
        s3_client=handler.s3_client(),
        output_bucket=WORKER_OUTPUT_BUCKET,
        max_bytes=handler.settings().max_video_bytes,
        profile=handler.settings().profile,
        metrics=emitter,
    )

    # WHEN each message goes through each consumer, one at a time and in order
    lambda_reports: dict[str, Report] = {}
    worker_reports: dict[str, Report] = {}
    with caplog.at_level(logging.INFO, logger=WORKER_LOGGER):
        for index, (kind, body) in enumerate(messages.items()):
            lambda_reports[kind] = through_the_lambda(f"message-{index}", body, handler_logs, capsys)
            worker_reports[kind] = through_the_worker(
                worker_job, f"message-{index}", body, caplog, emitter, emf_listener
            )

    # THEN both consumers end each message as expected and count it under the same names and dimensions
    ends_and_metrics: dict[str, Any] = {kind: report[:2] for kind, report in lambda_reports.items()}
    assert ends_and_metrics == EXPECTED
    assert {kind: report[:2] for kind, report in worker_reports.items()} == EXPECTED
    # AND they log the same lines at the same levels, one or more for every message
    assert {kind: report[2] for kind, report in worker_reports.items()} == {
        kind: report[2] for kind, report in lambda_reports.items()
    }
    assert all(report[2] for report in lambda_reports.values())
