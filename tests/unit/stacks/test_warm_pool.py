"""WorkerFleetStack's warm pool (``worker_warm_pool_min``): stopped, pre-initialized workers, and the launch
lifecycle hook that keeps an instance from being stopped before its worker has been installed and started."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from sqs_decoupling.contracts.worker import LAUNCH_HOOK_ENV
from sqs_decoupling.stacks.config import AppConfig, ConfigError
from sqs_decoupling.worker_fleet.warm_pool import LAUNCH_HOOK_NAME
from sqs_decoupling.worker_fleet.worker.config import parse_settings
from tests.support.permissions.cfn import Deployment
from tests.support.permissions.rehearsal import Check, Rehearsal
from tests.support.schedule import CONFIGURATION_MATRIX
from tests.unit.stacks.conftest import Built, deployment_of
from tests.unit.stacks.test_runtime_contracts import worker_unit_environment

STACK = "WorkerFleetStack"


@pytest.fixture(scope="module")
def warm(synth_with: Any) -> Template:
    return synth_with(worker_warm_pool_min=2)[STACK]


def _group(template: Template) -> str:
    (logical_id,) = template.find_resources("AWS::AutoScaling::AutoScalingGroup")
    return logical_id


def test_by_default_there_is_no_warm_pool_and_no_launch_hook(templates: dict[str, Template]) -> None:
    # GIVEN the fleet as cdk.json configures it (worker_warm_pool_min 0)
    template = templates[STACK]
    # THEN it has no warm pool, no launch hook, and the worker is told of none
    template.resource_count_is("AWS::AutoScaling::WarmPool", 0)
    assert not template.find_resources(
        "AWS::AutoScaling::LifecycleHook", {"Properties": {"LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}}
    )
    assert LAUNCH_HOOK_ENV not in worker_unit_environment(template)


def test_the_pool_keeps_exactly_the_configured_number_of_stopped_instances(warm: Template) -> None:
    # GIVEN worker_warm_pool_min=2: THEN the group has a pool of two stopped instances, and no more
    warm.has_resource_properties(
        "AWS::AutoScaling::WarmPool",
        {
            "AutoScalingGroupName": {"Ref": _group(warm)},
            "MinSize": 2,
            "MaxGroupPreparedCapacity": 2,
            "PoolState": "Stopped",
        },
    )
    # AND instances go back to the pool on scale-in never (they are terminated, through the drain hook)
    (pool,) = warm.find_resources("AWS::AutoScaling::WarmPool").values()
    assert "InstanceReusePolicy" not in pool["Properties"]


def test_a_launch_hook_holds_each_launch_until_the_worker_has_started(warm: Template) -> None:
    # THEN a launch hook holds the instance (entering the pool, and leaving it) until completed, at most 15 minutes,
    # and gives up on an instance whose worker never started
    warm.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "AutoScalingGroupName": {"Ref": _group(warm)},
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "LifecycleHookName": LAUNCH_HOOK_NAME,
            "DefaultResult": "ABANDON",
            "HeartbeatTimeout": 900,
        },
    )
    # AND the termination hook the worker drains on is still there
    warm.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook", {"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}
    )


def test_the_worker_is_told_which_launch_hook_to_complete_and_may_complete_it(warm: Template) -> None:
    # WHEN the worker parses its systemd unit's environment
    settings = parse_settings([], worker_unit_environment(warm))
    # THEN it knows the launch hook to complete once started
    assert settings.launch_hook == LAUNCH_HOOK_NAME
    # AND the instance role may complete lifecycle actions on its group (the permission rehearsal evaluates the
    # call itself, through the isolated network's Auto Scaling endpoint)
    warm.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["autoscaling:CompleteLifecycleAction"])})]
                )
            }
        },
    )


@pytest.mark.parametrize("value", [-1, 5])
def test_a_pool_outside_0_to_the_group_maximum_is_refused_naming_the_key(value: int) -> None:
    # GIVEN a group of at most 4 instances: WHEN the pool asked for is negative or larger
    with pytest.raises(ConfigError) as raised:
        AppConfig.from_mapping({"worker_warm_pool_min": str(value), "worker_max_instances": 4})
    # THEN synthesis fails with one line naming the key and the allowed range
    message = str(raised.value)
    assert "\n" not in message
    assert f"Configuration key 'worker_warm_pool_min' = {value} instances is out of range: allowed 0..4" in message


@pytest.mark.slow
@pytest.mark.xdist_group(CONFIGURATION_MATRIX)
def test_the_rehearsal_evaluates_the_launch_hook_only_where_there_is_a_pool(
    synthesized_matrix: dict[str, Built],
) -> None:
    # GIVEN the README's deploy command (isolated network, no pool) and the matrix's warm-pool configuration
    def completions(deployment: Deployment) -> list[Check]:
        checks = Rehearsal(deployment).checks()
        return [c for c in checks if c.caller == "worker" and c.what == "autoscaling.CompleteLifecycleAction"]

    default = completions(deployment_of(synthesized_matrix, "deploy-command-isolated-step"))
    warm = completions(deployment_of(synthesized_matrix, "fleet-warm-pool"))
    # THEN the worker completing its termination hook is checked in both, the launch hook's completion only with the
    # pool, through the Auto Scaling endpoint, and AWS would allow it
    assert len(default) == 1 and len(warm) == 2
    assert [check.request.action for check in warm] == ["autoscaling:CompleteLifecycleAction"] * 2
    assert all(check.no_route is None and check.outcome().allowed for check in warm)
