"""Client-side encryption round trips against moto's KMS (GenerateDataKey, Decrypt and DescribeKey are all
implemented there, so nothing is substituted)."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import boto3
import pytest

from sqs_decoupling.queue.envelope.envelope import (
    ENCRYPTED_PREFIX,
    ClientSideEncryptionError,
    ContextMismatchError,
    MessageTooLargeError,
    decrypt_body,
    encrypt_body,
    is_encrypted,
    open_body,
    queue_name_from_arn,
    queue_name_from_url,
)
from tests.support.aws import aws, kms_keys_made_cheaply  # noqa: F401  (pytest fixtures)


@pytest.fixture
def kms(aws, kms_keys_made_cheaply):  # noqa: F811
    client = boto3.client("kms", region_name="us-east-1")
    key = client.create_key(Description="client-side test key")["KeyMetadata"]
    return client, key["KeyId"], key["Arn"]


def test_round_trip(kms):
    client, key_id, _arn = kms
    body = '{"bucket": "b", "key": "uploads/é clip.mp4"}'
    encrypted = encrypt_body(client, key_id, "jobs", body)
    assert is_encrypted(encrypted)
    assert "uploads" not in encrypted  # opaque
    assert decrypt_body(client, key_id, "jobs", encrypted) == body


def test_round_trip_with_key_arn_and_alias(kms):
    client, key_id, arn = kms
    client.create_alias(AliasName="alias/cse", TargetKeyId=key_id)
    encrypted = encrypt_body(client, "alias/cse", "jobs", "hello")
    assert decrypt_body(client, arn, "jobs", encrypted) == "hello"


def test_refuses_message_for_another_queue(kms):
    client, key_id, _arn = kms
    encrypted = encrypt_body(client, key_id, "other-queue", "hello")
    with pytest.raises(ContextMismatchError) as caught:
        decrypt_body(client, key_id, "jobs", encrypted)
    message = str(caught.value)
    assert "{'sqs_queue': 'jobs'}" in message  # expected
    assert "{'sqs_queue': 'other-queue'}" in message  # found
    assert caught.value.found == {"sqs_queue": "other-queue"}


def test_detects_plain_and_encrypted_bodies(kms):
    client, key_id, _arn = kms
    plain = '{"Records": []}'
    assert not is_encrypted(plain)
    assert is_encrypted(encrypt_body(client, key_id, "jobs", plain))
    with pytest.raises(ClientSideEncryptionError, match="not client-side encrypted"):
        decrypt_body(client, key_id, "jobs", plain)
    with pytest.raises(ClientSideEncryptionError, match="not valid base64"):
        decrypt_body(client, key_id, "jobs", ENCRYPTED_PREFIX + "@@@")


def test_tampered_body_is_refused(kms):
    client, key_id, _arn = kms
    raw = bytearray(base64.b64decode(encrypt_body(client, key_id, "jobs", "hello")[len(ENCRYPTED_PREFIX) :]))
    raw[-80] ^= 1  # inside the signature / body
    with pytest.raises(ClientSideEncryptionError, match="Could not decrypt"):
        decrypt_body(client, key_id, "jobs", ENCRYPTED_PREFIX + base64.b64encode(bytes(raw)).decode())


def test_size_accounting(kms):
    client, key_id, _arn = kms
    encrypted = encrypt_body(client, key_id, "jobs", "hello")
    ciphertext = base64.b64decode(encrypted[len(ENCRYPTED_PREFIX) :])
    # The Encryption SDK message for a 5-byte body (header, one KMS-wrapped data key, ECDSA P-384 signature).
    # AWS-NOTES measured 531 bytes against moto; the signature's DER length varies by a byte or two.
    assert 520 <= len(ciphertext) <= 540
    # base64: 4 characters per 3 bytes, rounded up; plus the marker.
    assert len(encrypted) == len(ENCRYPTED_PREFIX) + 4 * ((len(ciphertext) + 2) // 3)

    # The limit applies to the final string: a limit one byte under it fails, naming both sizes.
    with pytest.raises(MessageTooLargeError) as caught:
        encrypt_body(client, key_id, "jobs", "hello", max_message_size_bytes=len(encrypted) - 5)
    assert caught.value.plaintext_bytes == 5
    assert caught.value.encrypted_bytes > caught.value.limit

    # A body that fits in plain text can overflow once encrypted: 200 KB of plaintext -> ~267 KB of base64,
    # over the 256 KiB default.
    with pytest.raises(MessageTooLargeError, match="over the queue's limit of 262144 bytes"):
        encrypt_body(client, key_id, "jobs", "x" * 200_000)
    assert is_encrypted(encrypt_body(client, key_id, "jobs", "x" * 190_000))


def test_through_a_real_queue(kms):
    client, key_id, _arn = kms
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=encrypt_body(client, key_id, "jobs", "payload"))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]["Body"]
    assert decrypt_body(client, key_id, "jobs", received) == "payload"


def _no_client() -> object:
    pytest.fail("open_body created a KMS client for a plain body")


def test_open_body_passes_a_plain_body_through_without_creating_a_kms_client() -> None:
    # GIVEN a plain S3 event body and a KMS client factory that fails the test if called
    plain = '{"Records": [{"eventName": "ObjectCreated:Put"}]}'

    # WHEN a consumer with and without a key opens it
    opened_with_key = open_body(plain, queue_name="jobs", key_id="arn:aws:kms:us-east-1:1:key/x", kms_client=_no_client)
    opened_without_key = open_body(plain, queue_name="jobs", key_id=None, kms_client=_no_client)

    # THEN it is returned unchanged and no client was created
    assert opened_with_key == plain
    assert opened_without_key == plain


def test_open_body_decrypts_an_encrypted_body_creating_the_client_from_the_factory(
    kms: tuple[Any, str, str],
) -> None:
    # GIVEN a body encrypted for "jobs", and a consumer configured with the key's ARN and a lazy client factory
    client, key_id, arn = kms
    encrypted = encrypt_body(client, key_id, "jobs", '{"Records": []}')
    created: list[object] = []

    def factory() -> Any:
        created.append(client)
        return client

    # WHEN it opens the body
    opened = open_body(encrypted, queue_name="jobs", key_id=arn, kms_client=factory)

    # THEN it gets the plaintext, having created the client once; a client object is accepted as well
    assert opened == '{"Records": []}'
    assert len(created) == 1
    assert open_body(encrypted, queue_name="jobs", key_id=arn, kms_client=client) == '{"Records": []}'


def test_open_body_refuses_another_queues_body(kms: tuple[Any, str, str]) -> None:
    # GIVEN a body encrypted for another queue
    client, key_id, arn = kms
    encrypted = encrypt_body(client, key_id, "other-queue", "hello")

    # WHEN / THEN the consumer of "jobs" refuses it
    with pytest.raises(ContextMismatchError):
        open_body(encrypted, queue_name="jobs", key_id=arn, kms_client=client)


@pytest.mark.parametrize("key_id", [None, ""])
def test_open_body_without_a_key_names_the_setting_to_configure(kms: tuple[Any, str, str], key_id: str | None) -> None:
    # GIVEN an encrypted body and a consumer with no key configured
    client, real_key_id, _arn = kms
    encrypted = encrypt_body(client, real_key_id, "jobs", "hello")

    # WHEN it opens the body
    with pytest.raises(ClientSideEncryptionError) as caught:
        open_body(encrypted, queue_name="jobs", key_id=key_id, kms_client=_no_client)

    # THEN the error says why and names the settings, and no client was created (the factory would have failed)
    message = str(caught.value)
    assert "client-side encrypted" in message
    assert "no key configured" in message
    assert "BODY_KEY_ARN" in message
    assert "--body-key-arn" in message
    assert "WORKER_BODY_KEY_ARN" in message
    assert "hello" not in message


def test_an_unknown_key_is_a_client_side_encryption_error(kms: tuple[Any, str, str]) -> None:
    client, _key_id, _arn = kms
    with pytest.raises(ClientSideEncryptionError, match="Cannot use KMS key 'alias/missing'"):
        encrypt_body(client, "alias/missing", "jobs", "hello")


def test_queue_names_from_url_and_arn() -> None:
    assert queue_name_from_url("https://sqs.eu-west-1.amazonaws.com/123456789012/video-jobs") == "video-jobs"
    assert queue_name_from_url("http://localhost:5000/123456789012/video-jobs/") == "video-jobs"
    assert queue_name_from_arn("arn:aws:sqs:eu-west-1:123456789012:video-jobs") == "video-jobs"


def test_importing_clientside_does_not_load_the_encryption_sdk() -> None:
    # GIVEN a fresh interpreter WHEN it imports sqs_decoupling.queue.envelope THEN the Encryption SDK is not loaded yet
    code = (
        "import sys, sqs_decoupling.queue.envelope; "
        "print('aws_encryption_sdk' in sys.modules, 'cryptography' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
