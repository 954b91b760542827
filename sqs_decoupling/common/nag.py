"""cdk-nag 3 on every synth: the AwsSolutions and Serverless packs, registered on the app.

cdk-nag 3 is a policy-validation plugin: any finding not acknowledged makes synthesis fail (`ValidationFailed`),
so "synthesis succeeded" means "no unacknowledged findings". Constructs acknowledge their findings through
``sqs_decoupling.common.acknowledgements`` (aws_cdk only), re-exported here for the app and the tests.
"""

from __future__ import annotations

from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

from sqs_decoupling.common.acknowledgements import (
    NagAcknowledgement,
    acknowledge,
    acknowledgements,
    finding_text,
    object_wildcard_finding,
    unmatched_acknowledgements,
    wildcard_finding,
)

__all__ = [
    "NagAcknowledgement",
    "acknowledge",
    "acknowledgements",
    "enable_nag_checks",
    "finding_text",
    "object_wildcard_finding",
    "unmatched_acknowledgements",
    "wildcard_finding",
]


def enable_nag_checks(app: IConstruct) -> None:
    """Run the AwsSolutions and Serverless packs on every stack of ``app`` at synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
