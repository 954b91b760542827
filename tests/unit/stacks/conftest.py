"""The configuration matrix, synthesized once for the tests that gate every documented configuration: its own
(cdk-nag, Control Tower, cfn-lint, security properties) and the permission rehearsal's. Both modules are in one
pytest-xdist group, so one process synthesizes it once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aws_cdk import App

from sqs_decoupling.stacks.app_builder import build_app
from sqs_decoupling.stacks.config import AppConfig
from tests.conftest import cdk_json_context
from tests.support.cfn_lint import start_cfn_lint
from tests.support.permissions.cfn import Deployment
from tools.localcloud.paths import REPO_ROOT

DEPLOY_COMMAND = {
    "account": "111122223333",
    "region": "eu-west-1",
    "alarm_email": "ops@example.com",
    "client_side_encryption": "true",  # as `-c key=value` delivers it: a string
}

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "queues-and-intake": {
        "retention_days": 14,
        "max_message_size_bytes": 1024 * 1024,
        "max_receive_count": 5,
        "kms_data_key_reuse_seconds": 300,
        "oldest_message_alarm_seconds": 3600,
        "alarm_email": "alarms@example.org",
        "cross_account_producer_accounts": "444455556666,777788889999",
        "producer_principals": "arn:aws:iam::111122223333:role/video-uploader,arn:aws:iam::444455556666:role/producer",
        "consumer_principals": "arn:aws:iam::111122223333:role/service/video-consumer",
        "client_side_encryption": True,
        "upload_prefix": "incoming/videos/",
        "queue_removal_policy": "retain",
        "log_retention_days": 400,
    },
    "lambda": {
        "lambda_architecture": "x86_64",
        "lambda_timeout_seconds": 300,
        "lambda_memory_mb": 4096,
        "lambda_batch_size": 5,
        "lambda_batching_window_seconds": 0,
        "lambda_max_concurrency": 50,
        "lambda_reserved_concurrency": 60,
        "lambda_profile": "preview",  # transcode cannot finish in a function (refused at synthesis)
        "max_video_mb": 1000,
    },
    # Provisioned mode replaces the maximum concurrency; a reservation below the default maximum is then allowed.
    "lambda-provisioned-pollers": {"lambda_provisioned_pollers": "2,20", "lambda_reserved_concurrency": 5},
    "fleet-step-public-x86": {
        "network_mode": "public",
        "worker_instance_type": "c7i.xlarge",
        "worker_max_instances": 10,
        "worker_visibility_timeout_seconds": 900,
        "worker_concurrency": 4,
        "scale_out_thresholds": "[5, 50]",
        "scale_out_adjustments": "2,5",
        "scale_in_empty_minutes": 20,
        "worker_profile": "preview",
    },
    "fleet-backlog": {"scaling_mode": "backlog", "acceptable_latency_seconds": 1800, "seconds_per_job": 30},
    "fleet-warm-pool": {"worker_warm_pool_min": 2},
    "fleet-spot-mixed-types": {
        "worker_spot_percentage": 70,
        "worker_instance_types": "c7g.large,c7g.xlarge,m7g.large",
        "worker_on_demand_base_capacity": 1,
    },
    "account-region-only": {"account": "111122223333", "region": "eu-west-1"},
    "region-only": {"region": "eu-west-1"},
    **{
        f"deploy-command-{network}-{scaling}": DEPLOY_COMMAND | {"network_mode": network, "scaling_mode": scaling}
        for network in ("isolated", "public")
        for scaling in ("step", "backlog")
    },
}


def _committed_context() -> dict[str, Any]:
    """What the CDK CLI passes: cdk.json's context plus the committed cdk.context.json."""
    return cdk_json_context() | json.loads((REPO_ROOT / "cdk.context.json").read_text())


# What a stack's template depends on, besides the context every configuration shares (cdk.json's feature flags,
# cdk.context.json): its settings and its environment.
STACK_SETTINGS = {
    "SecureQueueStack": AppConfig.secure_queue_settings,
    "VideoPipelineStack": AppConfig.video_pipeline_settings,
    "WorkerFleetStack": AppConfig.worker_fleet_settings,
}


class Built(NamedTuple):
    outdir: Path
    app: App
    stack_configurations: dict[str, str]
    """Each stack's settings and environment: equal strings, equal templates."""


def stack_configurations(app: App) -> dict[str, str]:
    """Each stack's settings and environment under ``app``'s context: equal strings, equal templates."""
    config = AppConfig.from_context(app)
    return {
        stack: f"{config.account}/{config.region} {settings(config)!r}" for stack, settings in STACK_SETTINGS.items()
    }


@pytest.fixture(scope="session")
def matrix_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Each configuration synthesized (cdk-nag and Control Tower rules on, no asset bundling) into its own cloud
    assembly, in one process, in the order of CONFIGURATIONS.

    A stack whose settings and environment an earlier configuration already synthesized (e.g. the queue stack
    under the Lambda keys) is not synthesized again: its template would be the same, byte for byte, and it went
    through every check there. Every configuration synthesizes the stacks it changes."""
    built: dict[str, Built] = {}
    synthesized: set[str] = set()
    for name, overrides in CONFIGURATIONS.items():
        outdir = tmp_path_factory.mktemp(name)
        context = _committed_context() | overrides | {"aws:cdk:bundling-stacks": []}
        # cfn-lint checks the templates below; CDK's own built-in template check would repeat it, slower.
        app = App(context=context, outdir=str(outdir), builtin_cloud_formation_validation=False, tree_metadata=False)
        configurations = stack_configurations(app)
        stacks = [stack for stack, key in configurations.items() if key not in synthesized]
        synthesized.update(configurations.values())
        build_app(app, stacks=stacks).synth()  # raises ValidationFailed on any unacknowledged finding
        built[name] = Built(outdir, app, configurations)
    return built


@pytest.fixture(scope="session")
def matrix_lint(matrix_builds: dict[str, Built]) -> Iterator[subprocess.Popen[str]]:
    """cfn-lint over every distinct template of the matrix (a template two configurations share byte for byte,
    once), started as soon as the matrix is synthesized, so that it runs beside the matrix's other tests."""
    templates = sorted(t for built in matrix_builds.values() for t in built.outdir.glob("*.template.json"))
    distinct = {template.read_bytes(): template for template in templates}
    process = start_cfn_lint(sorted(distinct.values()))
    yield process
    process.kill()
    process.communicate()


@pytest.fixture(scope="session")
def synthesized_matrix(matrix_builds: dict[str, Built], matrix_lint: subprocess.Popen[str]) -> dict[str, Built]:
    """The matrix's builds, with cfn-lint already running on their templates (``matrix_lint``)."""
    return matrix_builds


@pytest.fixture(scope="session")
def matrix(synthesized_matrix: dict[str, Built]) -> dict[str, Path]:
    """Each configuration's assembly folder."""
    return {name: built.outdir for name, built in synthesized_matrix.items()}


def deployment_of(synthesized_matrix: dict[str, Built], name: str) -> Deployment:
    """Every stack of configuration ``name``, each from the assembly that synthesized it with these settings."""
    where = {
        stack: next(
            b.outdir
            for b in synthesized_matrix.values()
            if b.stack_configurations[stack] == key and (b.outdir / f"{stack}.template.json").exists()
        )
        for stack, key in synthesized_matrix[name].stack_configurations.items()
    }
    return Deployment.from_assemblies(where)
