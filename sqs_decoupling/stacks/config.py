"""The app's configuration: cdk.json's context mapped onto each stack's own settings.

Defaults and range checks live with the settings each stack takes (``SecureQueueSettings``,
``VideoPipelineSettings``, ``WorkerFleetSettings`` and the ``QueueSettings`` they share); this module only reads the
context keys (override any with `cdk synth -c key=value`; values given on the command line arrive as strings and
are parsed here), rejects unknown ones, checks the deployment target, and builds the three settings, which check
their own values. A bad value fails synthesis with a message that names the key, the value and what is allowed.
Nothing here calls AWS.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_type_hints

from constructs import Construct

from sqs_decoupling.common.ranges import ConfigError
from sqs_decoupling.queue.encrypted_queue import QueueSettings, RemovalChoice
from sqs_decoupling.stacks.secure_queue_stack import AWS_ACCOUNT_ID, SecureQueueSettings
from sqs_decoupling.stacks.stack_settings import IntakeSettings, StackSettings
from sqs_decoupling.stacks.video_pipeline_stack import LambdaArchitecture, VideoPipelineSettings
from sqs_decoupling.stacks.worker_fleet_stack import NetworkMode, ScalingMode, WorkerFleetSettings

__all__ = ["AppConfig", "ConfigError", "is_cdk_context_key"]

AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# Context keys that belong to CDK, not to this configuration: feature flags ("@aws-cdk/..."), the CLI's own
# settings ("aws:cdk:...", "cdk-..."), and the answers of context lookups ("availability-zones:account=...").
CDK_CONTEXT_PREFIXES = ("@", "aws:", "aws-cdk", "cdk")
CDK_CONTEXT_KEYS = frozenset({"acknowledged-issue-numbers"})

_QUEUE = QueueSettings()
_STACK = StackSettings()
_INTAKE = IntakeSettings()
_SECURE = SecureQueueSettings()
_PIPELINE = VideoPipelineSettings()
_FLEET = WorkerFleetSettings()


@dataclass(frozen=True)
class AppConfig:
    """Every cdk.json context key, with the default of the stack settings it feeds (field names are the keys)."""

    # Deployment target. Both unset = environment-agnostic templates (synth needs no credentials).
    account: str | None = None
    region: str | None = None

    # Queues (QueueSettings, every stack)
    retention_days: int = _QUEUE.retention_days
    max_message_size_bytes: int = _QUEUE.max_message_size_bytes
    max_receive_count: int = _QUEUE.max_receive_count
    kms_data_key_reuse_seconds: int = _QUEUE.kms_data_key_reuse_seconds
    oldest_message_alarm_seconds: int = _QUEUE.oldest_message_alarm_seconds
    queue_removal_policy: RemovalChoice = _QUEUE.queue_removal_policy
    # Every stack (StackSettings)
    alarm_email: str | None = _STACK.alarm_email
    log_retention_days: int = _STACK.log_retention_days
    # SecureQueueStack
    cross_account_producer_accounts: tuple[str, ...] = _SECURE.cross_account_producer_accounts
    producer_principals: tuple[str, ...] = _SECURE.producer_principals
    consumer_principals: tuple[str, ...] = _SECURE.consumer_principals
    # Both intake stacks (IntakeSettings)
    client_side_encryption: bool = _INTAKE.client_side_encryption
    upload_prefix: str = _INTAKE.upload_prefix

    # VideoPipelineStack (S3 -> SQS -> Lambda)
    lambda_architecture: LambdaArchitecture = _PIPELINE.lambda_architecture
    lambda_timeout_seconds: int = _PIPELINE.lambda_timeout_seconds
    lambda_memory_mb: int = _PIPELINE.lambda_memory_mb
    lambda_batch_size: int = _PIPELINE.lambda_batch_size
    lambda_batching_window_seconds: int = _PIPELINE.lambda_batching_window_seconds
    lambda_max_concurrency: int = _PIPELINE.lambda_max_concurrency
    lambda_reserved_concurrency: int | None = _PIPELINE.lambda_reserved_concurrency
    lambda_provisioned_pollers: tuple[int, ...] = _PIPELINE.lambda_provisioned_pollers
    # Both consumers: the largest video processed (MiB)
    max_video_mb: int = _PIPELINE.max_video_mb
    # The video profile each consumer path makes (sqs_decoupling.contracts.profiles)
    lambda_profile: str = _PIPELINE.lambda_profile
    worker_profile: str = _FLEET.worker_profile

    # WorkerFleetStack (S3 -> SQS -> EC2 Auto Scaling group)
    network_mode: NetworkMode = _FLEET.network_mode
    worker_instance_type: str = _FLEET.worker_instance_type
    worker_max_instances: int = _FLEET.worker_max_instances
    worker_visibility_timeout_seconds: int = _FLEET.worker_visibility_timeout_seconds
    worker_concurrency: int | None = _FLEET.worker_concurrency
    worker_instance_types: tuple[str, ...] = _FLEET.worker_instance_types
    worker_spot_percentage: int = _FLEET.worker_spot_percentage
    worker_on_demand_base_capacity: int = _FLEET.worker_on_demand_base_capacity
    scaling_mode: ScalingMode = _FLEET.scaling_mode
    scale_out_thresholds: tuple[int, ...] = _FLEET.scale_out_thresholds
    scale_out_adjustments: tuple[int, ...] = _FLEET.scale_out_adjustments
    scale_in_empty_minutes: int = _FLEET.scale_in_empty_minutes
    acceptable_latency_seconds: int = _FLEET.acceptable_latency_seconds
    seconds_per_job: int = _FLEET.seconds_per_job
    worker_warm_pool_min: int = _FLEET.worker_warm_pool_min

    def __post_init__(self) -> None:
        if self.account is not None and not AWS_ACCOUNT_ID.match(self.account):
            raise ConfigError(f"Configuration key 'account' = {self.account!r} must be a 12-digit AWS account id.")
        if self.region is not None and not AWS_REGION.match(self.region):
            raise ConfigError(
                f"Configuration key 'region' = {self.region!r} is not an AWS region name like 'eu-west-1'."
            )
        # Each stack's settings check their own values (naming the key).
        self.secure_queue_settings()
        self.video_pipeline_settings()
        self.worker_fleet_settings()

    @property
    def backlog_target_per_instance(self) -> int:
        """Messages one instance may have waiting and still meet the latency goal."""
        return self.worker_fleet_settings().backlog_target_per_instance

    def queue_settings(self) -> QueueSettings:
        return QueueSettings(**self._values_for(QueueSettings))

    def encrypted_queue_props(self) -> dict[str, Any]:
        """The EncryptedQueue settings every stack takes from this configuration."""
        return self.queue_settings().props()

    def secure_queue_settings(self) -> SecureQueueSettings:
        return SecureQueueSettings(queue=self.queue_settings(), **self._values_for(SecureQueueSettings))

    def video_pipeline_settings(self) -> VideoPipelineSettings:
        return VideoPipelineSettings(queue=self.queue_settings(), **self._values_for(VideoPipelineSettings))

    def worker_fleet_settings(self) -> WorkerFleetSettings:
        return WorkerFleetSettings(queue=self.queue_settings(), **self._values_for(WorkerFleetSettings))

    def _values_for(self, settings: type[Any]) -> dict[str, Any]:
        """This configuration's values of the fields ``settings`` has (the keys are the field names)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(settings) if f.name != "queue"}

    @classmethod
    def from_context(cls, scope: Construct) -> AppConfig:
        """Read every field from CDK context (cdk.json defaults, `-c key=value` overrides).

        A context key that is neither a field nor CDK's own (see ``is_cdk_context_key``) fails, so a mistyped
        `-c retention_dayz=5` cannot silently synthesize the default.
        """
        context = scope.node.get_all_context()
        values = {key: value for key, value in context.items() if not is_cdk_context_key(key) and value is not None}
        return cls.from_mapping(values)

    @classmethod
    def from_cdk_json(cls, path: Path) -> AppConfig:
        """The configuration ``cdk.json``'s context gives (no `-c` overrides), e.g. for tools run beside the app."""
        context = json.loads(path.read_text())["context"]
        return cls.from_mapping({key: value for key, value in context.items() if not is_cdk_context_key(key)})

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> AppConfig:
        """Build a config from plain values (strings from the command line are parsed to the field's type)."""
        hints = get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(" ".join(_unknown_key_message(key, known) for key in unknown))
        parsed = {name: _coerce(name, hints[name], value) for name, value in values.items()}
        return cls(**parsed)


def is_cdk_context_key(key: str) -> bool:
    """True for context that CDK itself reads or writes (feature flags, CLI settings, lookup results)."""
    return key.startswith(CDK_CONTEXT_PREFIXES) or key in CDK_CONTEXT_KEYS or ":account=" in key


def _unknown_key_message(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "see the Configuration table in README.md for the keys."
    return f"Unknown configuration key '{key}' (from cdk.json or -c {key}=...): {hint}"


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Parse a context value into the field's type, or explain why it cannot be."""
    type_name = getattr(hint, "__name__", None) or str(hint)
    try:
        if type_name == "tuple":
            if isinstance(value, str):  # `-c key=1,2,3` or `-c 'key=[1, 2, 3]'`
                text = value.strip()
                value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
            item_type = get_args(hint)[0]
            return tuple(item_type(item) for item in value)
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError("use true or false")
        if hint is int:
            if isinstance(value, bool):
                raise TypeError("a boolean is not a number")
            return int(value)
        if hint == (str | None):
            return None if value in ("", "none", "null") else str(value)
        if hint == (int | None):
            if isinstance(value, bool):
                raise TypeError("a boolean is not a number")
            return None if value in ("", "none", "null", None) else int(value)
        return str(value)  # str and the Literal choices, checked by the stack settings
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Configuration key '{name}' = {value!r} is not a valid {type_name}: {err}") from err
