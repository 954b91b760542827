"""Alarm e-mails: an e-mail subscription to an alarm topic, with a dead-letter queue for what SNS cannot deliver.

SNS retries an e-mail delivery, then drops it; with a redrive (dead-letter) queue the undelivered alarm is kept,
encrypted with the topic's key and reachable over TLS only, for 14 days.
"""

from __future__ import annotations

import re

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sqs_decoupling.common.acknowledgements import acknowledge, acknowledge_control

EMAIL_ADDRESS = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[a-zA-Z]{2,}$")


class AlarmEmailSubscription(Construct):
    """Subscribe ``address`` to ``topic``; undeliverable notifications go to ``dead_letter_queue``.

    :param key: the KMS key for the dead-letter queue (the topic's own key, so one key guards the alarms).
    """

    def __init__(self, scope: Construct, construct_id: str, *, topic: sns.ITopic, key: kms.IKey, address: str) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            # The dead-letter queue of an SNS subscription only: no SQS queue may redrive into it.
            redrive_allow_policy=sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.DENY_ALL),
        )
        # SNS writes to the encrypted queue with the key: it asks KMS through SQS, which sends the queue's ARN as
        # encryption context (AWS documents no aws:SourceAccount / aws:SourceArn on that request). This stack's
        # queues only: the queue's own ARN would make a cycle (the queue is encrypted with this key), and
        # CloudFormation names it "<stack name>-<logical id>-<suffix>". The queue policy CDK adds below names
        # the topic.
        stack = Stack.of(self)
        this_stacks_queues = stack.format_arn(
            service="sqs", resource=f"{stack.stack_name}-*", arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowSnsToDeadLetter{self.node.addr[:8]}",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringLike": {"kms:EncryptionContext:aws:sqs:arn": this_stacks_queues}},
            )
        )
        # CDK adds the queue policy that lets this topic (aws:SourceArn) send to the queue.
        topic.add_subscription(subscriptions.EmailSubscription(address, dead_letter_queue=self.dead_letter_queue))
        reason = "This queue is itself the dead-letter queue of an SNS e-mail subscription; it needs none of its own."
        for rule in ("AwsSolutions::AwsSolutions-SQS3", "Serverless::Serverless-SQSRedrivePolicy"):
            acknowledge(self.dead_letter_queue, rule, reason)
        # Control Tower counts only queues that allow SQS queues to redrive into them as dead-letter queues.
        acknowledge_control(self.dead_letter_queue, "CT.SQS.PR.1", reason)
