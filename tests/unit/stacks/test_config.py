"""The typed configuration: defaults from cdk.json, `-c key=value` strings parsed, bad values explained."""

from __future__ import annotations

import pytest
from aws_cdk import RemovalPolicy

from stacks.config import AppConfig, ConfigError
from tests.conftest import cdk_json_context, make_app


def test_cdk_json_holds_every_default_of_the_config() -> None:
    # GIVEN the context shipped in cdk.json
    context = cdk_json_context()
    # WHEN the configuration is read from it
    config = AppConfig.from_context(make_app())
    # THEN it equals the dataclass defaults, so cdk.json and the code cannot drift apart
    assert config == AppConfig()
    assert context["retention_days"] == 4
    assert context["max_message_size_bytes"] == 256 * 1024


def test_command_line_strings_are_parsed_to_the_field_types() -> None:
    # GIVEN values as `cdk synth -c key=value` delivers them: strings
    app = make_app(
        {
            "max_receive_count": "5",
            "cross_account_producer_accounts": "111111111111,222222222222",
            "scale_out_thresholds": "[2, 30]",
            "scale_out_adjustments": "1,3",
            "account": "123456789012",
            "region": "eu-west-1",
        }
    )
    # WHEN the configuration is read
    config = AppConfig.from_context(app)
    # THEN each has its field's type
    assert config.max_receive_count == 5
    assert config.cross_account_producer_accounts == ("111111111111", "222222222222")
    assert config.scale_out_thresholds == (2, 30)
    assert config.scale_out_adjustments == (1, 3)
    assert (config.account, config.region) == ("123456789012", "eu-west-1")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retention_days": 15}, "'retention_days' = 15 is out of range: allowed 1..14 days"),
        ({"max_message_size_bytes": 2_000_000}, "allowed 1024..1048576 bytes"),
        ({"max_receive_count": 0}, "'max_receive_count' = 0 is out of range: allowed 1..1000"),
        ({"kms_data_key_reuse_seconds": 30}, "allowed 60..86400 seconds"),
        ({"lambda_batch_size": 11}, "'lambda_batch_size' = 11 is out of range: allowed 1..10"),
        ({"lambda_max_concurrency": 1}, "allowed 2..1000"),
        ({"lambda_architecture": "sparc"}, "choose one of ['arm64', 'x86_64']"),
        ({"network_mode": "nat"}, "choose one of ['isolated', 'public']"),
        ({"account": "12345"}, "must be a 12-digit AWS account id"),
        ({"region": "Europe"}, "is not an AWS region name"),
        ({"cross_account_producer_accounts": ["abc"]}, "each entry must be a 12-digit AWS account id"),
        ({"upload_prefix": "/uploads"}, "must be a key prefix like 'uploads/'"),
        ({"scale_out_thresholds": [5, 1], "scale_out_adjustments": [1, 2]}, "must be strictly increasing"),
        ({"scale_out_thresholds": [1, 5]}, "must be non-empty lists of the same length"),
        ({"max_receive_count": "three"}, "'max_receive_count' = 'three' is not a valid int"),
        ({"retention_dayz": 3}, "Unknown configuration key(s) ['retention_dayz']"),
        (
            {"lambda_max_concurrency": 20},
            "'lambda_reserved_concurrency' = 10 is below 'lambda_max_concurrency' = 20",
        ),
        ({"lambda_reserved_concurrency": 1001, "lambda_max_concurrency": 10}, "allowed 2..1000"),
        ({"log_retention_days": 30}, "'log_retention_days' = 30 is not allowed: choose one of [365, 400,"),
        ({"log_retention_days": 366}, "CT.CLOUDWATCH.PR.2"),
        ({"queue_removal_policy": "snapshot"}, "choose one of ['destroy', 'retain']"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_key_and_the_allowed_values(
    values: dict[str, object], message: str
) -> None:
    # GIVEN a configuration value outside what is allowed
    # WHEN the configuration is built
    # THEN it fails, naming the key, the value and what is allowed
    with pytest.raises(ConfigError) as raised:
        AppConfig.from_mapping(values)
    assert message in str(raised.value)


def test_backlog_target_is_latency_goal_over_seconds_per_job() -> None:
    # GIVEN a 10-minute latency goal and 60 s per job
    config = AppConfig(acceptable_latency_seconds=600, seconds_per_job=60)
    # THEN one instance may have 10 messages waiting
    assert config.backlog_target_per_instance == 10


def test_queue_removal_policy_reaches_the_queues_props() -> None:
    # GIVEN the default and 'retain'
    # THEN the main queues are destroyed with the stack by default, kept with 'retain'
    assert AppConfig().encrypted_queue_props()["removal_policy"] == RemovalPolicy.DESTROY
    assert AppConfig(queue_removal_policy="retain").encrypted_queue_props()["removal_policy"] == RemovalPolicy.RETAIN
