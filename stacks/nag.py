"""cdk-nag 3 on every synth, and the one way this project acknowledges a finding.

cdk-nag 3 is a policy-validation plugin: any finding not acknowledged makes synthesis fail (`ValidationFailed`),
so "synthesis succeeded" means "no unacknowledged findings". Acknowledgements are recorded as construct
metadata; `acknowledgements()` lists them so a test can compare them with a reviewed list.
"""

from __future__ import annotations

from typing import NamedTuple

from aws_cdk import Acknowledgment, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


class NagAcknowledgement(NamedTuple):
    path: str
    rule: str
    reason: str


def enable_nag_checks(app: IConstruct) -> None:
    """Run the AwsSolutions and Serverless packs on every stack of ``app`` at synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge cdk-nag finding ``rule`` (e.g. 'AwsSolutions::AwsSolutions-IAM4') on ``scope`` and below.

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
