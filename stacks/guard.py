"""AWS Control Tower's proactive controls on every synth, as a second validation plugin next to cdk-nag.

`cdklabs.cdk-validator-cfnguard` runs the Control Tower rules with cfn-guard on each synthesized template; a
finding fails synthesis exactly as a cdk-nag finding does. A finding this project accepts is acknowledged on
the narrowest construct that has it, with a reason, through the same `Validations.acknowledge` as cdk-nag's
(see ``stacks.acknowledgements``, which needs aws_cdk only), so one reviewed list in the tests covers both plugins.

Why not cfn-guard's own `Metadata: guard: SuppressedRules`: the bundled Control Tower rules do not read it
(checked with cfn-guard 3.1.1 from cdk-validator-cfnguard 0.0.62: a bucket with the metadata still fails
ct-s3-pr-9). Why not the plugin's `disabled_rules`: it turns a rule off for every resource, including the
ones added later.
"""

from __future__ import annotations

from aws_cdk import Validations
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator
from constructs import IConstruct

from stacks.acknowledgements import CONTROL_RULES, PLUGIN_NAME, acknowledge_control, control_finding

__all__ = ["CONTROL_RULES", "PLUGIN_NAME", "acknowledge_control", "control_finding", "enable_control_tower_checks"]


def enable_control_tower_checks(app: IConstruct) -> None:
    """Run AWS Control Tower's proactive controls (cfn-guard) on every stack of ``app`` at synthesis."""
    # The plugin implements the "Beta1" plugin interface, which add_plugins accepts (its typing names the newer one).
    Validations.of(app).add_plugins(CfnGuardValidator())  # type: ignore[arg-type]
