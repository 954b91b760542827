"""The permission rehearsal: every AWS call each principal makes, evaluated against the synthesized policies.

moto evaluates no policy, so every test on moto passes whatever the policies say. Here each call (the runtime's,
recorded from the moto-server runs into ``tests/support/permissions/calls.py``; AWS's on the runtime's behalf; the
service principals'; SecureQueueStack's roles and a cross-account producer) becomes the authorization request AWS
makes, with its real ARN and documented context keys, and AWS's evaluation logic decides it over the identity,
queue, topic, bucket, key and VPC endpoint policies of the deployment (``tests/support/permissions``).

Also here: every statement's resources against its actions' ARN formats (the service authorization reference), and
what a new account checks before any call. The default deployment in the inner loop; every configuration of the
matrix in ``make test``. Each defect the rehearsal was built to find is put back into a good template to show it
is found.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import SynthesizedApp
from tests.support.permissions import arn_formats, new_account
from tests.support.permissions.calls import CATALOGUE
from tests.support.permissions.cfn import Deployment, Stack
from tests.support.permissions.evaluation import Decision, Principal, Request, evaluate
from tests.support.permissions.rehearsal import Check, Rehearsal
from tests.support.schedule import CONFIGURATION_MATRIX
from tests.unit.stacks.conftest import CONFIGURATIONS, Built, deployment_of


def _refused(checks: list[Check]) -> list[str]:
    refused = []
    for check in checks:
        outcome = check.outcome()
        if check.no_route or not outcome.allowed:
            refused.append(f"{check}: {check.no_route or outcome.reason}")
    return refused


@pytest.fixture(scope="module")
def default(synthesized: SynthesizedApp) -> Deployment:
    """The default app (cdk.json's context), deployed into an example account and region (once for every test
    here: a test that changes a template changes a copy, see ``_edited``)."""
    return Deployment.from_assembly(synthesized.outdir)


def _edited(deployment: Deployment, edit: Callable[[str, dict[str, Any]], None]) -> Deployment:
    """A copy of ``deployment`` whose templates ``edit(stack name, template)`` changed (new stacks: a stack keeps
    the properties it resolved from its own template)."""
    templates = {name: copy.deepcopy(dict(stack.template)) for name, stack in deployment.stacks.items()}
    for name, template in templates.items():
        edit(name, template)
    edited = Deployment(
        {name: Stack(name, templates[name], stack.account, stack.region) for name, stack in deployment.stacks.items()},
        deployment.account,
        deployment.region,
    )
    for stack in edited.stacks.values():
        stack.deployment = edited
    return edited


# The default deployment ----------------------------------------------------------------------------------------


def test_every_call_of_every_principal_is_allowed(default: Deployment) -> None:
    # GIVEN the default deployment's checks: every call of every principal
    checks = Rehearsal(default).checks()
    callers = {check.caller for check in checks}
    assert {
        "worker",
        "lambda",
        "s3.amazonaws.com",
        "cloudwatch.amazonaws.com",
        "AWSServiceRoleForAutoScaling",
    } <= callers
    assert "logs.eu-west-1.amazonaws.com" in callers
    # (kms calls need client-side encryption's body key: the matrix's configurations with it check them)
    runtime = {
        (e.principal, f"{e.service}.{e.operation}")
        for e in CATALOGUE
        if e.principal in ("worker", "lambda") and e.service != "kms"
    }
    assert {(c.caller, c.what) for c in checks} >= runtime
    producer = {f"{e.service}.{e.operation}" for e in CATALOGUE if e.principal == "producer" and e.service == "sqs"}
    assert producer <= {c.what for c in checks if c.caller == "ProducerRole1F1AC001"}
    # THEN AWS would allow each one, through a route the network offers
    assert _refused(checks) == []


def test_every_policy_names_only_resources_its_actions_can_apply_to(default: Deployment) -> None:
    assert arn_formats.deployment_mismatches(default) == []


def test_a_new_account_can_deploy_the_default(default: Deployment) -> None:
    # THEN no key policy names a principal a new account may not have (a service-linked role), and no function
    # reserves concurrency (a new account's quota may leave nothing to reserve)
    assert list(new_account.key_policy_principals_that_may_not_exist(default)) == []
    assert new_account.reserved_concurrency(default) == {}


def test_worker_credentials_used_outside_the_fleets_vpc_are_denied(default: Deployment) -> None:
    # GIVEN each call the worker makes itself from the isolated network (through a VPC endpoint)
    rehearsal = Rehearsal(default)
    direct = [c for c in rehearsal.checks() if c.caller == "worker" and "aws:SourceVpce" in c.request.context]
    assert len(direct) >= 10
    # WHEN the same credentials make the same calls from anywhere else
    outside = [rehearsal.from_outside(check) for check in direct]
    # THEN every one is denied explicitly
    assert {check.outcome().decision for check in outside} == {Decision.EXPLICIT_DENY}


def _role_ids(deployment: Deployment) -> dict[str, str]:
    """SecureQueueStack's producer and consumer roles: "producer"/"consumer" -> logical id."""
    stack = deployment.stacks["SecureQueueStack"]
    return {
        ("producer" if "send" in str(r["Properties"]["Description"]) else "consumer"): role_id
        for role_id, r in stack.of_type("AWS::IAM::Role").items()
        if str(r["Properties"].get("Description", "")).startswith("May only")
    }


def test_by_default_a_principal_of_the_account_assumes_the_roles_only_if_its_own_policy_allows(
    default: Deployment,
) -> None:
    # GIVEN the default trust of SecureQueueStack's roles (the account), and a role of the account
    rehearsal, stack = Rehearsal(default), default.stacks["SecureQueueStack"]
    for role_id in _role_ids(default).values():
        [check] = rehearsal.assume_role_checks(stack, role_id, f"arn:aws:iam::{stack.account}:role/anyone")
        # WHEN it calls sts:AssumeRole with an identity policy that allows it, and without
        without = dataclasses.replace(check, policies=dataclasses.replace(check.policies, identity=[]))
        # THEN its own policy decides: allowed with it, denied without (the trust alone is not enough)
        assert check.outcome().allowed, check.outcome().reason
        assert without.outcome().decision is Decision.IMPLICIT_DENY


@pytest.mark.slow
@pytest.mark.xdist_group(CONFIGURATION_MATRIX)
def test_named_principals_alone_may_assume_the_roles(synthesized_matrix: dict[str, Built]) -> None:
    # GIVEN a configuration naming the principals that may assume the producer and the consumer role
    deployment = deployment_of(synthesized_matrix, "queues-and-intake")
    rehearsal, stack, roles = Rehearsal(deployment), deployment.stacks["SecureQueueStack"], _role_ids(deployment)
    named = CONFIGURATIONS["queues-and-intake"]
    for kind, role_id in roles.items():
        # WHEN each named principal assumes its role (the rehearsal's own checks), and another role of the account
        # whose identity policy allows sts:AssumeRole on everything tries the same
        checks = list(rehearsal.assume_role_checks(stack, role_id))
        [stranger] = rehearsal.assume_role_checks(stack, role_id, f"arn:aws:iam::{stack.account}:role/anyone")
        # THEN the named ones may, and no one else
        assert sorted(c.caller for c in checks) == sorted(named[f"{kind}_principals"].split(","))
        assert all(c.outcome().allowed for c in checks)
        assert stranger.outcome().decision is Decision.IMPLICIT_DENY, stranger.outcome().reason


def test_a_redrive_operator_may_redrive_every_stacks_dead_letter_queue(default: Deployment) -> None:
    # GIVEN, per stack, a role with only that stack's redrive operator policy making sqs-redrive's calls
    operator = [c for c in Rehearsal(default).checks() if c.caller == "operator"]
    # THEN each stack's operator makes the move task's and the copy's calls, with the key behind them
    assert {c.stack for c in operator} == set(default.stacks)
    for stack in default.stacks:
        actions = {c.request.action for c in operator if c.stack == stack}
        assert {
            "sqs:StartMessageMoveTask",
            "sqs:CancelMessageMoveTask",
            "sqs:ListMessageMoveTasks",
            "sqs:ListDeadLetterSourceQueues",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:SendMessage",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "cloudwatch:GetMetricData",
        } <= actions
    # AND AWS would allow each one
    assert _refused(operator) == []


def test_no_consumer_may_redrive(default: Deployment) -> None:
    # GIVEN the operator's move task calls, and every consumer principal of the deployment (workers, the function,
    # SecureQueueStack's consumer role)
    rehearsal = Rehearsal(default)
    checks = rehearsal.checks()
    moves = [c for c in checks if c.caller == "operator" and c.request.action.endswith("MessageMoveTask")]
    consumers = {(a.stack.name, a.role_arn) for a in rehearsal.actors()}
    consumers |= {(c.stack, c.request.principal.arn or "") for c in checks if c.caller.startswith("ConsumerRole")}
    assert len(consumers) == 3
    assert moves
    # WHEN each consumer makes them on its own stack's dead-letter queue
    for check in moves:
        for stack, role_arn in consumers:
            if stack != check.stack:
                continue
            request = Request(Principal.role(role_arn), check.request.action, check.request.resource, {})
            policies = dataclasses.replace(check.policies, identity=rehearsal.identity_policies(role_arn))
            # THEN AWS refuses: the redrive policy is the operator's alone
            assert not evaluate(request, policies).allowed, f"{role_arn} may {check.request.action}"


# Each defect the rehearsal was built to find, put back into the default templates ------------------------------


def test_it_finds_a_redrive_policy_without_the_key(default: Deployment) -> None:
    # GIVEN the redrive operator policies as AWS's unencrypted example has them: no KMS statement
    def no_key(_: str, template: dict[str, Any]) -> None:
        for statement in _statements_of(template, "AWS::IAM::ManagedPolicy"):
            if statement.get("Sid") == "DecryptTheDeadLetters":
                statement["Action"] = "sqs:ListQueues"

    refused = _refused(Rehearsal(_edited(default, no_key)).checks())
    # THEN in every stack the operator's receive from the encrypted dead-letter queue is refused by KMS
    decrypts = [line for line in refused if ": operator: " in line and "kms:Decrypt" in line]
    assert {line.split(":")[0] for line in decrypts} == set(default.stacks)


def _statements_of(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == resource_type:
            props = resource["Properties"]
            found.extend((props.get("PolicyDocument") or props.get("KeyPolicy"))["Statement"])
    return found


def test_it_finds_alarm_topics_that_refuse_cloudwatch(default: Deployment) -> None:
    # GIVEN the topic policies as 2ce924a had them: a TLS deny and nothing else (it replaces SNS's default policy)
    def only_the_tls_deny(_: str, template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SNS::TopicPolicy":
                statements = resource["Properties"]["PolicyDocument"]["Statement"]
                statements[:] = [s for s in statements if s["Effect"] == "Deny"]

    refused = _refused(Rehearsal(_edited(default, only_the_tls_deny)).checks())
    # THEN every alarm's publish is refused, in every stack
    publishes = [line for line in refused if "cloudwatch.amazonaws.com: alarm" in line and "sns:Publish" in line]
    assert {line.split(":")[0] for line in publishes} == set(default.stacks)


def test_it_finds_the_auto_scaling_group_arn_with_a_slash(default: Deployment) -> None:
    # GIVEN the group actions on arn:...:autoScalingGroup/*:autoScalingGroupName/<name>, as 2ce924a had them
    def slash(_: str, template: dict[str, Any]) -> None:
        for statement in _statements_of(template, "AWS::IAM::Policy"):
            if "autoscaling:SetInstanceProtection" in statement["Action"]:
                parts = statement["Resource"]["Fn::Join"][1]
                parts[:] = [
                    p.replace(":autoScalingGroup:", ":autoScalingGroup/") if isinstance(p, str) else p for p in parts
                ]

    mismatched = arn_formats.deployment_mismatches(_edited(default, slash))
    # THEN each of the three actions is reported against that resource
    assert sorted(m.action for m in mismatched) == [
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:SetInstanceProtection",
    ]


def test_it_finds_a_service_linked_role_named_as_a_key_principal(default: Deployment) -> None:
    # GIVEN the transcode key naming AWSServiceRoleForAutoScaling as its principal, as 2ce924a did
    def name_the_role(_: str, template: dict[str, Any]) -> None:
        for statement in _statements_of(template, "AWS::KMS::Key"):
            if statement.get("Sid") == "AllowAutoScalingNotificationsToTheEncryptedTopic":
                statement["Principal"] = {"AWS": statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]}

    found = list(new_account.key_policy_principals_that_may_not_exist(_edited(default, name_the_role)))
    # THEN the new-account check names it
    assert len(found) == 1
    assert found[0].endswith("role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")


def test_it_finds_reserved_concurrency(default: Deployment) -> None:
    def reserve(_: str, template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Lambda::Function" and "Layers" in resource["Properties"]:
                resource["Properties"]["ReservedConcurrentExecutions"] = 10

    assert list(new_account.reserved_concurrency(_edited(default, reserve)).values()) == [10]


def test_it_finds_a_key_statement_for_s3_that_relies_on_keys_sqs_does_not_send(default: Deployment) -> None:
    # GIVEN S3's statement on a queue key conditioned on aws:SourceArn / aws:SourceAccount, as 2ce924a had it
    def source_conditions(_: str, template: dict[str, Any]) -> None:
        for statement in _statements_of(template, "AWS::KMS::Key"):
            if statement.get("Sid", "").startswith("AllowS3ToEncryptNotifications"):
                statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "111122223333"}}

    refused = _refused(Rehearsal(_edited(default, source_conditions)).checks())
    # THEN S3's data-key requests through SQS are refused
    assert [line for line in refused if "s3.amazonaws.com" in line and "kms:GenerateDataKey" in line]


# Every configuration of the matrix -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group(CONFIGURATION_MATRIX)
@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_every_call_is_allowed_in_every_configuration(synthesized_matrix: dict[str, Built], name: str) -> None:
    # GIVEN every stack of the configuration (both network modes, client-side encryption on and off, cross-account
    # producers, a concrete account and region)
    deployment = deployment_of(synthesized_matrix, name)
    # THEN every call is allowed, every policy's resources fit its actions, and a new account can deploy it
    assert _refused(Rehearsal(deployment).checks()) == []
    assert arn_formats.deployment_mismatches(deployment) == []
    assert list(new_account.key_policy_principals_that_may_not_exist(deployment)) == []
