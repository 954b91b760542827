"""Every documented configuration synthesizes: cdk-nag on (an unacknowledged finding fails synthesis), cfn-lint clean.

(a) each key of README's configuration table at a non-default value, grouped so that each group reads as one
deployment; (b) README's deploy command with a concrete account and region, alarm e-mail and client-side
encryption, in both network modes and both scaling modes. The availability zones of the example account come from
the committed cdk.context.json, as a user's own committed file answers CDK's lookup: nothing here calls AWS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from localcloud.paths import REPO_ROOT
from stacks.app_builder import build_app
from stacks.config import AppConfig
from stacks.nag import unmatched_acknowledgements
from tests.conftest import cdk_json_context
from tests.support.cfn_lint import cfn_lint
from tests.support.security import security_findings

# One test process synthesizes the matrix once for every test here (pytest-xdist --dist loadgroup); without a group
# each process that gets one of these tests would synthesize all ten configurations again. The matrix is the gate
# over every documented configuration: `make test` runs it, the inner-loop tier (`make test-fast`) does not.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("configuration-matrix")]

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


def test_the_matrix_sets_every_configuration_key_of_the_readme_to_a_non_default_value() -> None:
    # GIVEN the keys of README's configuration table
    table = (REPO_ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {key for row in re.findall(r"^\| (`.+?) \|", table, re.M) for key in re.findall(r"`(\w+)`", row)}
    assert documented == {f.name for f in AppConfig.__dataclass_fields__.values()}
    # THEN each one is set to a value other than its default by some configuration of the matrix
    defaults = AppConfig()
    changed = {
        key
        for overrides in CONFIGURATIONS.values()
        for key, value in AppConfig.from_mapping(overrides).__dict__.items()
        if value != getattr(defaults, key)
    }
    assert documented - changed == set()


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


def _stack_configurations(app: App) -> dict[str, str]:
    config = AppConfig.from_context(app)
    return {
        stack: f"{config.account}/{config.region} {settings(config)!r}" for stack, settings in STACK_SETTINGS.items()
    }


@pytest.fixture(scope="module")
def synthesized_matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
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
        configurations = _stack_configurations(app)
        stacks = [stack for stack, key in configurations.items() if key not in synthesized]
        synthesized.update(configurations.values())
        build_app(app, stacks=stacks).synth()  # raises ValidationFailed on any unacknowledged finding
        built[name] = Built(outdir, app, configurations)
    return built


@pytest.fixture(scope="module")
def matrix(synthesized_matrix: dict[str, Built]) -> dict[str, Path]:
    """Each configuration's assembly folder."""
    return {name: built.outdir for name, built in synthesized_matrix.items()}


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_each_configuration_synthesizes_every_stack_with_cdk_nag(
    synthesized_matrix: dict[str, Built], name: str
) -> None:
    # GIVEN the configurations synthesized up to this one, in the matrix's order
    order = list(CONFIGURATIONS)
    so_far = [synthesized_matrix[other] for other in order[: order.index(name) + 1]]
    # THEN every stack of this configuration was synthesized (cdk-nag and Control Tower on) here or, with the same
    # settings and environment, by an earlier configuration; the fleet, which every configuration changes, here
    for stack, key in synthesized_matrix[name].stack_configurations.items():
        by = [
            b for b in so_far if b.stack_configurations[stack] == key and (b.outdir / f"{stack}.template.json").exists()
        ]
        assert len(by) == 1, f"{name}: {stack} with these settings was synthesized {len(by)} times"
    assert (synthesized_matrix[name].outdir / "WorkerFleetStack.template.json").exists()


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_each_configuration_has_the_security_properties_and_no_stale_acknowledgement(
    synthesized_matrix: dict[str, Built], name: str
) -> None:
    outdir, app, _ = synthesized_matrix[name]
    # GIVEN the templates this configuration synthesized and CDK's validation report of its synthesis
    templates = {
        path.name.removesuffix(".template.json"): Template.from_json(json.loads(path.read_text()))
        for path in outdir.glob("*.template.json")
    }
    # THEN the template security properties hold (managed SSM policy, endpoint policies, CreateGrant guard, log
    # groups, topic TLS, retained DLQs), and every acknowledgement of the project still covers a finding (CDK's
    # own CloudFormation-Validate acknowledgements aside, which the project cannot remove)
    assert security_findings(templates) == []
    stale = [
        ack for ack in unmatched_acknowledgements(app, outdir) if not ack.rule.startswith("CloudFormation-Validate")
    ]
    assert stale == []


def test_the_deploy_command_targets_the_account_and_region_given(matrix: dict[str, Path]) -> None:
    manifest = json.loads((matrix["deploy-command-isolated-step"] / "manifest.json").read_text())
    environments = {a["environment"] for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"}
    assert environments == {"aws://111122223333/eu-west-1"}
    fleet = json.loads((matrix["deploy-command-isolated-step"] / "WorkerFleetStack.template.json").read_text())
    subnets = [r for r in fleet["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"]
    assert sorted(s["Properties"]["AvailabilityZone"] for s in subnets) == ["eu-west-1a", "eu-west-1b"]


def test_cfn_lint_is_clean_on_every_template_of_every_configuration(matrix: dict[str, Path]) -> None:
    # GIVEN every template the matrix synthesized (a template two configurations share byte for byte, once)
    templates = sorted(t for outdir in matrix.values() for t in outdir.glob("*.template.json"))
    distinct = {template.read_bytes(): template for template in templates}
    # WHEN cfn-lint checks them, THEN it finds nothing (exit 0; warnings would give 4, errors 2)
    result = cfn_lint(sorted(distinct.values()))
    assert result.returncode == 0, result.stdout + result.stderr
