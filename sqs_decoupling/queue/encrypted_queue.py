"""EncryptedQueue: an SQS queue done properly, the building block of every stack here.

- encrypted at rest with a customer-managed KMS key (rotation on), or with a key you pass in;
- a dead-letter queue encrypted with the same key, whose redrive-allow policy names only its source queue, kept
  when the stack is deleted (dead letters are the messages nobody could process: they wait for a redrive);
- TLS-only resource policies on both queues and on the alarm topic, for every action (encryption in flight);
- explicit retention, message size, long polling, visibility timeout and maxReceiveCount, validated;
- alarms (dead-letter queue not empty, oldest message too old) to an encrypted, TLS-only SNS topic;
- least-privilege grants for producers and consumers, including the KMS actions each one needs, limited to
  this queue's encryption context (SQS encrypts each message under the context aws:sqs:arn = the queue's ARN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from aws_cdk import ArnFormat, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sqs_decoupling.common.acknowledgements import acknowledge, wildcard_finding
from sqs_decoupling.common.keys import customer_managed_key
from sqs_decoupling.common.ranges import Limit, Problems, Setting, check_pass_through, seconds
from sqs_decoupling.contracts.sqs import (
    DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    MAX_MESSAGE_SIZE_BYTES,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
    MIN_MESSAGE_SIZE_BYTES,
)

# Limits of Amazon SQS (standard queues); message sizes and the visibility maximum from sqs_decoupling.contracts.sqs.
MIN_RETENTION = Duration.seconds(60)
MAX_RETENTION = Duration.days(14)
MAX_RECEIVE_WAIT = Duration.seconds(20)
MIN_RECEIVE_COUNT, MAX_RECEIVE_COUNT = 1, 1000
MIN_DATA_KEY_REUSE, MAX_DATA_KEY_REUSE = Duration.seconds(60), Duration.hours(24)
# The one statement of each prop's allowed range (durations in seconds): EncryptedQueue and QueueSettings check these.
QUEUE_LIMITS: dict[str, Limit] = {
    "retention": Limit(MIN_RETENTION.to_seconds(), MAX_RETENTION.to_seconds(), " s"),
    "max_message_size_bytes": Limit(MIN_MESSAGE_SIZE_BYTES, MAX_MESSAGE_SIZE_BYTES, " bytes"),
    "visibility_timeout": Limit(0, MAX_VISIBILITY_TIMEOUT_SECONDS, " s"),
    "receive_wait_time": Limit(0, MAX_RECEIVE_WAIT.to_seconds(), " s"),
    "max_receive_count": Limit(MIN_RECEIVE_COUNT, MAX_RECEIVE_COUNT),
    "data_key_reuse": Limit(MIN_DATA_KEY_REUSE.to_seconds(), MAX_DATA_KEY_REUSE.to_seconds(), " s"),
    "oldest_message_alarm_threshold": Limit(60, MAX_RETENTION.to_seconds(), " s"),
}
# The props of sqs.Queue that ``queue_props`` may not set: the security defaults it would switch off, and those this
# construct sets from a prop of its own.
REFUSED_QUEUE_PROPS: dict[str, str] = {
    "encryption": "the queue is always encrypted with a customer-managed KMS key (pass encryption_key to choose it)",
    "encryption_master_key": "pass the key as encryption_key: the dead-letter queue and the grants use it too",
    "enforce_ssl": "the queue policy always denies requests without TLS",
    "dead_letter_queue": "the construct makes the dead-letter queue (set max_receive_count)",
    "redrive_allow_policy": "only the dead-letter queue has one, naming this queue",
    "queue_name": "the name is fixed at synthesis: the dead-letter queue's redrive-allow policy and the grants name it",
    "fifo": "standard queues only (a FIFO queue needs a FIFO dead-letter queue and a .fifo name)",
    "retention_period": "set the construct's retention prop",
    "max_message_size_bytes": "set the construct's max_message_size_bytes prop",
    "receive_message_wait_time": "set the construct's receive_wait_time prop",
    "visibility_timeout": "set the construct's visibility_timeout prop",
    "data_key_reuse": "set the construct's data_key_reuse prop",
    "removal_policy": "set the construct's removal_policy prop",
}
QUEUE_PROPS_LIMITS: dict[str, Limit] = {"delivery_delay": Limit(0, 900, " s")}


def validate_queue_props(problems: Problems, props: Mapping[str, Any]) -> None:
    """The one check of EncryptedQueue's props (and of QueueSettings, through them): report each prop of ``props``
    (durations or seconds) outside its ``QUEUE_LIMITS``."""
    for prop, value in props.items():
        problems.check(prop, seconds(value), QUEUE_LIMITS[prop])


def validate_queue_pass_through(problems: Problems, queue_props: Mapping[str, Any]) -> None:
    """Report each key of ``queue_props`` that sqs.Queue does not take, that ``REFUSED_QUEUE_PROPS`` refuses, or
    whose value is outside ``QUEUE_PROPS_LIMITS``."""
    check_pass_through(problems, "queue_props", queue_props, target=sqs.Queue, refused=REFUSED_QUEUE_PROPS)
    for prop, limit in QUEUE_PROPS_LIMITS.items():
        if prop in queue_props:
            problems.check(f"queue_props[{prop!r}]", seconds(queue_props[prop]), limit)


# What a principal needs of the queue's key. SQS calls kms:GenerateDataKey to encrypt a message for a producer
# and kms:Decrypt for a consumer (and for a producer, to reuse a cached data key). CDK's own grantSendMessages
# also hands out kms:Encrypt and kms:ReEncrypt*, which SQS never uses, so the grants below are written here.
PRODUCER_KMS_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
CONSUMER_KMS_ACTIONS = ("kms:Decrypt",)
PRODUCER_SQS_ACTIONS = ("sqs:SendMessage",)
CONSUMER_SQS_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
# A dead-letter queue redrive, as the SQS developer guide lists it ("Configuring queue permissions for dead-letter
# queue redrive", encrypted queue pair): on the dead-letter queue, start, cancel and list move tasks, and what the
# move does with the caller's permissions (receive, delete, read attributes), plus finding its source queues; on the
# destination, send; on the key, decrypt (the dead-letter queue's messages) and generate data keys (the
# destination's). sqs-redrive's copy (--method copy) makes the same receive, send and delete calls itself.
REDRIVE_DLQ_ACTIONS = (
    "sqs:StartMessageMoveTask",
    "sqs:CancelMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ListDeadLetterSourceQueues",
)
REDRIVE_DESTINATION_ACTIONS = ("sqs:SendMessage",)
REDRIVE_DESCRIPTION_PREFIX = "DLQ redrive operator"
# The actions a topic policy governs (those of SNS's own default topic policy): the TLS-only deny covers them all
# (CDK's enforce_ssl denies sns:Publish only).
SNS_TOPIC_ACTIONS = (
    "sns:Publish",
    "sns:Subscribe",
    "sns:GetTopicAttributes",
    "sns:SetTopicAttributes",
    "sns:AddPermission",
    "sns:RemovePermission",
    "sns:DeleteTopic",
    "sns:ListSubscriptionsByTopic",
)


RemovalChoice = Literal["destroy", "retain"]


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    """The EncryptedQueue settings a stack takes, in cdk.json's units; the defaults of the construct's props.

    ``retention_days`` (1..14, default 4), ``max_message_size_bytes`` (1,024..1,048,576, default 256 KiB),
    ``max_receive_count`` (1..1000, default 3), ``kms_data_key_reuse_seconds`` (60..86,400, default 3,600),
    ``oldest_message_alarm_seconds`` (60..1,209,600, default 900), ``queue_removal_policy`` ("destroy" or
    "retain", default "destroy"; dead-letter queues are always retained).
    """

    retention_days: int = 4
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES
    max_receive_count: int = 3
    kms_data_key_reuse_seconds: int = 3600
    oldest_message_alarm_seconds: int = 900
    queue_removal_policy: RemovalChoice = "destroy"

    def __post_init__(self) -> None:
        """Check each key with EncryptedQueue's own rules (``QUEUE_LIMITS``), every broken one in one error."""
        problems = Problems.for_settings(QUEUE_SETTING_KEYS)
        problems.choice("queue_removal_policy", self.queue_removal_policy, ("destroy", "retain"))
        validate_queue_props(problems, self._prop_values())
        problems.raise_any()

    def _prop_values(self) -> dict[str, float]:
        """These settings as EncryptedQueue's props, durations in seconds (what ``QUEUE_LIMITS`` bounds)."""
        return {prop: getattr(self, setting.key) * setting.factor for prop, setting in QUEUE_SETTING_KEYS.items()}

    def props(self) -> dict[str, Any]:
        """These settings as EncryptedQueue keyword arguments."""
        return {
            "retention": Duration.days(self.retention_days),
            "max_message_size_bytes": self.max_message_size_bytes,
            "max_receive_count": self.max_receive_count,
            "data_key_reuse": Duration.seconds(self.kms_data_key_reuse_seconds),
            "oldest_message_alarm_threshold": Duration.seconds(self.oldest_message_alarm_seconds),
            "removal_policy": RemovalPolicy.RETAIN if self.queue_removal_policy == "retain" else RemovalPolicy.DESTROY,
        }


# Which EncryptedQueue prop each key of QueueSettings feeds, and in which unit.
QUEUE_SETTING_KEYS: dict[str, Setting] = {
    "retention": Setting("retention_days", 86_400, " days"),
    "max_message_size_bytes": Setting("max_message_size_bytes"),
    "max_receive_count": Setting("max_receive_count"),
    "data_key_reuse": Setting("kms_data_key_reuse_seconds", 1, " seconds"),
    "oldest_message_alarm_threshold": Setting("oldest_message_alarm_seconds", 1, " seconds"),
}
_DEFAULTS = QueueSettings()


class EncryptedQueue(Construct):
    """An SQS queue with a customer-managed KMS key, a dead-letter queue, TLS-only policies and alarms.

    Attributes: ``queue``, ``queue_name`` (fixed at synthesis), ``visibility_timeout``, ``dead_letter_queue``, ``key``,
    ``alarm_topic``, ``dlq_alarm``, ``age_alarm``.

    :param encryption_key: an existing key for both queues and the alarm topic (its key policy must let SQS,
        and CloudWatch for the topic, use it). Default: a new key with rotation on.
    :param retention: how long an unconsumed message is kept (60 s..14 days). Default: 4 days.
    :param max_message_size_bytes: largest message accepted (1,024..1,048,576). Default: 256 KiB.
    :param visibility_timeout: how long a received message stays hidden (0 s..12 h). Default: 30 s.
    :param receive_wait_time: long-polling wait of ReceiveMessage (0..20 s). Default: 20 s.
    :param max_receive_count: receives before a message moves to the dead-letter queue (1..1000). Default: 3.
    :param data_key_reuse: how long SQS reuses a data key before calling KMS again (60 s..24 h).
        Default: 1 hour, 12x fewer KMS requests than SQS's 5-minute default (KMS bills per request).
    :param oldest_message_alarm_threshold: alarm when the oldest message is older than this. Default: 15 min.
    :param alarm_topic: an existing topic for the alarms. Default: a new topic encrypted with the queue's key,
        TLS only.
    :param removal_policy: what happens to the queue when it leaves the stack. Default: DESTROY (its name is
        fixed, so a retained queue blocks a redeploy of the stack). The dead-letter queue is always RETAINed.
    :param queue_props: more props for the main ``sqs.Queue`` (e.g. ``delivery_delay``); a prop that would
        switch off a security default, or that one of the props above sets, is refused
        (``REFUSED_QUEUE_PROPS``). Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey | None = None,
        retention: Duration = Duration.days(_DEFAULTS.retention_days),
        max_message_size_bytes: int = _DEFAULTS.max_message_size_bytes,
        visibility_timeout: Duration = Duration.seconds(30),
        receive_wait_time: Duration = MAX_RECEIVE_WAIT,
        max_receive_count: int = _DEFAULTS.max_receive_count,
        data_key_reuse: Duration = Duration.seconds(_DEFAULTS.kms_data_key_reuse_seconds),
        oldest_message_alarm_threshold: Duration = Duration.seconds(_DEFAULTS.oldest_message_alarm_seconds),
        alarm_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        queue_props: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the queue, its dead-letter queue, their key (unless given) and alarms."""
        super().__init__(scope, construct_id)
        problems = Problems(f"EncryptedQueue '{self.node.path}'")
        props = {"retention": retention, "max_message_size_bytes": max_message_size_bytes}
        props |= {"visibility_timeout": visibility_timeout, "receive_wait_time": receive_wait_time}
        props |= {"max_receive_count": max_receive_count, "data_key_reuse": data_key_reuse}
        validate_queue_props(problems, props | {"oldest_message_alarm_threshold": oldest_message_alarm_threshold})
        validate_queue_pass_through(problems, queue_props or {})
        problems.raise_any()

        self.key: kms.IKey = encryption_key or customer_managed_key(
            self, "Key", description=f"Encrypts the messages of {self.node.path}", alias=self._key_alias()
        )
        # The dead-letter queue's redrive-allow policy names its source queue; that queue's name is fixed here,
        # because referring to the queue itself would make a circular dependency (its redrive policy names the DLQ).
        self.queue_name = Names.unique_resource_name(self, max_length=80, separator="-")
        # Formatted from the name rather than read from the queue, so that the key policy can name it too.
        self.queue_arn = Stack.of(self).format_arn(
            service="sqs", resource=self.queue_name, arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        self.dead_letter_queue = self._dead_letter_queue(data_key_reuse, max_message_size_bytes)
        self.queue = sqs.Queue(
            self,
            "Queue",
            **(queue_props or {}),
            queue_name=self.queue_name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=data_key_reuse,
            enforce_ssl=True,
            retention_period=retention,
            max_message_size_bytes=max_message_size_bytes,
            receive_message_wait_time=receive_wait_time,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
            removal_policy=removal_policy,
        )
        self.visibility_timeout = visibility_timeout
        self.redrive_operator_policy = self._redrive_operator_policy()
        self.alarm_topic = alarm_topic or self._encrypted_topic()
        self.age_alarm_threshold = oldest_message_alarm_threshold.to_seconds()
        self.dlq_alarm, self.age_alarm = self._alarms()

    def _key_alias(self) -> str:
        return f"alias/{Names.unique_resource_name(self, max_length=200, separator='-')}"

    def _redrive_operator_policy(self) -> iam.ManagedPolicy:
        """:meth:`redrive_statements` as a managed policy, for the operator's role or permission set."""
        policy = iam.ManagedPolicy(
            self,
            "RedriveOperatorPolicy",
            description=f"{REDRIVE_DESCRIPTION_PREFIX}: move {self.node.path}'s dead letters back (sqs-redrive); "
            "attach to the operator's role or permission set, never to a consumer",
            statements=self.redrive_statements(),
        )
        acknowledge(
            policy,
            wildcard_finding("*"),
            "cloudwatch:GetMetricData has no resource-level permissions (the service authorization reference lists "
            "no resource type for it): sqs-redrive status reads the dead-letter queue's age of oldest message with "
            "it. Every SQS and KMS statement names this queue pair and its key.",
        )
        return policy

    def dashboard_widgets(self) -> list[cloudwatch.IWidget]:
        """Graphs of this queue for a CloudWatch dashboard: depth, age of the oldest message, DLQ depth."""
        period = Duration.minutes(1)
        return [
            cloudwatch.GraphWidget(
                title="Messages visible and in flight",
                left=[
                    self.queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                    self.queue.metric_approximate_number_of_messages_not_visible(period=period, statistic="Maximum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Age of the oldest message (s)",
                left=[self.queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=self.age_alarm_threshold, label="age alarm")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue",
                left=[
                    self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=period, statistic="Maximum"
                    )
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=1, label="DLQ alarm")],
                width=8,
            ),
        ]

    def _dead_letter_queue(self, data_key_reuse: Duration, max_message_size_bytes: int) -> sqs.Queue:
        """The dead-letter queue: same key, the longest retention, kept on delete, redrive only from its source.

        The longest retention SQS allows leaves time to look at failed messages and redrive them (a standard queue
        keeps a message's original enqueue time when it moves to the DLQ, so a shorter retention than the source's
        would expire messages early)."""
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=data_key_reuse,
            enforce_ssl=True,
            retention_period=MAX_RETENTION,
            max_message_size_bytes=max_message_size_bytes,
            receive_message_wait_time=MAX_RECEIVE_WAIT,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            queue,
            "Serverless::Serverless-SQSRedrivePolicy",
            "This queue is itself the dead-letter queue; giving it one more would only move failed messages again.",
        )
        # A Queue's default child is its CfnQueue; the L2 has no redrive-allow property.
        cast(sqs.CfnQueue, queue.node.default_child).add_property_override(
            "RedriveAllowPolicy",
            {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue_arn]},
        )

        return queue

    def _alarms(self) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        """The dead-letter queue has messages; the oldest message waited too long. Both to the alarm topic."""
        dlq_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueNotEmpty",
            alarm_description=f"Messages in {self.node.path}'s dead-letter queue: inspect them, then redrive.",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        age_alarm = cloudwatch.Alarm(
            self,
            "OldestMessageTooOld",
            alarm_description=(
                f"The oldest message in {self.node.path} waited more than "
                f"{self.age_alarm_threshold:.0f} s: consumers are stuck or too few."
            ),
            metric=self.queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            threshold=self.age_alarm_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (dlq_alarm, age_alarm):
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarm_topic))
        return dlq_alarm, age_alarm

    def _encrypted_topic(self) -> sns.Topic:
        """An SNS topic for the alarms, encrypted with the queue's key and reachable only over TLS."""
        stack = Stack.of(self)
        topic = sns.Topic(self, "AlarmTopic", master_key=self.key)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyEveryActionWithoutTls",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(SNS_TOPIC_ACTIONS),
                resources=[topic.topic_arn],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )
        # CloudWatch publishes alarm notifications to the topic: a topic policy replaces SNS's default policy, so
        # the topic must allow it, and SNS encrypts with the key on CloudWatch's behalf, so the key must too. For
        # this stack's alarms only. CloudFormation names an alarm "<stack name>-<logical id>-<suffix>"; the alarms'
        # own ARNs cannot be named here (alarm -> topic -> key -> alarm would be a cycle).
        from_this_stacks_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{stack.stack_name}-*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisStackToPublish",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=from_this_stacks_alarms,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisStackToPublishToTheEncryptedTopic",
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_this_stacks_alarms,
            )
        )
        return topic

    def grant_send(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` send messages: sqs:SendMessage plus kms:GenerateDataKey and kms:Decrypt for this queue."""
        self._grant_key(grantee, PRODUCER_KMS_ACTIONS)
        return self.queue.grant(grantee, *PRODUCER_SQS_ACTIONS)

    def grant_consume(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` receive, delete and change the visibility of messages, plus kms:Decrypt for this queue."""
        self._grant_key(grantee, CONSUMER_KMS_ACTIONS)
        return self.queue.grant(grantee, *CONSUMER_SQS_ACTIONS)

    def redrive_statements(self) -> list[iam.PolicyStatement]:
        """What an operator needs to move this queue's dead letters back (sqs-redrive, or the console's "Start DLQ
        redrive"): ``REDRIVE_DLQ_ACTIONS`` on the dead-letter queue, ``REDRIVE_DESTINATION_ACTIONS`` on this queue,
        the key for these two queues' messages only, and the age metric ``sqs-redrive status`` shows. A consumer
        needs none of it: keep it off the workers and the function (``redrive_operator_policy`` holds it)."""
        return [
            iam.PolicyStatement(
                sid="RedriveFromTheDeadLetterQueue",
                actions=list(REDRIVE_DLQ_ACTIONS),
                resources=[self.dead_letter_queue.queue_arn],
            ),
            iam.PolicyStatement(
                sid="RedriveToItsSourceQueue",
                actions=list(REDRIVE_DESTINATION_ACTIONS),
                resources=[self.queue.queue_arn],
            ),
            iam.PolicyStatement(
                sid="DecryptTheDeadLetters",
                actions=list(CONSUMER_KMS_ACTIONS),
                resources=[self.key.key_arn],
                # Messages moved to the dead-letter queue, and those still under their source queue's data key.
                conditions={
                    "StringEquals": {
                        "kms:EncryptionContext:aws:sqs:arn": [self.dead_letter_queue.queue_arn, self.queue_arn]
                    }
                },
            ),
            iam.PolicyStatement(
                sid="EncryptForTheSourceQueue",
                actions=["kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:EncryptionContext:aws:sqs:arn": self.queue_arn}},
            ),
            iam.PolicyStatement(
                sid="ReadTheAgeOfTheOldestDeadLetter",
                actions=["cloudwatch:GetMetricData"],
                resources=["*"],
            ),
        ]

    def grant_redrive(self, grantee: iam.IGrantable) -> None:
        """Give ``grantee`` (an operator's role) :meth:`redrive_statements`, in its own identity policy."""
        for statement in self.redrive_statements():
            grantee.grant_principal.add_to_principal_policy(statement)

    def _grant_key(self, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
        """The key, for this queue's messages only: a key shared with other queues or a bucket stays closed."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[self.key.key_arn],
            conditions={"StringEquals": {"kms:EncryptionContext:aws:sqs:arn": self.queue_arn}},
        )

    def allow_send_from_accounts(self, account_ids: Sequence[str]) -> None:
        """Let principals of other AWS accounts send messages, through the queue's and the key's resource policies.

        The other account must still grant its own principals sqs:SendMessage on this queue and
        kms:GenerateDataKey / kms:Decrypt on this key in IAM; the TLS-only deny still applies to them.
        """
        if not account_ids:
            return
        principals = [iam.AccountPrincipal(account_id) for account_id in account_ids]
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCrossAccountProducersToSendOnly",
                principals=principals,
                actions=list(PRODUCER_SQS_ACTIONS),
                resources=[self.queue.queue_arn],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCrossAccountProducersToUseTheKeyThroughSqsOnly",
                principals=principals,
                actions=list(PRODUCER_KMS_ACTIONS),
                resources=["*"],
                # Through SQS, for this queue's messages only (SQS sends the queue's ARN as encryption context).
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"sqs.{Stack.of(self).region}.amazonaws.com",
                        "kms:EncryptionContext:aws:sqs:arn": self.queue_arn,
                    }
                },
            )
        )
