"""Customer-managed KMS keys, each with the key-policy guard every key of this project carries."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def restrict_grants_to_aws_resources(key: kms.IKey) -> None:
    """Deny kms:CreateGrant on ``key`` unless an AWS service creates the grant for one of its resources.

    A grant is a second, policy-free way to hand out the use of a key; a principal allowed CreateGrant could
    give the key to anyone. AWS services that need grants (SQS, S3, EBS, Logs ...) set kms:GrantIsForAWSResource
    (Control Tower control CT.KMS.PR.3).
    """
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyGrantsExceptForAwsResources",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:CreateGrant"],
            resources=["*"],
            conditions={"BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}},
        )
    )


def customer_managed_key(scope: Construct, construct_id: str, *, description: str, alias: str | None = None) -> kms.Key:
    """A KMS key with yearly rotation on and grants limited to AWS services (``restrict_grants_to_aws_resources``)."""
    key = kms.Key(scope, construct_id, description=description, enable_key_rotation=True, alias=alias)
    restrict_grants_to_aws_resources(key)
    return key
