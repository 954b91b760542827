"""Client-side (envelope) encryption of SQS message bodies with a KMS key, through the AWS Encryption SDK."""

from sqs_decoupling.queue.envelope.envelope import (
    CONTEXT_KEY,
    ENCRYPTED_PREFIX,
    ClientSideEncryptionError,
    ContextMismatchError,
    MessageTooLargeError,
    decrypt_body,
    encrypt_body,
    is_encrypted,
    kms_key_provider,
    open_body,
    queue_name_from_arn,
    queue_name_from_url,
)

__all__ = [
    "CONTEXT_KEY",
    "ENCRYPTED_PREFIX",
    "ClientSideEncryptionError",
    "ContextMismatchError",
    "MessageTooLargeError",
    "decrypt_body",
    "encrypt_body",
    "is_encrypted",
    "kms_key_provider",
    "open_body",
    "queue_name_from_arn",
    "queue_name_from_url",
]
