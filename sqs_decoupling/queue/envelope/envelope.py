"""Encrypt SQS message bodies on the client, so the body is opaque even to principals that may receive from the queue.

SQS server-side encryption (the stacks' customer-managed KMS key) protects messages at rest, but anyone allowed to
ReceiveMessage on the queue reads the plaintext. Client-side encryption adds a second lock: the producer encrypts the
body with the AWS Encryption SDK (envelope encryption: a fresh data key per message, wrapped by a KMS key), and only
principals allowed kms:Decrypt on *that* key can read it.

Format of an encrypted body (a string, as SQS requires)::

    sqs-cse:v1:<base64 of the Encryption SDK message>

The prefix lets consumers tell encrypted bodies from plain ones (S3 event notifications, for instance, are never
client-side encrypted) without a message attribute, so it survives any path that forwards only the body.

The encryption context binds each message to its queue: ``{"sqs_queue": <queue name>}``. It is authenticated (not
secret): a message copied from another queue decrypts but is refused by :func:`decrypt_body`, with an error naming the
expected and the found context.

Size: the Encryption SDK message is larger than the plaintext (header, wrapped data key, ECDSA signature: a 5-byte
body became 531 bytes against moto's KMS), and base64 adds a third. The size checked against the queue's limit is
the final string's UTF-8 length; message attributes count against the same limit, so leave room for them.

Consumers call :func:`open_body` on every body: plain ones pass through untouched (no KMS call), encrypted ones
are decrypted with the key the consumer is configured with (BODY_KEY_ARN for the Lambda, --body-key-arn /
WORKER_BODY_KEY_ARN for the worker). A body that cannot be opened raises; consumers let it fail, so it is retried
and reaches the dead-letter queue instead of being dropped.

Costs: every encrypt calls kms:GenerateDataKey and every decrypt kms:Decrypt (no data-key caching here), so budget
one KMS request per message on each side ($0.03 per 10,000 in us-east-1).
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from typing import Any

from sqs_decoupling.contracts import lambda_function, worker
from sqs_decoupling.contracts.envelope import CONTEXT_KEY, ENCRYPTED_PREFIX
from sqs_decoupling.contracts.sqs import DEFAULT_MAX_MESSAGE_SIZE_BYTES
from sqs_decoupling.queue.envelope.logs import configure_sdk_logging, kms_errors_seen

# The Encryption SDK (and cryptography) are imported inside the functions that need them: importing this module
# stays cheap, so a consumer whose queue only carries plain bodies never loads them.


NO_KEY_SETTINGS = (
    f"{lambda_function.BODY_KEY_ARN_ENV} for the Lambda consumer, "
    f"--body-key-arn / {worker.BODY_KEY_ARN_ENV} for the worker"
)
"""Where a consumer is given the key to open client-side encrypted bodies (named in the error when it is not)."""


class ClientSideEncryptionError(ValueError):
    """A body could not be encrypted or decrypted."""


class ContextMismatchError(ClientSideEncryptionError):
    """The message was encrypted for another queue (its encryption context names a different one)."""

    def __init__(self, expected: dict[str, str], found: dict[str, str]) -> None:
        self.expected = expected
        self.found = found
        super().__init__(
            f"Refusing a client-side encrypted message: expected encryption context {expected}, "
            f"found {found}. It was encrypted for another queue (copied or misrouted)."
        )


class MessageTooLargeError(ClientSideEncryptionError):
    """The encrypted, base64-encoded body is over the queue's maximum message size."""

    def __init__(self, plaintext_bytes: int, encrypted_bytes: int, limit: int) -> None:
        self.plaintext_bytes = plaintext_bytes
        self.encrypted_bytes = encrypted_bytes
        self.limit = limit
        super().__init__(
            f"A {plaintext_bytes}-byte body is {encrypted_bytes} bytes after client-side encryption and base64, "
            f"over the queue's limit of {limit} bytes. Store large payloads in S3 and send a pointer."
        )


def is_encrypted(body: str) -> bool:
    """True if the body carries this module's client-side encryption marker."""
    return body.startswith(ENCRYPTED_PREFIX)


def encryption_context(queue_name: str) -> dict[str, str]:
    """The encryption context that binds a message to its queue."""
    if not queue_name:
        raise ClientSideEncryptionError("A queue name is needed for the encryption context.")
    return {CONTEXT_KEY: queue_name}


def encrypt_body(
    kms_client_or_provider: Any,
    key_id: str,
    queue_name: str,
    body: str,
    *,
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
) -> str:
    """Encrypt a message body for one queue; returns the marked, base64 string to pass to SendMessage.

    ``kms_client_or_provider`` is a boto3 KMS client (used with ``key_id``) or an Encryption SDK master key
    provider (then ``key_id`` is ignored: the provider names its keys). Raises MessageTooLargeError if the result is
    over ``max_message_size_bytes`` (the queue's MaximumMessageSize).
    """
    provider = _provider(kms_client_or_provider, key_id)
    plaintext = body.encode("utf-8")
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError  # type: ignore[import-untyped]

    with kms_errors_seen() as kms_errors:
        try:
            ciphertext, _header = _sdk().encrypt(
                source=plaintext, key_provider=provider, encryption_context=encryption_context(queue_name)
            )
        except AWSEncryptionSDKClientError as err:
            kms = f" (KMS error: {', '.join(dict.fromkeys(kms_errors))})" if kms_errors else ""
            raise ClientSideEncryptionError(
                f"Could not encrypt for queue {queue_name!r} with key {key_id!r}: {err}{kms}"
            ) from err
    encoded = ENCRYPTED_PREFIX + base64.b64encode(ciphertext).decode("ascii")
    size = len(encoded.encode("utf-8"))
    if size > max_message_size_bytes:
        raise MessageTooLargeError(len(plaintext), size, max_message_size_bytes)
    return encoded


def decrypt_body(kms_client_or_provider: Any, key_id: str, queue_name: str, body: str) -> str:
    """Decrypt a body produced by :func:`encrypt_body` for ``queue_name``.

    Refuses (ContextMismatchError) a message whose encryption context names another queue. A body without the
    marker is not encrypted: call :func:`is_encrypted` first if a queue may carry both (this raises on it).
    """
    if not is_encrypted(body):
        raise ClientSideEncryptionError(
            f"The body is not client-side encrypted (no {ENCRYPTED_PREFIX!r} prefix); check is_encrypted() first."
        )
    try:
        ciphertext = base64.b64decode(body[len(ENCRYPTED_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as err:
        raise ClientSideEncryptionError(f"The encrypted body is not valid base64: {err}") from err
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
    from cryptography.exceptions import InvalidSignature

    provider = _provider(kms_client_or_provider, key_id)
    with kms_errors_seen() as kms_errors:
        try:
            plaintext, header = _sdk().decrypt(source=ciphertext, key_provider=provider)
        except (AWSEncryptionSDKClientError, InvalidSignature) as err:  # a bad signature surfaces as the latter
            kms = f" (KMS error: {', '.join(dict.fromkeys(kms_errors))})" if kms_errors else ""
            raise ClientSideEncryptionError(
                f"Could not decrypt a message for queue {queue_name!r}: {err}{kms}"
            ) from err
    expected = encryption_context(queue_name)
    # The SDK adds its own keys (aws-crypto-public-key for signed suites); compare ours only, and refuse extras
    # that are not the SDK's, so a context cannot be widened either.
    found = {k: v for k, v in header.encryption_context.items() if not k.startswith("aws-crypto-")}
    if found != expected:
        raise ContextMismatchError(expected, found)
    return bytes(plaintext).decode("utf-8")


def open_body(body: str, *, queue_name: str, key_id: str | None, kms_client: Any | Callable[[], Any]) -> str:
    """What a consumer calls on every received body: plain bodies pass through, encrypted ones are decrypted.

    - Not client-side encrypted (an S3 event notification, for instance): ``body`` is returned unchanged, without
      touching KMS. ``kms_client`` may be a zero-argument factory; it is only called for an encrypted body, so a
      consumer can create its KMS client lazily.
    - Encrypted: decrypted with ``key_id`` for ``queue_name`` (see :func:`decrypt_body`; ContextMismatchError for
      a message encrypted for another queue, ClientSideEncryptionError if it cannot be decrypted).
    - Encrypted but ``key_id`` is None (or empty): ClientSideEncryptionError naming the setting to configure.

    Consumers must not drop a body this refuses: raise, so it is retried and reaches the dead-letter queue.
    """
    if not is_encrypted(body):
        return body
    if not key_id:
        raise ClientSideEncryptionError(
            "The message body is client-side encrypted, but this consumer has no key configured to decrypt it: "
            f"set {NO_KEY_SETTINGS} to the KMS key ARN the producer encrypted with."
        )
    client = kms_client() if callable(kms_client) else kms_client
    return decrypt_body(client, key_id, queue_name, body)


def queue_name_from_url(queue_url: str) -> str:
    """``https://sqs.eu-west-1.amazonaws.com/123456789012/jobs`` -> ``jobs`` (the encryption context's value)."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def queue_name_from_arn(queue_arn: str) -> str:
    """``arn:aws:sqs:eu-west-1:123456789012:jobs`` -> ``jobs`` (the encryption context's value)."""
    return queue_arn.rsplit(":", 1)[-1]


def kms_key_provider(kms_client: Any, key_id: str) -> Any:
    """An Encryption SDK master key provider for one KMS key; ``key_id`` may be a key id, ARN or alias.

    Resolving an id or alias costs a DescribeKey call: build the provider once and pass it to
    :func:`encrypt_body` / :func:`decrypt_body` when handling many messages. Raises ClientSideEncryptionError if
    the key cannot be described (unknown key, no permission).
    """
    return _provider(kms_client, key_id)


@functools.cache
def _sdk() -> Any:
    configure_sdk_logging()
    import aws_encryption_sdk  # type: ignore[import-untyped]
    from aws_encryption_sdk.identifiers import CommitmentPolicy  # type: ignore[import-untyped]

    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def _provider(kms_client_or_provider: Any, key_id: str) -> Any:
    from aws_encryption_sdk.key_providers.base import MasterKeyProvider  # type: ignore[import-untyped]
    from aws_encryption_sdk.key_providers.kms import KMSMasterKey  # type: ignore[import-untyped]
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(kms_client_or_provider, MasterKeyProvider):
        return kms_client_or_provider
    client = kms_client_or_provider
    # The SDK records the key ARN KMS returns, and on decrypt matches it exactly: resolve ids and aliases to the ARN.
    if not (key_id.startswith("arn:") and ":key/" in key_id):
        try:
            key_id = client.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
        except (BotoCoreError, ClientError) as err:
            raise ClientSideEncryptionError(f"Cannot use KMS key {key_id!r}: {err}") from err
    return KMSMasterKey(key_id=key_id, client=client)
