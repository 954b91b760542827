"""EncryptedQueue: encryption, dead-letter queue, TLS-only policies, limits, alarms, grants, prop validation."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Capture, Match, Template

from sqs_decoupling.queue.encrypted_queue import SNS_TOPIC_ACTIONS, EncryptedQueue
from tests.conftest import make_app

TLS_DENY = {
    "Effect": "Deny",
    "Action": "sqs:*",
    "Principal": {"AWS": "*"},
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.fixture(scope="module")
def template() -> Template:
    """A stack holding one EncryptedQueue with its defaults, a producer role and a consumer role."""
    stack = Stack(make_app(), "QueueUnderTest")
    queue = EncryptedQueue(stack, "Jobs")
    queue.grant_send(iam.Role(stack, "Producer", assumed_by=iam.AccountRootPrincipal()))
    queue.grant_consume(iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal()))
    return Template.from_stack(stack)


def _queue_with_dlq(template: Template) -> dict[str, object]:
    queues = template.find_resources("AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}})
    assert len(queues) == 1
    return next(iter(queues.values()))


def test_a_customer_managed_key_with_rotation_encrypts_both_queues(template: Template) -> None:
    # GIVEN an EncryptedQueue with its defaults
    # THEN there is one customer-managed key, with rotation and an alias
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.resource_count_is("AWS::KMS::Alias", 1)
    # AND both queues use it, with a one-hour data key reuse period
    key_id = Capture()
    template.resource_count_is("AWS::SQS::Queue", 2)
    template.all_resources_properties(
        "AWS::SQS::Queue",
        {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}, "KmsDataKeyReusePeriodSeconds": 3600},
    )
    assert key_id.as_string() in template.find_resources("AWS::KMS::Key")


def test_the_queue_has_the_documented_defaults(template: Template) -> None:
    # THEN retention 4 days, 256 KiB messages, long polling 20 s, visibility 30 s, 3 receives before the DLQ
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "MessageRetentionPeriod": 4 * 24 * 3600,
            "MaximumMessageSize": 256 * 1024,
            "ReceiveMessageWaitTimeSeconds": 20,
            "VisibilityTimeout": 30,
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 3},
        },
    )


def test_the_dead_letter_queue_keeps_messages_14_days_and_accepts_only_its_source(template: Template) -> None:
    # GIVEN the source queue's fixed name
    source_name = _queue_with_dlq(template)["Properties"]["QueueName"]  # type: ignore[index]
    dlq_logical_id = Capture()
    template.has_resource_properties(
        "AWS::SQS::Queue", {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_logical_id, "Arn"]}}}
    )
    # THEN the DLQ keeps messages for the maximum and redrive is allowed only from that queue
    dlq = template.to_json()["Resources"][dlq_logical_id.as_string()]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    assert len(allow["sourceQueueArns"]) == 1
    arn_parts = allow["sourceQueueArns"][0]["Fn::Join"][1]
    assert arn_parts[-1] == f":{source_name}"
    assert {"Ref": "AWS::AccountId"} in arn_parts
    # AND the DLQ has no DLQ of its own
    assert "RedrivePolicy" not in dlq


def test_both_queues_deny_every_request_without_tls(template: Template) -> None:
    policies = template.find_resources("AWS::SQS::QueuePolicy")
    # THEN each of the two queues has a policy whose statements include the TLS deny on that queue
    assert len(policies) == 2
    for policy in policies.values():
        queue_ref = policy["Properties"]["Queues"][0]["Ref"]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert TLS_DENY | {"Resource": {"Fn::GetAtt": [queue_ref, "Arn"]}} in statements


def test_alarms_watch_the_dlq_and_the_oldest_message_and_notify_an_encrypted_tls_only_topic(
    template: Template,
) -> None:
    topic = Capture()
    # THEN the DLQ alarm fires on one visible message within a minute
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Statistic": "Maximum",
            "Period": 60,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": topic}],
        },
    )
    # AND the age alarm fires when the oldest message is older than 15 minutes, to the same topic
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Threshold": 900,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [{"Ref": topic.as_string()}],
        },
    )
    # AND the topic is encrypted with the key and denies publishing without TLS
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [Match.any_value(), "Arn"]}})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic.as_string()}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )
    # AND CloudWatch may use the key for this account's alarms only
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                            }
                        )
                    ]
                )
            }
        },
    )


def _role_actions(template: Template, role_prefix: str) -> list[tuple[tuple[str, ...], str]]:
    """(actions, resource logical id) of each statement of the role's policy."""
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp(f"^{role_prefix}")}]}}
    )
    assert len(policies) == 1
    statements = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    result = []
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        result.append((tuple(sorted(actions)), statement["Resource"]["Fn::GetAtt"][0]))
    return sorted(result)


def test_grant_send_gives_send_and_the_two_kms_actions_sqs_needs(template: Template) -> None:
    actions = _role_actions(template, "Producer")
    assert [a for a, _ in actions] == [("kms:Decrypt", "kms:GenerateDataKey"), ("sqs:SendMessage",)]


def test_grant_consume_gives_receive_delete_visibility_and_decrypt(template: Template) -> None:
    actions = _role_actions(template, "Consumer")
    assert [a for a, _ in actions] == [
        ("kms:Decrypt",),
        ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"),
    ]


def test_a_key_passed_in_is_used_instead_of_a_new_one() -> None:
    # GIVEN a key created elsewhere in the stack
    stack = Stack(make_app(), "OwnKey")
    key = kms.Key(stack, "SharedKey", enable_key_rotation=True)
    # WHEN an EncryptedQueue is given it
    EncryptedQueue(stack, "Jobs", encryption_key=key, retention=Duration.days(7), max_receive_count=5)
    template = Template.from_stack(stack)
    # THEN no second key is made and both queues use the given one
    template.resource_count_is("AWS::KMS::Key", 1)
    key_id = stack.get_logical_id(key.node.default_child)  # type: ignore[arg-type]
    template.all_resources_properties("AWS::SQS::Queue", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})
    # AND the props given are applied
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"MessageRetentionPeriod": 7 * 24 * 3600, "RedrivePolicy": Match.object_like({"maxReceiveCount": 5})},
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"retention": Duration.seconds(59)}, "retention = 59 s is out of range: allowed 60..1209600 s"),
        ({"retention": Duration.days(15)}, "retention = 1296000 s"),
        (
            {"max_message_size_bytes": 1024 * 1024 + 1},
            "max_message_size_bytes = 1048577 bytes is out of range: allowed 1024..1048576",
        ),
        ({"max_message_size_bytes": 1000}, "max_message_size_bytes = 1000 bytes"),
        (
            {"visibility_timeout": Duration.hours(13)},
            "visibility_timeout = 46800 s is out of range: allowed 0..43200 s",
        ),
        ({"receive_wait_time": Duration.seconds(21)}, "receive_wait_time = 21 s is out of range: allowed 0..20 s"),
        ({"max_receive_count": 0}, "max_receive_count = 0 is out of range: allowed 1..1000"),
        ({"data_key_reuse": Duration.seconds(30)}, "data_key_reuse = 30 s is out of range: allowed 60..86400 s"),
        ({"oldest_message_alarm_threshold": Duration.seconds(10)}, "oldest_message_alarm_threshold = 10 s"),
    ],
)
def test_an_out_of_range_prop_fails_synthesis_naming_prop_value_and_range(
    props: dict[str, object], message: str
) -> None:
    # GIVEN a prop outside what SQS allows
    stack = Stack(make_app(), "Invalid")
    # WHEN the construct is created
    # THEN it fails with the construct path, the prop, its value and the allowed range
    with pytest.raises(ValueError, match="EncryptedQueue 'Invalid/Jobs'") as raised:
        EncryptedQueue(stack, "Jobs", **props)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_the_topic_denies_every_action_without_tls(template: Template) -> None:
    # GIVEN the alarm topic's policy
    policy = next(iter(template.find_resources("AWS::SNS::TopicPolicy").values()))
    deny = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    # THEN one statement denies every action a topic policy governs, not only sns:Publish, to anyone without TLS
    assert len(deny) == 1
    assert sorted(deny[0]["Action"]) == sorted(SNS_TOPIC_ACTIONS)
    assert len(SNS_TOPIC_ACTIONS) == 8
    assert deny[0]["Principal"] == {"AWS": "*"}
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cloudwatch_may_use_the_key_only_for_alarms_of_this_stack(template: Template) -> None:
    # GIVEN the key policy statement for CloudWatch
    key = next(iter(template.find_resources("AWS::KMS::Key").values()))
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    # THEN it names this account and the alarms CloudFormation names after this stack
    assert cloudwatch[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = cloudwatch[0]["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
    assert source_arn[-1] == ":alarm:QueueUnderTest-*"


def test_the_key_denies_grants_except_for_aws_resources(template: Template) -> None:
    # GIVEN the key policy
    key = next(iter(template.find_resources("AWS::KMS::Key").values()))
    # THEN kms:CreateGrant is denied to everyone unless an AWS service asks for one of its resources (CT.KMS.PR.3)
    assert {
        "Sid": "DenyGrantsExceptForAwsResources",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "kms:CreateGrant",
        "Resource": "*",
        "Condition": {"BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}},
    } in key["Properties"]["KeyPolicy"]["Statement"]


def test_the_dead_letter_queue_is_retained_and_the_queue_follows_its_removal_policy(template: Template) -> None:
    # GIVEN the default removal policy (DESTROY): the queue's name is fixed, a retained queue would block a redeploy
    queue = _queue_with_dlq(template)
    dlq_id = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]  # type: ignore[index]
    assert queue["DeletionPolicy"] == "Delete"
    # THEN the dead-letter queue is kept when the stack is deleted: dead letters wait for a redrive
    assert template.to_json()["Resources"][dlq_id]["DeletionPolicy"] == "Retain"
    # AND with RETAIN, the main queue is kept too
    stack = Stack(make_app(), "Kept")
    EncryptedQueue(stack, "Jobs", removal_policy=RemovalPolicy.RETAIN)
    assert _queue_with_dlq(Template.from_stack(stack))["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("role", ["Producer", "Consumer"])
def test_grants_use_the_key_only_for_this_queues_messages(template: Template, role: str) -> None:
    # GIVEN the producer's and the consumer's statements on the key
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp(f"^{role}")}]}}
    )
    statements = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    on_key = [s for s in statements if str(s["Action"]).startswith("kms") or "kms:" in str(s["Action"])]
    # THEN the key may be used only under the encryption context SQS sets for this queue (aws:sqs:arn)
    queue_name = _queue_with_dlq(template)["Properties"]["QueueName"]  # type: ignore[index]
    assert len(on_key) == 1
    context = on_key[0]["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]["Fn::Join"][1]
    assert context[-1] == f":{queue_name}"


def _redrive_policy(template: Template) -> dict[str, Any]:
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    assert len(policies) == 1
    return next(iter(policies.values()))["Properties"]  # type: ignore[no-any-return]


def test_a_redrive_operator_policy_grants_what_sqs_documents_on_this_queue_pair_only(template: Template) -> None:
    # GIVEN an EncryptedQueue WHEN its redrive operator policy is read
    statements = {s["Sid"]: s for s in _redrive_policy(template)["PolicyDocument"]["Statement"]}
    dlq_id = next(
        logical_id
        for logical_id, queue in template.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" not in queue["Properties"]
    )
    queue_id = _queue_with_dlq(template)
    queue_logical_id = next(k for k, v in template.find_resources("AWS::SQS::Queue").items() if v == queue_id)
    # THEN the dead-letter queue gets the developer guide's redrive actions, and nothing else does
    assert statements["RedriveFromTheDeadLetterQueue"]["Action"] == sorted(
        [
            "sqs:StartMessageMoveTask",
            "sqs:CancelMessageMoveTask",
            "sqs:ListMessageMoveTasks",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ListDeadLetterSourceQueues",
        ]
    )
    assert statements["RedriveFromTheDeadLetterQueue"]["Resource"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    # AND the source queue may only be sent to
    assert statements["RedriveToItsSourceQueue"]["Action"] == "sqs:SendMessage"
    assert statements["RedriveToItsSourceQueue"]["Resource"] == {"Fn::GetAtt": [queue_logical_id, "Arn"]}
    # AND the key: decrypt for the dead letters (either queue's context), data keys for the source queue only
    decrypt, encrypt = statements["DecryptTheDeadLetters"], statements["EncryptForTheSourceQueue"]
    assert (decrypt["Action"], encrypt["Action"]) == ("kms:Decrypt", "kms:GenerateDataKey")
    contexts = decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]
    assert contexts[0] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert contexts[1] == encrypt["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]
    # AND the only wildcard is the age metric's read, which has no resource type
    wildcards = [s for s in statements.values() if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcards] == ["cloudwatch:GetMetricData"]
    assert len(statements) == 5


def test_the_redrive_policy_is_attached_to_no_one(template: Template) -> None:
    # GIVEN the producer and consumer roles of the fixture THEN neither holds a redrive action: the managed policy
    # stands alone, for an operator to attach, and no grant_* gives its actions
    assert not {"Roles", "Users", "Groups"} & set(_redrive_policy(template))
    for role in ("Producer", "Consumer"):
        assert not [a for a, _ in _role_actions(template, role) if any("MessageMoveTask" in x for x in a)]


def test_grant_redrive_gives_a_role_the_same_statements() -> None:
    # GIVEN an operator role granted the redrive WHEN synthesized
    stack = Stack(make_app(), "Operator")
    queue = EncryptedQueue(stack, "Jobs")
    queue.grant_redrive(iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal()))
    template = Template.from_stack(stack)
    # THEN its inline policy holds exactly the managed policy's statements
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("^Operator")}]}}
    )
    inline = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    assert inline == _redrive_policy(template)["PolicyDocument"]["Statement"]
