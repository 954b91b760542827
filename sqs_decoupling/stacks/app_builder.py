"""Builds the CDK app: one typed config, every stack, cdk-nag and the Control Tower controls on all of them."""

from __future__ import annotations

from collections.abc import Collection

from aws_cdk import App, Environment, Tags

from sqs_decoupling.common.guard import enable_control_tower_checks
from sqs_decoupling.common.nag import enable_nag_checks
from sqs_decoupling.stacks.config import AppConfig
from sqs_decoupling.stacks.names import STACK_NAMES
from sqs_decoupling.stacks.secure_queue_stack import SecureQueueStack
from sqs_decoupling.stacks.video_pipeline_stack import VideoPipelineStack
from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetStack


def build_app(app: App, *, control_tower_checks: bool = True, stacks: Collection[str] = STACK_NAMES) -> App:
    """Add every stack (or only ``stacks``) to ``app``, configured from its context, with cdk-nag and AWS Control
    Tower's proactive controls. The stacks are independent of each other, so any subset synthesizes alone.

    ``control_tower_checks=False`` and a subset of ``stacks`` are for tests of template properties: the controls are
    the costlier gate (cfn-guard), and the tests that are the gate run them on every stack
    (``tests/unit/stacks/test_static_checks.py``, the configuration matrix)."""
    if unknown := set(stacks) - set(STACK_NAMES):
        raise ValueError(f"Unknown stacks {sorted(unknown)}: the app has {', '.join(STACK_NAMES)}.")
    config = AppConfig.from_context(app)
    # Environment-agnostic unless configured: synthesis then never needs AWS credentials.
    env = Environment(account=config.account, region=config.region) if config.account or config.region else None

    enable_nag_checks(app)
    if control_tower_checks:
        enable_control_tower_checks(app)
    if "SecureQueueStack" in stacks:
        SecureQueueStack(app, "SecureQueueStack", settings=config.secure_queue_settings(), env=env)
    if "VideoPipelineStack" in stacks:
        VideoPipelineStack(app, "VideoPipelineStack", settings=config.video_pipeline_settings(), env=env)
    if "WorkerFleetStack" in stacks:
        WorkerFleetStack(app, "WorkerFleetStack", settings=config.worker_fleet_settings(), env=env)
    Tags.of(app).add("project", "sqs-decoupling-cdk")
    return app
