"""Fixtures for the Lambda handler tests: a moto upload bucket whose real S3 notifications land in an SQS
queue, an output bucket, an SQS event factory and a LambdaContext."""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sqs_decoupling.lambda_consumer.runtime import handler
from tests.support.aws import (  # noqa: F401  (pytest fixtures)
    REGION,
    aws,
    kms_keys_made_cheaply,
    notify_queue_of_uploads,
    s3,
    sqs,
)
from tests.support.permissions.recorder import call_recorder  # noqa: F401  (pytest fixture)
from tests.support.videos import ffmpeg_calls  # noqa: F401  (pytest fixture)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

UPLOADS_BUCKET = "video-uploads"
OUTPUT_BUCKET = "video-processed"


@dataclass
class LambdaContext:
    """Lambda's context as the handler reads it; the remaining time runs down from ``timeout_seconds`` on ``clock``
    (real time unless a test gives its own), starting when the context is made (as Lambda's does from the
    invocation's start)."""

    function_name: str = "video-processor"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:video-processor"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 120.0
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - self.clock()) * 1000))


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@dataclass
class Pipeline:
    """The intake as deployed: uploads bucket --ObjectCreated--> queue. ``deliveries()`` returns what is on
    the queue as Lambda's SQS event records, the way the event source mapping would pass them."""

    s3: S3Client
    sqs: SQSClient
    queue_url: str
    queue_arn: str

    def upload(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=UPLOADS_BUCKET, Key=key, Body=body)

    def deliveries(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            for message in messages:
                records.append(sqs_record(message["Body"], message_id=message["MessageId"], queue_arn=self.queue_arn))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return records

    def output_keys(self) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=OUTPUT_BUCKET)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    def output_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read())


def sqs_record(body: str, *, message_id: str | None = None, queue_arn: str = "") -> dict[str, Any]:
    """One record of the event Lambda passes for an SQS event source."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764244800000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn or f"arn:aws:sqs:{REGION}:123456789012:video-jobs",
        "awsRegion": REGION,
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, aws: None, tmp_path: Path) -> Iterator[None]:  # noqa: F811
    monkeypatch.setenv("OUTPUT_BUCKET", OUTPUT_BUCKET)
    # The handler's /tmp is this test's own folder: it removes job folders it finds there.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "video-processor")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "VideoPipelineTest")
    # The handler caches its client and its settings; each test gets ones made from its own mock and environment.
    handler.s3_client.cache_clear()
    handler.settings.cache_clear()
    yield
    handler.s3_client.cache_clear()
    handler.settings.cache_clear()


@pytest.fixture
def pipeline(handler_env: None, s3: S3Client, sqs: SQSClient) -> Pipeline:  # noqa: F811
    queue_url = sqs.create_queue(QueueName="video-jobs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=UPLOADS_BUCKET)
    s3.put_bucket_versioning(Bucket=UPLOADS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    notify_queue_of_uploads(s3, UPLOADS_BUCKET, queue_arn)
    return Pipeline(s3=s3, sqs=sqs, queue_url=queue_url, queue_arn=queue_arn)


@pytest.fixture
def handler_logs() -> Iterator[io.StringIO]:
    """What the handler's Powertools Logger writes during the test (JSON, one record per line)."""
    stream = io.StringIO()
    log_handler = handler.logger.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(stream)
    yield stream
    log_handler.setStream(previous)


def emitted_metrics(stdout: str) -> dict[str, list[tuple[float, dict[str, str]]]]:
    """Metric name -> [(value, dimensions)] from the EMF documents Powertools printed."""
    found: dict[str, list[tuple[float, dict[str, str]]]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        directive = document["_aws"]["CloudWatchMetrics"][0]
        dimensions = {name: document[name] for group in directive["Dimensions"] for name in group}
        for metric in directive["Metrics"]:
            values = document[metric["Name"]]
            for value in values if isinstance(values, list) else [values]:
                found.setdefault(metric["Name"], []).append((value, dimensions))
    return found
