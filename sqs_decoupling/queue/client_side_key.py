"""ClientSideEncryptionKey: a KMS key for encrypting message bodies on the client (envelope encryption).

SQS's own encryption (the queue's key) protects messages at rest, but anyone allowed to receive from the queue
reads them in clear. With client-side encryption the producer encrypts the body itself (AWS Encryption SDK, see
sqs_decoupling/queue/envelope/) under this separate key, with an encryption context naming the queue, so a body
stays opaque to any principal that may receive but was not granted kms:Decrypt here, and cannot be replayed into
another queue. Every grant is limited to the queue's encryption context (kms:EncryptionContext:sqs_queue).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from sqs_decoupling.common.keys import customer_managed_key
from sqs_decoupling.common.ranges import Problems
from sqs_decoupling.contracts.envelope import CONTEXT_KEY


def validate_body_key_props(problems: Problems, *, queue_name: str) -> None:
    """The queue name is the encryption context of every grant: an empty one would match no message."""
    if not queue_name:
        problems.add(f"{problems.subject('queue_name')} = {queue_name!r} must name the queue (1..80 characters).")


class ClientSideEncryptionKey(Construct):
    """A customer-managed key (rotation on) for one queue's message bodies. Attribute: ``key``.

    :param queue_name: the queue whose bodies the key protects (the encryption context every grant requires).
    :param existing_key: a key of yours instead of a new one (the grants still require the queue's context).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, queue_name: str, existing_key: kms.IKey | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"ClientSideEncryptionKey '{self.node.path}'")
        validate_body_key_props(problems, queue_name=queue_name)
        problems.raise_any()
        self.queue_name = queue_name
        self.key: kms.IKey = existing_key or customer_managed_key(
            self, "Key", description=f"Client-side encryption of the message bodies of queue {queue_name}"
        )

    def grant_encrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` encrypt bodies for this queue (the Encryption SDK calls kms:GenerateDataKey), and find the
        key from its alias (``sqs-submit --encrypt-with-key alias/...`` calls kms:DescribeKey, which carries no
        encryption context)."""
        iam.Grant.add_to_principal(grantee=grantee, actions=["kms:DescribeKey"], resource_arns=[self.key.key_arn])
        return self._grant(grantee, "kms:GenerateDataKey")

    def grant_decrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` decrypt bodies encrypted for this queue."""
        return self._grant(grantee, "kms:Decrypt")

    def _grant(self, grantee: iam.IGrantable, action: str) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[action],
            resource_arns=[self.key.key_arn],
            conditions={"StringEquals": {f"kms:EncryptionContext:{CONTEXT_KEY}": self.queue_name}},
        )
