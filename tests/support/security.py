"""The security properties every synthesized template must have, checked on any app (default, public mode, the
configuration matrix): ``security_findings(templates)`` lists each template property that does not hold."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template

from sqs_decoupling.queue.encrypted_queue import SNS_TOPIC_ACTIONS

MIN_LOG_RETENTION_DAYS = 365


def security_findings(templates: Mapping[str, Template | dict[str, Any]]) -> list[str]:
    """Every violation, as 'stack: resource: what is wrong'; an empty list when all properties hold. A template is an
    assertions ``Template`` or the parsed JSON of a template file."""
    findings: list[str] = []
    for stack, template in templates.items():
        document = template.to_json() if isinstance(template, Template) else template
        resources: dict[str, dict[str, Any]] = document.get("Resources", {})
        if "AmazonSSMManagedInstanceCore" in json.dumps(document):
            findings.append(f"{stack}: uses AmazonSSMManagedInstanceCore")
        for logical_id, resource in resources.items():
            check = _CHECKS.get(resource["Type"])
            problem = check(resource, resources) if check else None
            if problem:
                findings.append(f"{stack}: {logical_id}: {problem}")
    return findings


def _endpoint(resource: dict[str, Any], _: dict[str, Any]) -> str | None:
    return None if resource["Properties"].get("PolicyDocument") else "VPC endpoint without a policy"


def _key(resource: dict[str, Any], _: dict[str, Any]) -> str | None:
    for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
        condition = statement.get("Condition", {}).get("BoolIfExists", {})
        if statement["Effect"] == "Deny" and condition.get("kms:GrantIsForAWSResource") == "false":
            return None
    return "key policy does not deny kms:CreateGrant unless kms:GrantIsForAWSResource"


def _log_group(resource: dict[str, Any], _: dict[str, Any]) -> str | None:
    properties = resource.get("Properties", {})
    if "KmsKeyId" not in properties:
        return "log group not encrypted with a KMS key"
    if properties.get("RetentionInDays", 0) < MIN_LOG_RETENTION_DAYS:
        return f"log group retention {properties.get('RetentionInDays')} days, less than a year"
    return None


def _function(resource: dict[str, Any], resources: dict[str, Any]) -> str | None:
    group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
    if isinstance(group, dict) and group.get("Ref") in resources:
        return None
    # Or the explicit /aws/lambda/<function> group that CDK manages (feature flag useCdkManagedLogGroup).
    default_name = {"Fn::Join": ["", ["/aws/lambda/", {"Ref": _logical_id(resource, resources)}]]}
    if any(
        other["Type"] == "AWS::Logs::LogGroup" and other.get("Properties", {}).get("LogGroupName") == default_name
        for other in resources.values()
    ):
        return None
    return "function logs to an implicit /aws/lambda group"


def _topic(resource: dict[str, Any], resources: dict[str, Any]) -> str | None:
    this = {"Ref": _logical_id(resource, resources)}
    if any(
        other["Type"] == "AWS::SNS::TopicPolicy" and this in other["Properties"]["Topics"]
        for other in resources.values()
    ):
        return None
    return "topic without a topic policy"


def _topic_policy(resource: dict[str, Any], _: dict[str, Any]) -> str | None:
    for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if (
            statement["Effect"] == "Deny"
            and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and (set(SNS_TOPIC_ACTIONS) <= set(actions) or "sns:*" in actions)
        ):
            return None
    return "topic policy does not deny every action without TLS"


def _queue(resource: dict[str, Any], resources: dict[str, Any]) -> str | None:
    this = _logical_id(resource, resources)
    is_dlq = any(
        other["Type"] == "AWS::SQS::Queue"
        and other.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn")
        == {"Fn::GetAtt": [this, "Arn"]}
        for other in resources.values()
    )
    if is_dlq and resource.get("DeletionPolicy") != "Retain":
        return "dead-letter queue is not retained on stack deletion"
    return None


def _logical_id(resource: dict[str, Any], resources: dict[str, Any]) -> str:
    return next(logical_id for logical_id, candidate in resources.items() if candidate is resource)


_CHECKS = {
    "AWS::SNS::Topic": _topic,
    "AWS::EC2::VPCEndpoint": _endpoint,
    "AWS::KMS::Key": _key,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Lambda::Function": _function,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SQS::Queue": _queue,
}
