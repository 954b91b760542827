"""Builds the CDK app: one typed config, every stack, cdk-nag and the Control Tower controls on all of them."""

from __future__ import annotations

from aws_cdk import App, Environment, Tags

from stacks.config import AppConfig
from stacks.guard import enable_control_tower_checks
from stacks.nag import enable_nag_checks
from stacks.secure_queue_stack import SecureQueueStack
from stacks.video_pipeline_stack import VideoPipelineStack
from stacks.worker_fleet_stack import WorkerFleetStack


def build_app(app: App, *, control_tower_checks: bool = True) -> App:
    """Add every stack to ``app``, configured from its context, with cdk-nag and AWS Control Tower's proactive
    controls. ``control_tower_checks=False`` is for tests of template properties: the controls are the costlier
    gate (cfn-guard), and the tests that are the gate run them (``tests/unit/stacks/test_static_checks.py``, the
    configuration matrix)."""
    config = AppConfig.from_context(app)
    # Environment-agnostic unless configured: synthesis then never needs AWS credentials.
    env = Environment(account=config.account, region=config.region) if config.account or config.region else None

    enable_nag_checks(app)
    if control_tower_checks:
        enable_control_tower_checks(app)
    SecureQueueStack(app, "SecureQueueStack", settings=config.secure_queue_settings(), env=env)
    VideoPipelineStack(app, "VideoPipelineStack", settings=config.video_pipeline_settings(), env=env)
    WorkerFleetStack(app, "WorkerFleetStack", settings=config.worker_fleet_settings(), env=env)
    Tags.of(app).add("project", "sqs-decoupling-cdk")
    return app
