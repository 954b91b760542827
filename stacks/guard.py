"""AWS Control Tower's proactive controls on every synth, as a second validation plugin next to cdk-nag.

`cdklabs.cdk-validator-cfnguard` runs the Control Tower rules with cfn-guard on each synthesized template; a
finding fails synthesis exactly as a cdk-nag finding does. A finding this project accepts is acknowledged on
the narrowest construct that has it, with a reason, through the same `Validations.acknowledge` as cdk-nag's
(see ``stacks.nag.acknowledge``), so one reviewed list in the tests covers both plugins.

Why not cfn-guard's own `Metadata: guard: SuppressedRules`: the bundled Control Tower rules do not read it
(checked with cfn-guard 3.1.1 from cdk-validator-cfnguard 0.0.62: a bucket with the metadata still fails
ct-s3-pr-9). Why not the plugin's `disabled_rules`: it turns a rule off for every resource, including the
ones added later.
"""

from __future__ import annotations

from aws_cdk import Validations
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator
from constructs import IConstruct

from stacks.nag import acknowledge

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
}


def enable_control_tower_checks(app: IConstruct) -> None:
    """Run AWS Control Tower's proactive controls (cfn-guard) on every stack of ``app`` at synthesis."""
    # The plugin implements the "Beta1" plugin interface, which add_plugins accepts (its typing names the newer one).
    Validations.of(app).add_plugins(CfnGuardValidator())  # type: ignore[arg-type]


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
