"""The client-side encryption envelope's format, as producers, consumers and the key's policy all name it. Standard
library only.

An encrypted body is ``ENCRYPTED_PREFIX`` + the base64 of an AWS Encryption SDK message whose encryption context is
``{CONTEXT_KEY: <queue name>}`` (``sqs_decoupling.queue.envelope.envelope`` writes and reads it); the client-side key's
grants are limited to ``kms:EncryptionContext:<CONTEXT_KEY>`` (``sqs_decoupling.queue.client_side_key``).
"""

from __future__ import annotations

from typing import Final

ENCRYPTED_PREFIX: Final = "sqs-cse:v1:"
CONTEXT_KEY: Final = "sqs_queue"
