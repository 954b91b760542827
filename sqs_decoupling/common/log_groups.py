"""Every log group explicit, KMS-encrypted and kept for the configured time, CDK's own handler functions included.

``EncryptedLogGroups`` is an aspect a stack adds to itself: at synthesis it gives every Lambda function that has
no log group of its own (CDK's bucket-notifications handler, its custom-resource providers) an explicit one, and
encrypts every log group that has no key with the stack's logs key. So the Control Tower controls CT.CLOUDWATCH.PR.2
(retention >= 1 year) and CT.CLOUDWATCH.PR.3 (KMS) hold for log groups the project never creates by hand.
"""

from __future__ import annotations

from typing import cast

import jsii
from aws_cdk import ArnFormat, CfnResource, IAspect, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from sqs_decoupling.common.keys import customer_managed_key

# The retention periods CloudWatch Logs accepts, from one year up (Control Tower's CT.CLOUDWATCH.PR.2 minimum).
RETENTION_DAYS = {
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
LOGS_KEY_ID = "LogsKey"


def logs_key(stack: Stack) -> kms.IKey:
    """The stack's one key for its log groups (created on first use): CloudWatch Logs may use it for this
    account's log groups in this region only, through the log group's encryption context."""
    existing = stack.node.try_find_child(LOGS_KEY_ID)
    if existing is not None:
        return cast(kms.IKey, existing)  # only logs_key adds a child with this id
    key = customer_managed_key(stack, LOGS_KEY_ID, description=f"Encrypts the log groups of {stack.stack_name}")
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsForThisAccountsLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return key


def encrypted_log_group(scope: IConstruct, construct_id: str, *, retention_days: int) -> logs.LogGroup:
    """A log group encrypted with the stack's logs key, kept ``retention_days`` (a key of RETENTION_DAYS)."""
    if retention_days not in RETENTION_DAYS:
        raise ValueError(
            f"Log group '{scope.node.path}/{construct_id}': retention_days is {retention_days}, "
            f"allowed one of {sorted(RETENTION_DAYS)}."
        )
    return logs.LogGroup(
        cast(Construct, scope),  # every construct jsii hands an aspect is a Construct
        construct_id,
        retention=RETENTION_DAYS[retention_days],
        encryption_key=logs_key(Stack.of(scope)),
    )


@jsii.implements(IAspect)
class EncryptedLogGroups:
    """Aspect: an explicit, encrypted log group for every function without one; a key on every log group."""

    def __init__(self, *, retention_days: int) -> None:
        self.retention_days = retention_days

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, logs.CfnLogGroup):
            if node.kms_key_id is None:
                node.kms_key_id = logs_key(Stack.of(node)).key_arn
            if node.retention_in_days is None:
                node.retention_in_days = self.retention_days
        elif isinstance(node, lambda_.CfnFunction):
            managed = node.node.scope.node.try_find_child("LogGroup") if node.node.scope else None
            if isinstance(managed, logs.LogGroup):
                # CDK already made the function's /aws/lambda/<name> group explicit (useCdkManagedLogGroup);
                # it picks its own retention, so set ours.
                cast(logs.CfnLogGroup, managed.node.default_child).retention_in_days = self.retention_days
            elif node.logging_config is None:
                node.logging_config = lambda_.CfnFunction.LoggingConfigProperty(log_group=self._group_for(node))
        elif isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function":
            # CDK's custom-resource providers are plain CfnResources: they never set a logging configuration.
            node.add_property_override("LoggingConfig.LogGroup", self._group_for(node))

    def _group_for(self, function: CfnResource) -> str:
        scope = function.node.scope
        assert scope is not None
        return encrypted_log_group(scope, f"{function.node.id}Logs", retention_days=self.retention_days).log_group_name
