"""SecureQueueStack: the seed's "SQS Security" and "SQS Access Policies" in one stack.

- In flight: every request must use TLS (a deny on aws:SecureTransport=false in both queue policies).
- At rest: a customer-managed KMS key with rotation encrypts the queue, its dead-letter queue and the alarm topic.
- On the client: a second key for producers to encrypt bodies themselves (sqs_decoupling/queue/envelope/),
  decryptable by the consumer.
- Access: IAM policies for our own roles (a producer that may only send, a consumer that may only receive,
  delete and change visibility), the queue's resource policy for other accounts (send only, when configured).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aspects, CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from sqs_decoupling.common.alarm_email import AlarmEmailSubscription
from sqs_decoupling.common.log_groups import EncryptedLogGroups
from sqs_decoupling.common.ranges import Problems
from sqs_decoupling.queue.client_side_key import ClientSideEncryptionKey
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.stacks.stack_settings import StackSettings

AWS_ACCOUNT_ID = re.compile(r"^\d{12}$")
# An IAM role or user (IAM's names: letters, digits and +=,.@_- ; paths of /-separated such names).
IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)(/[\w+=,.@-]+)+$")


@dataclass(frozen=True, kw_only=True)
class SecureQueueSettings(StackSettings):
    """SecureQueueStack's settings: those of every stack plus ``cross_account_producer_accounts`` (12-digit
    account ids whose principals may send through the queue's resource policy; default none), and
    ``producer_principals`` / ``consumer_principals``: the IAM roles or users (ARNs) that may assume the producer or
    consumer role (default none: any principal of this account whose own IAM policies allow it)."""

    cross_account_producer_accounts: tuple[str, ...] = ()
    producer_principals: tuple[str, ...] = ()
    consumer_principals: tuple[str, ...] = ()

    def check(self, problems: Problems) -> None:
        super().check(problems)
        for key in ("producer_principals", "consumer_principals"):
            for arn in getattr(self, key):
                if not IAM_PRINCIPAL_ARN.match(arn):
                    problems.add(
                        f"Configuration key {key!r} holds {arn!r}: each entry must be the ARN of an IAM role or "
                        "user, like 'arn:aws:iam::111122223333:role/video-uploader' (comma-separated; it must "
                        "exist when you deploy)."
                    )
        for account in self.cross_account_producer_accounts:
            if not AWS_ACCOUNT_ID.match(account):
                problems.add(
                    f"Configuration key 'cross_account_producer_accounts' holds {account!r}: "
                    "each entry must be a 12-digit AWS account id."
                )


class SecureQueueStack(Stack):
    """An encrypted queue with least-privilege producer and consumer roles. ``settings``: default
    ``SecureQueueSettings()``; other keyword arguments go to ``Stack`` (e.g. ``env``)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: SecureQueueSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = settings or SecureQueueSettings()
        # Every log group explicit, encrypted and kept log_retention_days, CDK's handler functions' included.
        Aspects.of(self).add(EncryptedLogGroups(retention_days=config.log_retention_days))

        self.jobs = EncryptedQueue(self, "Jobs", **config.queue.props())
        if config.alarm_email:
            AlarmEmailSubscription(
                self, "AlarmEmail", topic=self.jobs.alarm_topic, key=self.jobs.key, address=config.alarm_email
            )

        # Roles that the configured principals may assume; with none configured, principals of this account whose
        # own IAM policies let them (the trust names the account, and IAM decides).
        self.producer_role = iam.Role(
            self,
            "ProducerRole",
            assumed_by=_trusted(config.producer_principals),
            description="May only send messages to the jobs queue",
        )
        self.jobs.grant_send(self.producer_role)
        # sqs-submit reads the queue's maximum message size before it sends (the permission rehearsal found it missing).
        self.jobs.queue.grant(self.producer_role, "sqs:GetQueueAttributes")

        self.consumer_role = iam.Role(
            self,
            "ConsumerRole",
            assumed_by=_trusted(config.consumer_principals),
            description="May only receive, delete and change the visibility of messages of the jobs queue",
        )
        self.jobs.grant_consume(self.consumer_role)

        self.jobs.allow_send_from_accounts(config.cross_account_producer_accounts)

        # Client-side encryption (the seed's third option): bodies the producer encrypts under this key are
        # opaque to anyone who may receive from the queue but may not decrypt with this key.
        self.body_key = ClientSideEncryptionKey(self, "BodyKey", queue_name=self.jobs.queue_name)
        self.body_key.grant_encrypt(self.producer_role)
        self.body_key.grant_decrypt(self.consumer_role)

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", widgets=[self.jobs.dashboard_widgets()])

        for name, value in {
            "QueueUrl": self.jobs.queue.queue_url,
            "QueueArn": self.jobs.queue.queue_arn,
            "DeadLetterQueueUrl": self.jobs.dead_letter_queue.queue_url,
            # Attach to whoever runs sqs-redrive (docs/runbook-dlq-redrive.md); nothing here is given it.
            "RedriveOperatorPolicyArn": self.jobs.redrive_operator_policy.managed_policy_arn,
            "KeyArn": self.jobs.key.key_arn,
            "BodyKeyArn": self.body_key.key.key_arn,
            "ProducerRoleArn": self.producer_role.role_arn,
            "ConsumerRoleArn": self.consumer_role.role_arn,
        }.items():
            CfnOutput(self, name, value=value)


def _trusted(principal_arns: tuple[str, ...]) -> iam.IPrincipal:
    """Who may assume a role: the principals named, or else this account (whose IAM policies then decide)."""
    if not principal_arns:
        return iam.AccountRootPrincipal()
    return iam.CompositePrincipal(*(iam.ArnPrincipal(arn) for arn in principal_arns))
