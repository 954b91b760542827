"""The typed configuration: defaults from cdk.json, `-c key=value` strings parsed, bad values explained."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable

import pytest
from aws_cdk import RemovalPolicy

from sqs_decoupling.contracts.worker_sizing import MAX_CONCURRENCY
from sqs_decoupling.stacks.config import AppConfig, ConfigError
from sqs_decoupling.worker_fleet.worker.config import parse_settings
from tests.conftest import cdk_json_context, make_app
from tests.support.docs import relative, section

# The documentation's configuration table, wherever it lives (README.md today).
CONFIGURATION = "Configuration (cdk.json context"


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


def test_provisioned_pollers_are_off_by_default_and_take_min_comma_max() -> None:
    # GIVEN the default, `-c lambda_provisioned_pollers=2,20`, and an empty value (off again)
    # THEN off is (), the pair is parsed, and the pipeline's settings carry it
    assert AppConfig().lambda_provisioned_pollers == ()
    config = AppConfig.from_context(make_app({"lambda_provisioned_pollers": "2,20"}))
    assert config.video_pipeline_settings().lambda_provisioned_pollers == (2, 20)
    assert AppConfig.from_context(make_app({"lambda_provisioned_pollers": ""})).lambda_provisioned_pollers == ()


def test_provisioned_pollers_lift_the_reservation_floor_of_maximum_concurrency() -> None:
    # GIVEN a reservation below the maximum concurrency, which standard mode refuses
    values = {"lambda_max_concurrency": 20, "lambda_reserved_concurrency": 10}
    with pytest.raises(ConfigError):
        AppConfig.from_mapping(values)
    # WHEN provisioned mode replaces the maximum concurrency THEN the reservation alone caps the function
    assert AppConfig.from_mapping(values | {"lambda_provisioned_pollers": "2,20"}).lambda_reserved_concurrency == 10


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retention_days": 15}, "'retention_days' = 15 days is out of range: allowed 1..14 days"),
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
        ({"producer_principals": ["arn:aws:iam::123:role/x"]}, "must be the ARN of an IAM role or user"),
        (
            {"worker_warm_pool_min": 1, "worker_spot_percentage": 50},
            "'worker_warm_pool_min' = 1 cannot be combined with Spot or several instance types",
        ),
        (
            {"worker_warm_pool_min": 1, "worker_instance_types": "c7g.large,c7g.xlarge"},
            "refuses a warm pool on a group with a mixed instances policy",
        ),
        ({"consumer_principals": "111122223333"}, "'consumer_principals' holds '111122223333'"),
        ({"upload_prefix": "/uploads"}, "must be a key prefix like 'uploads/'"),
        ({"scale_out_thresholds": [5, 1], "scale_out_adjustments": [1, 2]}, "must be strictly increasing"),
        ({"scale_out_thresholds": [1, 5]}, "must be non-empty lists of the same length"),
        ({"max_receive_count": "three"}, "'max_receive_count' = 'three' is not a valid int"),
        (
            {"retention_dayz": 3},
            "Unknown configuration key 'retention_dayz' (from cdk.json or -c retention_dayz=...): "
            "did you mean retention_days?",
        ),
        (
            {"lambda_max_concurrency": 20, "lambda_reserved_concurrency": 10},
            "'lambda_reserved_concurrency' = 10 is below 'lambda_max_concurrency' = 20",
        ),
        ({"lambda_reserved_concurrency": 1001, "lambda_max_concurrency": 10}, "allowed 2..1000"),
        ({"log_retention_days": 30}, "'log_retention_days' = 30 is not allowed: choose one of [365, 400,"),
        ({"log_retention_days": 366}, "CT.CLOUDWATCH.PR.2"),
        ({"queue_removal_policy": "snapshot"}, "choose one of ['destroy', 'retain']"),
        (
            {"lambda_provisioned_pollers": "1,20"},
            "'lambda_provisioned_pollers' = '1,20': MIN = 1 is out of range: allowed 2..200",
        ),
        ({"lambda_provisioned_pollers": "2,2001"}, "MAX = 2001 is out of range: allowed 2..2,000"),
        ({"lambda_provisioned_pollers": "30,20"}, "MIN = 30 is above MAX = 20: allowed MIN <= MAX"),
        ({"lambda_provisioned_pollers": "5"}, "needs two numbers, MIN,MAX (e.g. 2,20), got 1"),
        ({"lambda_provisioned_pollers": "2,many"}, "'lambda_provisioned_pollers' = ['2', 'many'] is not a valid tuple"),
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


def test_the_readme_gives_the_ranges_the_backlog_keys_allow() -> None:
    # GIVEN the configuration table's row for the backlog target's two keys
    _, table = section(CONFIGURATION)
    row = next(line for line in table.splitlines() if line.startswith("| `acceptable_latency_seconds`"))
    ranges = re.findall(r"(\d+)\.\.(\d+)", row.split("|")[3])
    assert len(ranges) == 2
    for key, (low, high) in zip(("acceptable_latency_seconds", "seconds_per_job"), ranges, strict=True):
        # WHEN a value at each end, and one past each end, is configured THEN the ends pass and the others fail
        AppConfig.from_mapping({key: int(low)})
        AppConfig.from_mapping({key: int(high)})
        for outside in (int(low) - 1, int(high) + 1):
            with pytest.raises(ConfigError, match=rf"'{key}' = {outside} .*allowed {low}\.\.{high}"):
                AppConfig.from_mapping({key: outside})
    # AND the target it derives is rounded down, never below one message per instance
    assert AppConfig(acceptable_latency_seconds=60, seconds_per_job=43_200).backlog_target_per_instance == 1
    assert AppConfig(acceptable_latency_seconds=650, seconds_per_job=60).backlog_target_per_instance == 10


def test_a_mistyped_context_key_fails_naming_it_and_the_closest_known_key() -> None:
    # GIVEN `cdk synth -c retention_dayz=5`: the key arrives in the app's context like any other
    app = make_app({"retention_dayz": "5"})
    # WHEN the configuration is read
    # THEN synthesis stops, naming the key and what was probably meant, instead of silently using the default
    with pytest.raises(ConfigError, match=r"'retention_dayz'.*did you mean retention_days\?"):
        AppConfig.from_context(app)


def test_a_key_unlike_any_known_key_points_to_the_documented_keys() -> None:
    # GIVEN a key like no known key; WHEN the configuration is read
    # THEN the error points to the file that holds the configuration table
    where, _ = section(CONFIGURATION)
    points_there = rf"Unknown configuration key 'colour'.*Configuration table in {re.escape(relative(where))}"
    with pytest.raises(ConfigError, match=points_there):
        AppConfig.from_context(make_app({"colour": "blue"}))


def test_context_that_belongs_to_cdk_is_not_configuration() -> None:
    # GIVEN feature flags (cdk.json), the CLI's own settings and a committed context lookup result
    app = make_app(
        {
            "aws:cdk:enable-path-metadata": True,
            "acknowledged-issue-numbers": [12345],
            "availability-zones:account=111122223333:region=eu-west-1": ["eu-west-1a", "eu-west-1b"],
            "cdk-toolkit:some-setting": "x",
        }
    )
    # THEN they are not mistaken for configuration keys
    assert AppConfig.from_context(app) == AppConfig()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("zz9.large", "'worker_instance_type' = 'zz9.large' is not an instance type the worker fleet supports"),
        (
            "c7g.larg",
            "'worker_instance_type' = 'c7g.larg' is not an instance type the worker fleet supports: "
            "did you mean 'c7g.large'?",
        ),
        ("C7G.LARGE", "'C7G.LARGE' is not an instance type the worker fleet supports: did you mean 'c7g.large'?"),
        ("c7g", "'worker_instance_type' = 'c7g' is not an instance type the worker fleet supports (families: c6g"),
        (
            "mac2.metal",
            "'worker_instance_type' = 'mac2.metal' is not an instance type the worker fleet supports: "
            "Mac types run macOS only",
        ),
        ("t4g.large", "'t4g.large' is not an instance type the worker fleet supports: burstable T types"),
        ("c7i.medium", "'c7i.medium' is not an instance type the worker fleet supports"),  # c7i starts at large
    ],
)
def test_a_bad_instance_type_fails_the_configuration_check_naming_the_key(value: str, message: str) -> None:
    # GIVEN an instance type the catalogue (sqs_decoupling/contracts/instance_types.py) does not list
    # WHEN the configuration is read (`-c worker_instance_type=...`), before any construct is built
    # THEN it fails naming the key, with the nearest supported type when there is a near miss
    with pytest.raises(ConfigError, match=re.escape(message)):
        AppConfig.from_mapping({"worker_instance_type": value})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"worker_instance_types": "c7g.large,c7g.larg"},
            "'worker_instance_types' = 'c7g.larg' is not an instance "
            "type the worker fleet supports: did you mean 'c7g.large'?",
        ),
        (
            {"worker_instance_types": "c7g.large,c7i.large"},
            "'worker_instance_types': 'c7i.large' is x86_64, but "
            "the worker asset is built for arm64 (the architecture of worker_instance_type 'c7g.large')",
        ),
        (
            {"worker_instance_types": "c7g.large,c7g.large"},
            "'worker_instance_types' = ['c7g.large', 'c7g.large'] names a type twice",
        ),
        ({"worker_spot_percentage": 101}, "'worker_spot_percentage' = 101 % is out of range: allowed 0..100 %"),
        ({"worker_spot_percentage": -1}, "'worker_spot_percentage' = -1 % is out of range"),
        (
            {"worker_on_demand_base_capacity": 5, "worker_spot_percentage": 50},
            "'worker_on_demand_base_capacity' = 5 instances is out of range: allowed 0..4 instances",
        ),
        ({"worker_concurrency": 33}, "'worker_concurrency' = 33 is out of range: allowed 1..32"),
        (
            {"worker_on_demand_base_capacity": 1},
            "'worker_on_demand_base_capacity' = 1 has no effect without Spot",
        ),
    ],
)
def test_a_bad_spot_or_instance_mix_setting_fails_naming_the_key_and_the_bad_item(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        AppConfig.from_mapping(values)


@pytest.mark.parametrize(
    ("values", "concurrency", "threads"),
    [
        ({}, 2, 1),  # c7g.large, transcode: one job per vCPU, one thread each
        ({"worker_instance_type": "c7g.4xlarge"}, 16, 1),
        ({"worker_instance_type": "c7g.16xlarge"}, 32, 2),  # capped at 32 jobs: the rest go to threads
        ({"worker_profile": "preview", "worker_instance_type": "m7g.large"}, 4, 1),  # no encoding: two per vCPU
        ({"worker_profile": "preview"}, 2, 1),  # ... as far as the memory holds (c7g.large: 4 GiB, 1.5 GiB a job)
        ({"worker_instance_type": "c7g.medium"}, 1, 1),
        ({"worker_concurrency": 1}, 1, 2),  # configured: kept, the threads follow
        ({"worker_instance_types": "c7g.xlarge,m7g.large"}, 2, 1),  # mixed sizes: the smallest
    ],
)
def test_jobs_per_instance_follow_the_vcpus_and_the_profile(
    values: dict[str, object], concurrency: int, threads: int
) -> None:
    busy = AppConfig.from_mapping(values).worker_fleet_settings().busy
    assert (busy.concurrency, busy.ffmpeg_threads) == (concurrency, threads)


def test_x86_types_mix_when_the_asset_is_built_for_x86() -> None:
    # GIVEN an x86_64 worker_instance_type and x86_64 types to mix, from the command line
    config = AppConfig.from_mapping(
        {"worker_instance_type": "c7i.large", "worker_instance_types": "c7i.large,m7i.large,c6a.xlarge"}
    ).worker_fleet_settings()
    # THEN the group may launch each, and the jobs are sized for the smallest (2 vCPUs)
    assert config.group_instance_types == ("c7i.large", "m7i.large", "c6a.xlarge")
    assert config.mixed_instances
    assert config.sized_vcpus == 2


@pytest.mark.parametrize(("value", "architecture"), [("c7g.large", "arm64"), ("m7i-flex.2xlarge", "x86_64")])
def test_instance_types_of_both_architectures_are_accepted(value: str, architecture: str) -> None:
    from aws_cdk import aws_ec2 as ec2

    from sqs_decoupling.worker_fleet.worker_fleet import architecture_of

    assert AppConfig.from_mapping({"worker_instance_type": value}).worker_instance_type == value
    assert architecture_of(ec2.InstanceType(value)) == architecture  # the worker asset is built for this


@pytest.mark.parametrize("value", ["ops", "ops@example", "a@b.com,c@d.com", "ops @example.com"])
def test_a_bad_alarm_email_fails_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"'alarm_email' = .* is not an e-mail address"):
        AppConfig.from_mapping({"alarm_email": value})


def test_queue_removal_policy_reaches_the_queues_props() -> None:
    # GIVEN the default and 'retain'
    # THEN the main queues are destroyed with the stack by default, kept with 'retain'
    assert AppConfig().encrypted_queue_props()["removal_policy"] == RemovalPolicy.DESTROY
    assert AppConfig(queue_removal_policy="retain").encrypted_queue_props()["removal_policy"] == RemovalPolicy.RETAIN


def test_each_stacks_settings_check_their_own_keys_without_appconfig() -> None:
    # GIVEN the settings a stack takes, built directly (as a project that copied the stack does)
    from sqs_decoupling.queue.encrypted_queue import QueueSettings
    from sqs_decoupling.stacks.video_pipeline_stack import VideoPipelineSettings
    from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetSettings

    # THEN a bad value fails there, naming the key and the allowed range
    with pytest.raises(ConfigError, match=r"'lambda_batch_size' = 11 is out of range: allowed 1\.\.10"):
        VideoPipelineSettings(lambda_batch_size=11)
    with pytest.raises(ConfigError, match=r"'retention_days' = 15 days is out of range: allowed 1\.\.14 days"):
        QueueSettings(retention_days=15)
    with pytest.raises(ConfigError, match=r"'worker_instance_type' = 'c7g' is not an instance type the worker"):
        WorkerFleetSettings(worker_instance_type="c7g")
    # AND AppConfig hands each stack exactly the values of its keys
    config = AppConfig(lambda_batch_size=5, worker_concurrency=4, retention_days=7)
    assert config.video_pipeline_settings().lambda_batch_size == 5
    assert config.worker_fleet_settings().worker_concurrency == 4
    assert config.secure_queue_settings().queue == QueueSettings(retention_days=7)


def test_a_lambda_profile_that_cannot_finish_within_the_timeout_fails_naming_both_figures() -> None:
    # GIVEN the transcode profile (renditions: 30 s + 10 s per second of video) asked of a 120 s function
    # WHEN / THEN synthesis stops, naming the profile's ceiling for the longest allowed video and the timeout
    with pytest.raises(ConfigError) as error:
        AppConfig(lambda_profile="transcode", lambda_timeout_seconds=120)
    message = str(error.value)
    assert "'lambda_profile' = 'transcode' may take up to 72,090 s" in message
    assert "longest video the media limits allow (7,200 s)" in message
    assert "'lambda_timeout_seconds' = 120 s" in message
    # AND it says what to do instead
    assert "Choose a profile that fits (preview)" in message and "worker_profile" in message


@pytest.mark.parametrize("timeout", [1, 120, 900])
def test_the_preview_profile_fits_every_allowed_timeout(timeout: int) -> None:
    # GIVEN the preview profile, whose probe and thumbnail ceilings are a quarter of the timeout each
    # WHEN / THEN any timeout Lambda allows is accepted
    assert AppConfig(lambda_profile="preview", lambda_timeout_seconds=timeout).lambda_timeout_seconds == timeout


@pytest.mark.parametrize("concurrency", [MAX_CONCURRENCY, MAX_CONCURRENCY + 1])
def test_the_stack_and_the_worker_cli_accept_the_same_concurrencies(concurrency: int) -> None:
    # GIVEN one concurrency, as the stack's worker_concurrency and as the worker's --concurrency
    def accepted(check: Callable[[], object]) -> bool:
        try:
            check()
        except (ConfigError, SystemExit):
            return False
        return True

    stack = accepted(lambda: AppConfig(worker_concurrency=concurrency))
    with contextlib.redirect_stderr(io.StringIO()):
        cli = accepted(
            lambda: parse_settings(
                ["--concurrency", str(concurrency)], {"WORKER_QUEUE_URL": "q", "WORKER_OUTPUT_BUCKET": "b"}
            )
        )
    # THEN both accept it or both refuse it (one limit, sqs_decoupling.contracts.worker_sizing.MAX_CONCURRENCY)
    assert stack == cli == (concurrency <= MAX_CONCURRENCY)


def test_the_keys_are_the_fields_of_the_stacks_settings_so_a_new_setting_is_added_in_one_place() -> None:
    # GIVEN the settings dataclasses the stacks take
    import dataclasses

    from sqs_decoupling.queue.encrypted_queue import QueueSettings
    from sqs_decoupling.stacks.config import KEYS
    from sqs_decoupling.stacks.secure_queue_stack import SecureQueueSettings
    from sqs_decoupling.stacks.video_pipeline_stack import VideoPipelineSettings
    from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetSettings

    settings = (QueueSettings, SecureQueueSettings, VideoPipelineSettings, WorkerFleetSettings)
    fields = {f.name: f for cls in settings for f in dataclasses.fields(cls) if f.name != "queue"}
    # THEN the configuration's keys are exactly their fields plus the deployment target, with the fields' defaults
    assert set(KEYS) == set(fields) | {"account", "region"}
    assert AppConfig().values() == {
        "account": None,
        "region": None,
        **{
            name: getattr(cls(), name)
            for cls in settings
            for name in {f.name for f in dataclasses.fields(cls)} - {"queue"}
        },
    }


def test_every_bad_key_is_reported_at_once_one_line_each() -> None:
    # GIVEN three bad values, for three different stacks' settings and the deployment target
    values = {"retention_days": 15, "lambda_batch_size": 11, "worker_spot_percentage": 101, "region": "Europe"}
    # WHEN the configuration is built
    with pytest.raises(ConfigError) as raised:
        AppConfig.from_mapping(values)
    # THEN one error names each key, on a line of its own
    lines = str(raised.value).splitlines()
    assert len(lines) == 4
    for key in values:
        assert sum(f"'{key}'" in line for line in lines) == 1


def test_a_config_is_immutable_and_has_no_unknown_attributes() -> None:
    config = AppConfig()
    with pytest.raises(AttributeError):
        config.retention_days = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = config.retention_dayz
    with pytest.raises(ConfigError, match="did you mean retention_days"):
        AppConfig(retention_dayz=5)
