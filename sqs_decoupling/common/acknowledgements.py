"""How a construct acknowledges a validation finding it accepts, with aws_cdk only (no cdk-nag, no cfn-guard).

cdk-nag 3 and AWS Control Tower's proactive controls (cfn-guard) run as policy-validation plugins (registered in
``sqs_decoupling.common.nag`` and ``sqs_decoupling.common.guard``, by the app); any finding not acknowledged makes
synthesis fail. An acknowledgement is construct metadata written through ``Validations.acknowledge``, so a construct
copied into a project without either plugin still synthesizes; ``acknowledgements()`` lists them so a test can compare
them with a reviewed list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple, cast

from aws_cdk import Acknowledgment, CfnElement, Stack, Stage, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct


class NagAcknowledgement(NamedTuple):
    path: str
    rule: str
    reason: str


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge cdk-nag finding ``rule`` on ``scope`` and below, e.g. 'AwsSolutions::AwsSolutions-SQS3'.

    Rules that report per finding (IAM4, IAM5) need the finding's full id, e.g.
    'AwsSolutions::AwsSolutions-IAM5[Resource::*]' (see ``wildcard_finding``): acknowledging the bare rule does
    not cover them, which keeps each acknowledgement as narrow as one resource or action.
    Acknowledge on the narrowest construct that has the finding, with a reason specific to it.
    """
    if len(reason) < 20:
        raise ValueError(f"Acknowledgement of {rule} on {scope.node.path} needs a specific reason, got {reason!r}.")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledgements(root: IConstruct) -> list[NagAcknowledgement]:
    """Every acknowledgement under ``root``, sorted by construct path and rule."""
    found = []
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found += [NagAcknowledgement(construct.node.path, rule, why) for rule, why in entry.data.items()]
    return sorted(found)


def recorded_acknowledgements(app: IConstruct, assembly_dir: str | Path) -> list[NagAcknowledgement]:
    """:func:`acknowledgements` of ``app`` (an App or a Stage), read from the cloud assembly it was synthesized to.

    CDK writes the metadata of every construct of a stack, acknowledgements included, to the stack's metadata file in
    the assembly; only the constructs outside any stack (the app itself) are read from the tree. The same list as
    :func:`acknowledgements`, without a call into CDK's JavaScript for every construct of the app (about 0.6 s for the
    example app). A stage inside ``app`` writes an assembly of its own: its acknowledgements are read from the tree.
    """
    assembly = Path(assembly_dir)
    manifest = json.loads((assembly / "manifest.json").read_text())
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found = []
    for artifact in manifest["artifacts"].values():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        if "additionalMetadataFile" in artifact:
            metadata = json.loads((assembly / artifact["additionalMetadataFile"]).read_text())
        else:
            metadata = artifact.get("metadata", {})
        found += [
            NagAcknowledgement(path.removeprefix("/"), rule, reason)
            for path, entries in metadata.items()
            for entry in entries
            if entry["type"] == key
            for rule, reason in entry["data"].items()
        ]
    return sorted(found + _outside_stacks(app, key))


def _outside_stacks(scope: IConstruct, key: str) -> list[NagAcknowledgement]:
    found = [
        NagAcknowledgement(scope.node.path, rule, reason)
        for entry in scope.node.metadata
        if entry.type == key
        for rule, reason in entry.data.items()
    ]
    for child in scope.node.children:
        if Stage.is_stage(child):
            found += acknowledgements(child)
        elif not Stack.is_stack(child):
            found += _outside_stacks(child, key)
    return found


def unmatched_acknowledgements(app: IConstruct, assembly_dir: str | Path) -> list[NagAcknowledgement]:
    """The acknowledgements under ``app`` that covered no finding when ``app`` was synthesized to ``assembly_dir``.

    CDK's validation report (validation-report.json in the cloud assembly) records, for every plugin, each finding
    an acknowledgement suppressed, with the acknowledgement's id and construct path. An acknowledgement missing
    from it matched nothing: it is stale, and would silently cover a future finding.
    """
    report = json.loads((Path(assembly_dir) / "validation-report.json").read_text())
    used = {
        (suppressed["acknowledgedAt"], suppressed["acknowledgedId"])
        for plugin in report["pluginReports"]
        for suppressed in plugin.get("suppressedViolations", [])
    }
    return [ack for ack in recorded_acknowledgements(app, assembly_dir) if (ack.path, ack.rule) not in used]


def wildcard_finding(resource: str) -> str:
    """The id of cdk-nag's IAM5 finding for a wildcard ``resource`` (as cdk-nag prints it)."""
    return f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]"


def object_wildcard_finding(bucket: s3.IBucket, key_pattern: str) -> str:
    """The id of cdk-nag's IAM5 finding for ``bucket.arn_for_objects(key_pattern)``."""
    logical_id = Stack.of(bucket).get_logical_id(cast(CfnElement, bucket.node.default_child))  # its CfnBucket
    return wildcard_finding(f"<{logical_id}.Arn>/{key_pattern}")


def finding_text(scope: IConstruct, value: str) -> str:
    """``value`` (an ARN, possibly with tokens) as cdk-nag writes it into a finding id.

    cdk-nag flattens CloudFormation intrinsics: a pseudo parameter or resource becomes ``<AWS::Region>`` or
    ``<LogicalId>``, an attribute ``<LogicalId.Attr>``. Rendering the resolved value the same way gives the id in
    every environment: ``<AWS::Region>`` when the stack is environment-agnostic, ``eu-west-1`` when it is not.
    """
    return _flatten(Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((intrinsic, argument),) = node.items()
        if intrinsic == "Ref":
            return f"<{argument}>"
        if intrinsic == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if intrinsic == "Fn::Join":
            separator, parts = argument
            return str(separator).join(_flatten(part) for part in parts)
    raise ValueError(f"cannot render {node!r} as a cdk-nag finding id")


# AWS Control Tower's proactive controls (the cdk-validator-cfnguard plugin)
PLUGIN_NAME = "cdk-validator-cfnguard"

# The cfn-guard rule behind each Control Tower control this project acknowledges somewhere (findings are
# reported under the rule name; the control id is in the finding's description).
CONTROL_RULES = {
    "CT.AUTOSCALING.PR.1": "autoscaling_multiple_az_check",
    "CT.AUTOSCALING.PR.6": "autoscaling_mixed_instances_policy_multiple_instance_types_check",
    "CT.EC2.PR.9": "ec2_launch_template_public_ip_disabled_check",
    "CT.EC2.PR.11": "subnet_auto_assign_public_ip_disabled_check",
    "CT.LAMBDA.PR.3": "lambda_inside_vpc_check",
    "CT.S3.PR.2": "s3_bucket_logging_enabled_check",
    "CT.S3.PR.4": "s3_event_notifications_enabled_check",
    "CT.S3.PR.9": "s3_bucket_object_lock_enabled_check",
    "CT.S3.PR.10": "s3_bucket_default_encryption_kms_check",
    "CT.SQS.PR.1": "sqs_dlq_check",
}


def control_finding(control: str) -> str:
    """The acknowledgement id of Control Tower control ``control`` (e.g. 'CT.S3.PR.9')."""
    try:
        return f"{PLUGIN_NAME}::{CONTROL_RULES[control]}"
    except KeyError:
        raise ValueError(
            f"Unknown Control Tower control {control!r}: add its cfn-guard rule to CONTROL_RULES."
        ) from None


def acknowledge_control(scope: IConstruct, control: str, reason: str) -> None:
    """Acknowledge Control Tower control ``control`` (e.g. 'CT.S3.PR.9') on ``scope`` and below, with a reason."""
    acknowledge(scope, control_finding(control), reason)
