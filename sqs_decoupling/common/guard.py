"""AWS Control Tower's proactive controls on every synth, as a second validation plugin next to cdk-nag.

`cdklabs.cdk-validator-cfnguard` runs the Control Tower rules with cfn-guard on each synthesized template; a
finding fails synthesis exactly as a cdk-nag finding does. A finding this project accepts is acknowledged on
the narrowest construct that has it, with a reason, through the same `Validations.acknowledge` as cdk-nag's
(see ``sqs_decoupling.common.acknowledgements``, which needs aws_cdk only), so one reviewed list in the tests covers
both plugins.

Why not cfn-guard's own `Metadata: guard: SuppressedRules`: the bundled Control Tower rules do not read it
(checked with cfn-guard 3.1.1 from cdk-validator-cfnguard 0.0.62: a bucket with the metadata still fails
ct-s3-pr-9). Why not the plugin's `disabled_rules`: it turns a rule off for every resource, including the
ones added later.

Why a wrapper (:class:`ControlTowerChecks`) around the plugin: cfn-guard evaluates every one of its 237 rules
against every resource, and most rules are about services these stacks do not use (Redshift, EKS, ...). Each
rule reports on resource types it names (``Reports on: AWS::SQS::Queue``, with SKIP when the template has none),
so at validation time the wrapper reads the resource types of the templates being validated and runs the plugin
with the rules that name none of them disabled: the same findings (a test compares both reports), in about a
third of the time (3.9 s -> 1.2 s on the three default templates). A rule that names no resource type always runs.

The wrapper also gives each finding the severity "error", which the plugin leaves out: once anything in the app is
acknowledged, CDK decides whether a plugin's report fails synthesis from the severities of the findings left
("error" or "fatal"), so an unacknowledged Control Tower finding would otherwise be printed and let through.
"""

from __future__ import annotations

import json
import re
import tarfile
from functools import cache
from importlib import resources
from pathlib import Path

import jsii
from aws_cdk import (
    IPolicyValidationContextBeta1,
    IPolicyValidationPluginBeta1,
    PolicyValidationPluginReportBeta1,
    PolicyViolationBeta1,
    Validations,
)
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator
from constructs import IConstruct

from sqs_decoupling.common.acknowledgements import CONTROL_RULES, PLUGIN_NAME, acknowledge_control, control_finding

__all__ = [
    "CONTROL_RULES",
    "PLUGIN_NAME",
    "ControlTowerChecks",
    "acknowledge_control",
    "control_finding",
    "enable_control_tower_checks",
    "rules_by_resource_type",
]

RESOURCE_TYPE = re.compile(r"AWS::\w+::\w+")


@cache
def rules_by_resource_type() -> dict[str, frozenset[str]]:
    """Each Control Tower rule the plugin ships (its file name, as ``disabled_rules`` takes it) -> the CloudFormation
    resource types it names. Read from the plugin's own package, so it follows the installed version."""
    package = resources.files("cdklabs.cdk_validator_cfnguard._jsii")
    (tarball,) = (entry for entry in package.iterdir() if entry.name.endswith(".jsii.tgz"))
    rules = {}
    with resources.as_file(tarball) as path, tarfile.open(path) as archive:
        for member in archive:
            if "/rules/control-tower/cfn-guard/" in member.name and member.name.endswith(".guard"):
                text = archive.extractfile(member).read().decode()  # type: ignore[union-attr]
                rules[Path(member.name).stem] = frozenset(RESOURCE_TYPE.findall(text))
    if not rules:
        raise RuntimeError(f"No Control Tower rules found in {tarball.name}: has the plugin's layout changed?")
    return rules


def rules_to_skip(resource_types: set[str]) -> list[str]:
    """The rules that name resource types, none of which is in ``resource_types``."""
    return sorted(rule for rule, types in rules_by_resource_type().items() if types and not types & resource_types)


@jsii.implements(IPolicyValidationPluginBeta1)
class ControlTowerChecks:
    """`CfnGuardValidator` with the Control Tower rules, run only with the rules for resource types in the templates."""

    def __init__(self) -> None:
        self._plugin = CfnGuardValidator()

    @property
    def name(self) -> str:
        return PLUGIN_NAME  # acknowledgements name the plugin: the same name as the plugin's own

    @property
    def version(self) -> str | None:
        return self._plugin.version

    @property
    def rule_ids(self) -> list[str] | None:
        return self._plugin.rule_ids

    def validate(self, context: IPolicyValidationContextBeta1) -> PolicyValidationPluginReportBeta1:
        present = {
            resource["Type"]
            for template in context.template_paths
            for resource in json.loads(Path(template).read_text()).get("Resources", {}).values()
        }
        report = CfnGuardValidator(disabled_rules=rules_to_skip(present)).validate(context)
        return PolicyValidationPluginReportBeta1(
            success=report.success,
            violations=[_as_error(violation) for violation in report.violations],
            metadata=report.metadata,
            plugin_version=report.plugin_version,
        )


def _as_error(violation: PolicyViolationBeta1) -> PolicyViolationBeta1:
    """The finding with the severity "error" where the plugin gave it none (see the module's documentation)."""
    return PolicyViolationBeta1(
        description=violation.description,
        rule_name=violation.rule_name,
        violating_resources=violation.violating_resources,
        fix=violation.fix,
        rule_metadata=violation.rule_metadata,
        severity=violation.severity or "error",
    )


def enable_control_tower_checks(app: IConstruct) -> None:
    """Run AWS Control Tower's proactive controls (cfn-guard) on every stack of ``app`` at synthesis."""
    # A "Beta1" plugin, which add_plugins accepts (its typing names the newer interface).
    Validations.of(app).add_plugins(ControlTowerChecks())  # type: ignore[arg-type]
