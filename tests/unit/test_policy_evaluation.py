"""The permission rehearsal's policy evaluation against the rules and examples of AWS's documentation: "Policy
evaluation logic" and "Cross-account policy evaluation logic" (IAM User Guide), "Condition operators" (IAM JSON
policy reference), "Default key policy" (KMS Developer Guide), "Control access to VPC endpoints using endpoint
policies" (VPC documentation)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.permissions.arn_formats import arn_matches_format
from tests.support.permissions.evaluation import Decision, Policies, Principal, Request, evaluate

ACCOUNT, OTHER = "111122223333", "444455556666"
ROLE = Principal.role(f"arn:aws:iam::{ACCOUNT}:role/app")
OTHER_ROLE = Principal.role(f"arn:aws:iam::{OTHER}:role/producer")
QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:jobs"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(request: Request, **policies: Any) -> Decision:
    return evaluate(request, Policies(**policies)).decision


def test_nothing_is_allowed_unless_a_policy_allows_it() -> None:
    # "By default, all requests are implicitly denied"
    assert decide(Request(ROLE, "sqs:SendMessage", QUEUE), resource_account=ACCOUNT) is Decision.IMPLICIT_DENY


def test_within_one_account_an_identity_policy_alone_allows() -> None:
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    assert decide(request, identity=[policy(allow("sqs:SendMessage", QUEUE))], resource_account=ACCOUNT) is (
        Decision.ALLOW
    )


def test_within_one_account_a_resource_policy_naming_the_role_alone_allows() -> None:
    statement = allow("sqs:SendMessage", QUEUE, Principal={"AWS": ROLE.arn})
    assert decide(Request(ROLE, "sqs:SendMessage", QUEUE), resource=policy(statement), resource_account=ACCOUNT) is (
        Decision.ALLOW
    )


def test_a_resource_policy_naming_only_the_account_delegates_to_iam() -> None:
    statement = allow("sqs:SendMessage", QUEUE, Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    assert decide(request, resource=policy(statement), resource_account=ACCOUNT) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_anywhere_wins_over_any_allow() -> None:
    request = Request(ROLE, "sqs:SendMessage", QUEUE, {"aws:SecureTransport": False})
    tls_only = policy(deny("sqs:*", QUEUE, Principal="*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    identity = [policy(allow("sqs:*"))]
    assert decide(request, identity=identity, resource=tls_only, resource_account=ACCOUNT) is Decision.EXPLICIT_DENY
    assert decide(Request(ROLE, "sqs:SendMessage", QUEUE), identity=identity, resource=tls_only) is Decision.ALLOW


def test_across_accounts_both_the_identity_and_the_resource_policy_must_allow() -> None:
    request = Request(OTHER_ROLE, "sqs:SendMessage", QUEUE)
    resource = policy(allow("sqs:SendMessage", QUEUE, Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}))
    identity = [policy(allow("sqs:SendMessage", QUEUE))]
    assert decide(request, identity=identity, resource=resource, resource_account=ACCOUNT) is Decision.ALLOW
    assert decide(request, identity=[], resource=resource, resource_account=ACCOUNT) is Decision.IMPLICIT_DENY
    assert decide(request, identity=identity, resource=None, resource_account=ACCOUNT) is Decision.IMPLICIT_DENY


def test_a_key_policy_must_allow_the_principal_or_delegate_to_the_account() -> None:
    request = Request(ROLE, "kms:Decrypt", KEY)
    identity = [policy(allow("kms:Decrypt", KEY))]
    default_key_policy = policy(allow("kms:*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    service_only = policy(allow("kms:*", Principal={"Service": "logs.eu-west-1.amazonaws.com"}))
    kw = {"resource_account": ACCOUNT, "is_key_policy": True}
    # the default key policy enables IAM policies: then the identity policy decides
    assert decide(request, identity=identity, resource=default_key_policy, **kw) is Decision.ALLOW
    assert decide(request, identity=[], resource=default_key_policy, **kw) is Decision.IMPLICIT_DENY
    # without it, no IAM policy can give access to the key
    assert decide(request, identity=identity, resource=service_only, **kw) is Decision.IMPLICIT_DENY


def test_a_role_trust_policy_must_allow_the_caller_even_within_the_account() -> None:
    # "Policy evaluation for requests within a single account": role trust policies, like key policies, are the
    # exception to "an identity policy alone allows"; a trust naming the account delegates to IAM; a trust naming a
    # principal of the account is enough on its own; another account's principal also needs its own identity policy.
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/producer"
    assume = [policy(allow("sts:AssumeRole", role_arn))]
    kw = {"resource_account": ACCOUNT, "is_trust_policy": True}
    trusts_account = policy(allow("sts:AssumeRole", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    names_them = policy(allow("sts:AssumeRole", Principal={"AWS": [ROLE.arn, OTHER_ROLE.arn]}))
    names_another = policy(allow("sts:AssumeRole", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/someone"}))
    mine, theirs = Request(ROLE, "sts:AssumeRole", role_arn), Request(OTHER_ROLE, "sts:AssumeRole", role_arn)
    assert decide(mine, identity=assume, resource=trusts_account, **kw) is Decision.ALLOW
    assert decide(mine, identity=[], resource=trusts_account, **kw) is Decision.IMPLICIT_DENY
    assert decide(mine, identity=[], resource=names_them, **kw) is Decision.ALLOW
    assert decide(mine, identity=assume, resource=names_another, **kw) is Decision.IMPLICIT_DENY
    assert decide(theirs, identity=[], resource=names_them, **kw) is Decision.IMPLICIT_DENY
    assert decide(theirs, identity=assume, resource=names_them, **kw) is Decision.ALLOW


def test_a_service_principal_needs_the_resource_policy() -> None:
    s3 = Principal.aws_service("s3.amazonaws.com")
    context = {"aws:SourceArn": "arn:aws:s3:::uploads", "aws:SourceAccount": ACCOUNT}
    statement = allow(
        "sqs:SendMessage",
        QUEUE,
        Principal={"Service": "s3.amazonaws.com"},
        Condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::uploads"}},
    )
    assert decide(Request(s3, "sqs:SendMessage", QUEUE, context), resource=policy(statement)) is Decision.ALLOW
    other_bucket = context | {"aws:SourceArn": "arn:aws:s3:::elsewhere"}
    assert decide(Request(s3, "sqs:SendMessage", QUEUE, other_bucket), resource=policy(statement)) is (
        Decision.IMPLICIT_DENY
    )


def test_a_vpc_endpoint_policy_must_also_allow() -> None:
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    identity = [policy(allow("sqs:SendMessage", QUEUE))]
    only_this_account = policy(allow("*", Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}))
    only_other = policy(allow("*", Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": OTHER}}))
    assert decide(request, identity=identity, endpoint=only_this_account, resource_account=ACCOUNT) is Decision.ALLOW
    assert decide(request, identity=identity, endpoint=only_other, resource_account=ACCOUNT) is (Decision.IMPLICIT_DENY)


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        # A key missing from the request: no match, except for negated operators, ...IfExists and Null
        ({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, {}, False),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {}, True),
        ({"Null": {"aws:SourceVpc": "true"}}, {}, True),
        ({"Null": {"aws:SourceVpc": "false"}}, {}, False),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}, False),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-2"}, True),
        # Several values of one key: any; several keys or operators: all
        ({"StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}, {"aws:SourceVpc": "vpc-2"}, True),
        (
            {"StringEquals": {"aws:SourceVpc": "vpc-1", "aws:PrincipalAccount": OTHER}},
            {"aws:SourceVpc": "vpc-1"},
            False,
        ),
        # Wildcards, ARNs compared part by part, booleans, case-insensitive key names
        ({"StringLike": {"s3:prefix": "uploads/*"}}, {"s3:prefix": "uploads/a/b.mp4"}, True),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:alarm:Stack-*"}},
            {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:Stack-A"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:alarm:Stack-*"}},
            {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:Other-A"},
            False,
        ),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, True),
        ({"BoolIfExists": {"aws:ViaAWSService": "false"}}, {"aws:ViaAWSService": True}, False),
        ({"StringEquals": {"AWS:SourceVpc": "vpc-1"}}, {"aws:sourcevpc": "vpc-1"}, True),
        # Multivalued keys need a set operator
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b", "c"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b", "c"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        # Policy variables take the request's value
        (
            {"StringEquals": {"aws:ec2InstanceSourceVPC": "${aws:SourceVpc}"}},
            {"aws:ec2InstanceSourceVPC": "vpc-1", "aws:SourceVpc": "vpc-1"},
            True,
        ),
        (
            {"StringEquals": {"aws:ec2InstanceSourceVPC": "${aws:SourceVpc}"}},
            {"aws:ec2InstanceSourceVPC": "vpc-1"},
            False,
        ),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], holds: bool) -> None:
    request = Request(ROLE, "sqs:SendMessage", QUEUE, context)
    identity = [policy(allow("sqs:SendMessage", QUEUE, Condition=condition))]
    expected = Decision.ALLOW if holds else Decision.IMPLICIT_DENY
    assert decide(request, identity=identity, resource_account=ACCOUNT) is expected


def test_not_action_and_not_resource_match_everything_else() -> None:
    identity = [policy({"Effect": "Allow", "NotAction": "sqs:DeleteQueue", "NotResource": f"{QUEUE}-dlq"})]
    assert decide(Request(ROLE, "sqs:SendMessage", QUEUE), identity=identity) is Decision.ALLOW
    assert decide(Request(ROLE, "sqs:DeleteQueue", QUEUE), identity=identity) is Decision.IMPLICIT_DENY
    assert decide(Request(ROLE, "sqs:SendMessage", f"{QUEUE}-dlq"), identity=identity) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards() -> None:
    identity = [policy(allow("KMS:GenerateDataKey*", KEY))]
    assert decide(Request(ROLE, "kms:GenerateDataKeyWithoutPlaintext", KEY), identity=identity) is Decision.ALLOW
    assert decide(Request(ROLE, "kms:Decrypt", KEY), identity=identity) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("resource", "fits"),
    [
        ("arn:aws:autoscaling:eu-west-1:1:autoScalingGroup:*:autoScalingGroupName/workers", True),
        ("arn:aws:autoscaling:eu-west-1:1:autoScalingGroup/*:autoScalingGroupName/workers", False),
        ("arn:aws:autoscaling:eu-west-1:1:launchConfiguration:*:launchConfigurationName/x", False),
        ("*", True),
    ],
)
def test_arn_formats_of_the_service_authorization_reference(resource: str, fits: bool) -> None:
    group = (
        "arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:${GroupId}"
        ":autoScalingGroupName/${GroupFriendlyName}"
    )
    assert arn_matches_format(resource, group) is fits
