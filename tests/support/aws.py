"""pytest fixtures for in-process moto. Import the ones you use into your conftest.py:

from tests.support.aws import aws, s3, sqs  # noqa: F401  (pytest fixtures)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from tools.localcloud import moto_compat
from tools.localcloud.server import REGION

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every AWS call in the test goes to moto, in-process, with dummy credentials."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # moto would start each test with a new boto3 default session (about 9 ms of CPU a test: the session, and its
    # first clients' set-up). A session keeps no AWS state (moto resets its backends at every start), reads the region
    # from the environment at each client, and caches the credentials it first finds: the dummy ones above, the same in
    # every test. So one session per process serves them all; a test that changes the credentials sets its own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", _shared_session())
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield


@functools.cache
def _shared_session() -> boto3.Session:
    return boto3.Session()


@pytest.fixture
def s3(aws: None) -> S3Client:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def sqs(aws: None) -> SQSClient:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def kms_keys_made_cheaply() -> Iterator[None]:
    """moto makes a 2048-bit RSA pair for every KMS key it creates, symmetric ones included (about 30 ms of CPU a
    key), where only Sign, Verify and GetPublicKey use one: within a test that takes this fixture, the pair is made
    when first used (the moto server's work-around, ``moto_compat.kms_private_keys_when_used``). Encrypt and Decrypt
    use each key's own key material, as before."""
    with moto_compat.kms_private_keys_when_used():
        yield


def count_calls(client: S3Client | SQSClient, operation: str) -> list[dict[str, object]]:
    """Record the parameters of every ``operation`` call (e.g. "SendMessageBatch") ``client`` makes."""
    calls: list[dict[str, object]] = []

    def record(params: dict[str, object], **_: object) -> None:
        calls.append(dict(params))

    client.meta.events.register(f"provide-client-params.{client.meta.service_model.service_name}.{operation}", record)
    return calls


def notify_queue_of_uploads(s3: S3Client, bucket: str, queue_arn: str, prefix: str = "uploads/") -> None:
    """Send ObjectCreated events under ``prefix`` to the queue, as the stacks' UploadIntake configures it."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
            ]
        },
    )
