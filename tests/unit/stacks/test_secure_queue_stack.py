"""SecureQueueStack: the seed's SQS Security and Access Policies: TLS, KMS, IAM roles, cross-account producers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from aws_cdk.assertions import Match, Template

STACK = "SecureQueueStack"


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    return templates[STACK]


def _statements_of_role(template: Template, role_logical_prefix: str) -> list[dict[str, object]]:
    policies = template.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp(f"^{role_logical_prefix}")}]}},
    )
    assert len(policies) == 1, f"expected one policy for {role_logical_prefix}, found {list(policies)}"
    return list(next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"])


def _actions(statements: list[dict[str, object]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        found |= set(action) if isinstance(action, list) else {action}  # type: ignore[arg-type]
    return found


def test_the_producer_role_may_only_send_to_this_queue_with_this_key(template: Template) -> None:
    statements = _statements_of_role(template, "ProducerRole")
    # THEN exactly these actions, nothing wider
    # (sqs-submit reads the queue's maximum message size, and finds the body key from its alias)
    assert _actions(statements) == {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "kms:DescribeKey",
    }
    # AND each on one resource: the queue (not the DLQ), the queue's key, and the client-side body key
    resources = {s["Resource"]["Fn::GetAtt"][0] for s in statements}  # type: ignore[index]
    assert {r.rstrip("0123456789ABCDEF") for r in resources} == {"JobsQueue", "JobsKey", "BodyKey"}


def test_the_consumer_role_may_only_receive_delete_and_change_visibility(template: Template) -> None:
    statements = _statements_of_role(template, "ConsumerRole")
    assert _actions(statements) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "kms:Decrypt",
    }


def test_no_policy_in_the_stack_grants_a_service_wildcard(template: Template) -> None:
    # GIVEN every identity policy of the stack
    for policy in template.find_resources("AWS::IAM::Policy").values():
        # THEN none allows sqs:* or kms:* (the key policy's root statement is CDK's default account delegation)
        assert not _actions(policy["Properties"]["PolicyDocument"]["Statement"]) & {"sqs:*", "kms:*", "*"}


def test_without_configuration_no_other_account_is_named(template: Template) -> None:
    # GIVEN the default config (no cross-account producers)
    # THEN the queue policies hold only the TLS deny
    for policy in template.find_resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert [s["Effect"] for s in statements] == ["Deny"]


def test_cross_account_producers_may_only_send_and_use_the_key_through_sqs(
    synth_with: Callable[..., Mapping[str, Template]],
) -> None:
    # GIVEN two producer accounts in the configuration
    template = synth_with(cross_account_producer_accounts=["111111111111", "222222222222"])[STACK]
    principals = [
        {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}}
        for account in ("111111111111", "222222222222")
    ]
    # THEN the queue's resource policy lets them SendMessage only, and the TLS deny is still there
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                    Match.object_like(
                        {
                            "Effect": "Allow",
                            "Action": "sqs:SendMessage",
                            "Principal": {"AWS": [p["AWS"] for p in principals]},
                        }
                    ),
                ]
            }
        },
    )
    # AND the key lets them encrypt only when SQS calls KMS on their behalf
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                "Condition": {
                                    "StringEquals": {
                                        "kms:ViaService": {
                                            "Fn::Join": [
                                                "",
                                                ["sqs.", {"Ref": "AWS::Region"}, ".amazonaws.com"],
                                            ]
                                        }
                                    }
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_outputs_name_the_queue_dlq_key_and_roles(template: Template) -> None:
    outputs = template.find_outputs("*")
    assert set(outputs) == {
        "QueueUrl",
        "QueueArn",
        "DeadLetterQueueUrl",
        "RedriveOperatorPolicyArn",
        "KeyArn",
        "BodyKeyArn",
        "ProducerRoleArn",
        "ConsumerRoleArn",
    }


def test_the_stack_is_environment_agnostic_by_default(template: Template) -> None:
    # THEN account and region are CloudFormation pseudo parameters, resolved at deploy time
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"RedriveAllowPolicy": {"sourceQueueArns": [{"Fn::Join": ["", Match.array_with([{"Ref": "AWS::Region"}])]}]}},
    )


def test_the_body_key_lets_the_producer_encrypt_and_the_consumer_decrypt_for_this_queue_only(
    template: Template,
) -> None:
    # GIVEN the client-side encryption key (rotation on) and the queue's fixed name
    template.has_resource_properties(
        "AWS::KMS::Key", {"Description": Match.string_like_regexp("^Client-side"), "EnableKeyRotation": True}
    )
    queue_name = template.find_resources("AWS::SQS::Queue", {"Properties": {"QueueName": Match.any_value()}})
    name = next(iter(queue_name.values()))["Properties"]["QueueName"]
    only_this_queue = {"StringEquals": {"kms:EncryptionContext:sqs_queue": name}}

    def body_key_statements(role: str) -> list[dict[str, object]]:
        return [
            s for s in _statements_of_role(template, role) if str(s["Resource"]).startswith("{'Fn::GetAtt': ['BodyKey")
        ]

    # THEN the producer may only generate data keys, the consumer only decrypt, both for this queue's context
    assert [(s["Action"], s.get("Condition")) for s in body_key_statements("ProducerRole")] == [
        ("kms:DescribeKey", None),
        ("kms:GenerateDataKey", only_this_queue),
    ]
    assert [(s["Action"], s["Condition"]) for s in body_key_statements("ConsumerRole")] == [
        ("kms:Decrypt", only_this_queue)
    ]
