"""Escape hatches: an existing key or bucket instead of a new one, and pass-through props for the L2s, validated
like the construct's own props (a pass-through that would switch off a security default is refused, naming it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from sqs_decoupling.common.acknowledgements import acknowledge
from sqs_decoupling.common.nag import enable_nag_checks
from sqs_decoupling.contracts.lambda_function import PYTHON_VERSION
from sqs_decoupling.intake.upload_intake import UploadIntake
from sqs_decoupling.lambda_consumer.lambda_consumer import LambdaQueueConsumer, python_runtime
from sqs_decoupling.queue.client_side_key import ClientSideEncryptionKey
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetStack
from tests.conftest import make_app

TLS_DENY = {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Principal": {"AWS": "*"}}


def _denies_without_tls(statement: dict[str, Any]) -> bool:
    return all(statement.get(key) == value for key, value in TLS_DENY.items())


def _stack() -> Stack:
    return Stack(make_app(), "Hatch")


def test_queue_props_reach_the_queue_and_keep_its_security_defaults() -> None:
    # GIVEN an EncryptedQueue with a delivery delay passed through to sqs.Queue
    stack = _stack()
    enable_nag_checks(stack.node.root)
    EncryptedQueue(stack, "Jobs", queue_props={"delivery_delay": Duration.seconds(30)})
    # WHEN it is synthesized (cdk-nag on: an unacknowledged finding would fail here)
    template = Template.from_stack(stack)
    # THEN the queue has the delay, still only one queue pair, and both queues still deny requests without TLS
    template.has_resource_properties(
        "AWS::SQS::Queue", {"DelaySeconds": 30, "KmsMasterKeyId": Match.any_value(), "RedrivePolicy": Match.any_value()}
    )
    template.resource_count_is("AWS::SQS::Queue", 2)
    for policy in template.find_resources("AWS::SQS::QueuePolicy").values():
        assert any(_denies_without_tls(s) for s in policy["Properties"]["PolicyDocument"]["Statement"])


@pytest.mark.parametrize(
    ("queue_props", "message"),
    [
        ({"enforce_ssl": False}, "queue_props['enforce_ssl'] is not allowed: the queue policy always denies"),
        ({"encryption": None}, "queue_props['encryption'] is not allowed: the queue is always encrypted"),
        ({"dead_letter_queue": None}, "queue_props['dead_letter_queue'] is not allowed"),
        ({"retention_period": Duration.days(2)}, "queue_props['retention_period'] is not allowed: set the construct's"),
        (
            {"delivery_delay": Duration.seconds(901)},
            "queue_props['delivery_delay'] = 901 s is out of range: allowed 0..900 s",
        ),
        ({"colour": "blue"}, "queue_props['colour'] is not a prop of Queue"),
    ],
)
def test_a_queue_prop_that_would_switch_off_a_default_is_refused_naming_it(
    queue_props: dict[str, Any], message: str
) -> None:
    # GIVEN a pass-through prop the construct cannot take WHEN the queue is created THEN it fails naming the prop
    with pytest.raises(ValueError, match="EncryptedQueue 'Hatch/Jobs'") as raised:
        EncryptedQueue(_stack(), "Jobs", queue_props=queue_props)
    assert message in str(raised.value)


def test_every_broken_rule_is_reported_at_once_one_line_each() -> None:
    # GIVEN two props out of range and a refused pass-through
    # WHEN the queue is created
    with pytest.raises(ValueError) as raised:
        EncryptedQueue(
            _stack(),
            "Jobs",
            retention=Duration.seconds(59),
            max_receive_count=0,
            queue_props={"enforce_ssl": False},
        )
    # THEN one error lists all three, each on its own line naming the prop, the value and what is allowed
    lines = str(raised.value).splitlines()
    assert len(lines) == 3
    assert "retention = 59 s is out of range: allowed 60..1209600 s" in lines[0]
    assert "max_receive_count = 0 is out of range: allowed 1..1000" in lines[1]
    assert "queue_props['enforce_ssl'] is not allowed" in lines[2]


def test_an_existing_key_encrypts_the_queues_and_no_key_is_created() -> None:
    # GIVEN a key imported from its ARN
    stack = _stack()
    key = kms.Key.from_key_arn(
        stack, "Theirs", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    EncryptedQueue(stack, "Jobs", encryption_key=key)
    template = Template.from_stack(stack)
    # THEN both queues use it and the template holds no key of its own
    template.resource_count_is("AWS::KMS::Key", 0)
    for queue in template.find_resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == key.key_arn


def _consumer(stack: Stack, **props: Any) -> LambdaQueueConsumer:
    jobs = EncryptedQueue(stack, "Jobs", visibility_timeout=Duration.minutes(10))
    return LambdaQueueConsumer(
        stack,
        "Worker",
        jobs=jobs,
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
        handler="index.handler",
        runtime=python_runtime(PYTHON_VERSION),
        timeout=Duration.seconds(60),
        **props,
    )


def test_function_props_reach_the_function_and_keep_tracing_and_the_role() -> None:
    # GIVEN a consumer with a description passed through to lambda_.Function
    stack = _stack()
    _consumer(stack, function_props={"description": "Resizes thumbnails"})
    template = Template.from_stack(stack)
    # THEN the one function has it, and is still traced and runs as the construct's role
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Description": "Resizes thumbnails", "TracingConfig": {"Mode": "Active"}, "Role": Match.any_value()},
    )


@pytest.mark.parametrize(
    ("function_props", "message"),
    [
        ({"tracing": lambda_.Tracing.DISABLED}, "function_props['tracing'] is not allowed: X-Ray tracing stays active"),
        ({"log_group": None}, "function_props['log_group'] is not allowed"),
        (
            {"timeout": Duration.seconds(5)},
            "function_props['timeout'] is not allowed: set the construct's timeout prop",
        ),
    ],
)
def test_a_function_prop_that_would_switch_off_a_default_is_refused_naming_it(
    function_props: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="LambdaQueueConsumer 'Hatch/Worker'") as raised:
        _consumer(_stack(), function_props=function_props)
    assert message in str(raised.value)


def test_an_existing_bucket_feeds_the_queue_and_no_bucket_is_created() -> None:
    # GIVEN an uploads bucket of the user's, imported by name
    stack = _stack()
    jobs = EncryptedQueue(stack, "Jobs")
    bucket = s3.Bucket.from_bucket_name(stack, "Theirs", "their-uploads")
    intake = UploadIntake(stack, "Uploads", jobs=jobs, existing_bucket=bucket)
    template = Template.from_stack(stack)
    # THEN the intake uses it, the template creates no bucket, and the notification names it
    assert intake.bucket is bucket
    template.resource_count_is("AWS::S3::Bucket", 0)
    template.has_resource_properties("Custom::S3BucketNotifications", {"BucketName": "their-uploads"})
    # AND S3 may still send to the queue only from that bucket, of this account
    statements = [
        statement
        for policy in template.find_resources("AWS::SQS::QueuePolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    assert len(statements) == 1
    assert statements[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":::their-uploads" in json.dumps(statements[0]["Condition"]["ArnLike"]["aws:SourceArn"])


def test_a_new_uploads_bucket_needs_its_access_log_bucket() -> None:
    stack = _stack()
    with pytest.raises(ValueError, match="UploadIntake 'Hatch/Uploads': access_logs is required"):
        UploadIntake(stack, "Uploads", jobs=EncryptedQueue(stack, "Jobs"))


def test_an_existing_body_key_is_used_and_its_grants_keep_the_queue_context() -> None:
    # GIVEN a client-side encryption key of the user's
    stack = _stack()
    key = kms.Key.from_key_arn(
        stack, "Body", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    body_key = ClientSideEncryptionKey(stack, "BodyKey", queue_name="jobs", existing_key=key)
    role = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
    body_key.grant_decrypt(role)
    template = Template.from_stack(stack)
    # THEN no key is created and the grant names that key, for this queue's bodies only
    template.resource_count_is("AWS::KMS::Key", 0)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "kms:Decrypt",
                        "Resource": key.key_arn,
                        "Condition": {"StringEquals": {"kms:EncryptionContext:sqs_queue": "jobs"}},
                    }
                ]
            }
        },
    )


def test_a_body_key_without_a_queue_name_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"ClientSideEncryptionKey 'Hatch/BodyKey': queue_name = '' must name the queue"
    ):
        ClientSideEncryptionKey(_stack(), "BodyKey", queue_name="")


def test_the_fleet_runs_in_an_existing_vpc_without_creating_one() -> None:
    # GIVEN a VPC with private subnets in a network stack of the user's, and cdk-nag on the fleet's stack
    app = make_app()
    network = Stack(app, "Network")
    vpc = ec2.Vpc(
        network,
        "Vpc",
        max_azs=2,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="edge", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        ],
    )
    acknowledge(
        vpc, "AwsSolutions::AwsSolutions-VPC7", "The user's own VPC: its flow logs are the user's business here."
    )
    fleet = WorkerFleetStack(app, "Fleet", existing_vpc=vpc)
    enable_nag_checks(fleet)
    # WHEN the fleet's stack is synthesized
    template = Template.from_stack(fleet)
    # THEN it creates no VPC, its group runs in the given VPC's subnets, and the workers still allow nothing in
    template.resource_count_is("AWS::EC2::VPC", 0)
    group = next(iter(template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()))
    assert "Network" in json.dumps(group["Properties"]["VPCZoneIdentifier"])
    for security_group in template.find_resources("AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in security_group["Properties"]
