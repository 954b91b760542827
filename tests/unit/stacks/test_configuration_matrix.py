"""Every documented configuration synthesizes: cdk-nag on (an unacknowledged finding fails synthesis), cfn-lint clean.

(a) each key of the configuration table (README.md) at a non-default value, grouped so that each group reads as one
deployment; (b) the README's deploy command with a concrete account and region, alarm e-mail and client-side
encryption, in both network modes and both scaling modes. The availability zones of the example account come from
the committed cdk.context.json, as a user's own committed file answers CDK's lookup: nothing here calls AWS.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import cast

import pytest

from sqs_decoupling.common.nag import unmatched_acknowledgements
from sqs_decoupling.stacks.config import KEYS, AppConfig
from tests.support.cfn_lint import finish
from tests.support.docs import section
from tests.support.schedule import CONFIGURATION_MATRIX
from tests.support.security import security_findings
from tests.unit.stacks.conftest import CONFIGURATIONS, Built

# One test process synthesizes the matrix once for every test here (pytest-xdist --dist loadgroup); without a group
# each process that gets one of these tests would synthesize all ten configurations again. The matrix is the gate
# over every documented configuration: `make test` runs it, the inner-loop tier (`make test-fast`) does not.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(CONFIGURATION_MATRIX)]


def test_the_matrix_sets_every_configuration_key_of_the_readme_to_a_non_default_value() -> None:
    # GIVEN the keys of the documentation's configuration table (README.md's today)
    _, table = section("Configuration (cdk.json context")
    documented = {key for row in re.findall(r"^\| (`.+?) \|", table, re.M) for key in re.findall(r"`(\w+)`", row)}
    assert documented == set(KEYS)
    # THEN each one is set to a value other than its default by some configuration of the matrix, except a key whose
    # every other value synthesis refuses (tests/unit/stacks/test_config.py shows the refusal)
    only_the_default_deploys = {"lambda_profile"}  # transcode cannot finish within a function's 900 s
    defaults = AppConfig()
    changed = {
        key
        for overrides in CONFIGURATIONS.values()
        for key, value in AppConfig.from_mapping(overrides).values().items()
        if value != getattr(defaults, key)
    }
    assert documented - changed == only_the_default_deploys


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
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
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


@pytest.mark.last  # cfn-lint started when the matrix was synthesized; the matrix's other tests run meanwhile
def test_cfn_lint_is_clean_on_every_template_of_every_configuration(
    matrix: dict[str, Path], matrix_lint: subprocess.Popen[str]
) -> None:
    # GIVEN every template the matrix synthesized (a template two configurations share byte for byte, once)
    templates = {t.read_bytes() for outdir in matrix.values() for t in outdir.glob("*.template.json")}
    linted = [arg for arg in cast(list[str], matrix_lint.args) if arg.endswith(".template.json")]
    assert len(linted) == len(templates) > len(matrix)
    # WHEN cfn-lint checks them, THEN it finds nothing (exit 0; warnings would give 4, errors 2)
    result = finish(matrix_lint)
    assert result.returncode == 0, result.stdout + result.stderr
