"""The contract between the stacks and the runtimes: the environment each construct synthesizes is exactly what the
runtime's own settings parser accepts, and it carries the configuration it was built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from sqs_decoupling.contracts import worker_sizing
from sqs_decoupling.contracts.lambda_function import Settings as ProcessorSettings
from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MIB, MediaLimits
from sqs_decoupling.contracts.worker import VCPUS_ENV
from sqs_decoupling.worker_fleet.worker.config import parse_settings

CONFIGURATION = {
    "lambda_memory_mb": 3008,
    "lambda_timeout_seconds": 60,
    "max_video_mb": 500,
    "worker_concurrency": 3,
    "worker_visibility_timeout_seconds": 900,
    "client_side_encryption": True,
    # the worker makes the Lambda's profile (the Lambda cannot make the worker's: refused at synthesis)
    "lambda_profile": "preview",
    "worker_profile": "preview",
    "max_receive_count": 5,
}


@pytest.fixture(scope="module")
def configured(synth_with: Any) -> Mapping[str, Template]:
    return synth_with(**CONFIGURATION)


def _text(value: Any) -> str:
    """A synthesized value as the runtime sees it once deployed; a token (Ref, GetAtt) becomes a placeholder."""
    return value if isinstance(value, str) else f"<{value}>"


def lambda_environment(template: Template) -> dict[str, str]:
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Environment": {"Variables": {"VIDEO_PROFILE": Match.any_value()}}}}
    ).values()
    return {name: _text(value) for name, value in function["Properties"]["Environment"]["Variables"].items()}


def worker_unit_environment(template: Template) -> dict[str, str]:
    (launch_template,) = template.find_resources("AWS::EC2::LaunchTemplate").values()
    parts = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    script = "".join(_text(part) for part in parts)
    lines = [line.removeprefix("Environment=") for line in script.splitlines() if line.startswith("Environment=")]
    return dict(line.split("=", 1) for line in lines)


def test_the_functions_environment_parses_into_the_configured_settings(configured: dict[str, Template]) -> None:
    # GIVEN the video pipeline synthesized with a bigger function, a bigger video limit and a queue that
    # dead-letters after 5 receives
    environment = lambda_environment(configured["VideoPipelineStack"])
    # WHEN the handler parses the function's environment, as it does at cold start
    settings = ProcessorSettings.from_environment(environment)
    # THEN it accepts it, and every setting is the configured one
    assert settings.max_video_bytes == 500 * MIB
    assert settings.profile == "preview"
    # AND it knows the queue's maxReceiveCount, to tell a message's last delivery (too_slow_for_lambda)
    assert settings.max_receive_count == 5
    assert settings.output_bucket.startswith("<")  # the processed bucket's name, a token until deployment
    assert settings.body_key_arn is not None and settings.body_key_arn.startswith("<")
    # AND ffmpeg may use what the handler leaves of 3,008 MB, and must end well within the 60 s timeout
    assert settings.limits == MediaLimits(ffmpeg_memory_bytes=(3008 - 512) * MIB, time_base_seconds=15.0)


def test_the_worker_units_environment_parses_into_the_configured_settings(
    configured: dict[str, Template], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the worker fleet synthesized with 3 jobs per instance, a 15-minute visibility timeout, the preview profile
    environment = worker_unit_environment(configured["WorkerFleetStack"])
    # WHEN the worker parses its systemd unit's Environment= lines, with no flags, on an instance with 6 vCPUs
    monkeypatch.setattr(worker_sizing, "machine_vcpus", lambda: 6)
    settings = parse_settings([], environment)
    # THEN it accepts them, and every setting is the configured one
    assert (settings.concurrency, settings.visibility_timeout) == (3, 900)
    assert settings.max_video_bytes == 500 * MIB
    assert environment[VCPUS_ENV] == "2"  # the c7g.large the jobs were sized for
    # AND the media limits are the shared defaults, but for the threads: the instance's vCPUs / the jobs
    assert (settings.profile, settings.limits) == ("preview", replace(DEFAULT_LIMITS, ffmpeg_threads=2))
    assert settings.lifecycle_hook == "drain-jobs-before-termination"
    assert settings.queue_url.startswith("<") and settings.body_key_arn is not None
    # AND every variable in the unit is one the worker reads (a typo would be silently ignored otherwise)
    unknown = {name for name in environment if name.startswith("WORKER_")} - _worker_variables()
    assert unknown == set()


def _worker_variables() -> set[str]:
    from sqs_decoupling.worker_fleet.worker import config

    names = {value for name, value in vars(config).items() if name.endswith("_ENV") and isinstance(value, str)}
    return names | {config.ENV_PREFIX + name for name in config.LIMIT_VARIABLES.values()}
