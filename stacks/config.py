"""The project's one typed configuration, read from CDK context.

Defaults live in cdk.json under "context"; override any key with `cdk synth -c key=value` (values given on the
command line arrive as strings and are parsed here). Every value is validated, and a bad one fails synthesis
with a message that names the key, the value and what is allowed. Nothing here calls AWS.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_type_hints

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from clientside.envelope import DEFAULT_MAX_MESSAGE_SIZE_BYTES
from stacks.constructs.log_groups import RETENTION_DAYS
from stacks.constructs.ranges import check_range
from video_processing.limits import DEFAULT_MAX_VIDEO_BYTES, MIB
from worker.config import DEFAULT_CONCURRENCY

AWS_ACCOUNT_ID = re.compile(r"^\d{12}$")
AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# family.size, e.g. c7g.large, m7i-flex.2xlarge, c7gn.metal
EC2_INSTANCE_TYPE = re.compile(
    r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$"
)
EMAIL_ADDRESS = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[a-zA-Z]{2,}$")

# Context keys that belong to CDK, not to this configuration: feature flags ("@aws-cdk/..."), the CLI's own
# settings ("aws:cdk:...", "cdk-..."), and the answers of context lookups ("availability-zones:account=...").
CDK_CONTEXT_PREFIXES = ("@", "aws:", "aws-cdk", "cdk")
CDK_CONTEXT_KEYS = frozenset({"acknowledged-issue-numbers"})


class ConfigError(ValueError):
    """A context value is missing, malformed or out of range."""


NetworkMode = Literal["isolated", "public"]
ScalingMode = Literal["step", "backlog"]
LambdaArchitecture = Literal["arm64", "x86_64"]
RemovalChoice = Literal["destroy", "retain"]


@dataclass(frozen=True)
class AppConfig:
    """Settings for every stack. Field names are the cdk.json context keys."""

    # Deployment target. Both unset = environment-agnostic templates (synth needs no credentials).
    account: str | None = None
    region: str | None = None

    # Queues (EncryptedQueue)
    retention_days: int = 4
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES
    max_receive_count: int = 3
    kms_data_key_reuse_seconds: int = 3600
    oldest_message_alarm_seconds: int = 900
    alarm_email: str | None = None
    # Accounts whose principals may SendMessage to SecureQueueStack's queue through its resource policy.
    cross_account_producer_accounts: tuple[str, ...] = ()
    # A KMS key for client-side encryption of message bodies in the pipeline and the fleet (SecureQueueStack
    # always has one): the consumers get kms:Decrypt on it and decrypt bodies that producers encrypted.
    client_side_encryption: bool = False
    # What happens to the main queues when their stack is deleted (dead-letter queues are always retained).
    queue_removal_policy: RemovalChoice = "destroy"
    # Days every log group keeps its events (CloudWatch's allowed values, at least 365).
    log_retention_days: int = 365

    # Video pipeline (S3 -> SQS -> Lambda)
    upload_prefix: str = "uploads/"
    lambda_architecture: LambdaArchitecture = "arm64"
    lambda_timeout_seconds: int = 120
    lambda_memory_mb: int = 2048
    lambda_batch_size: int = 10
    lambda_batching_window_seconds: int = 5
    lambda_max_concurrency: int = 10
    # Concurrency reserved for the processor: at least lambda_max_concurrency, so the queue can always use it.
    lambda_reserved_concurrency: int = 10
    max_video_mb: int = DEFAULT_MAX_VIDEO_BYTES // MIB  # MiB, for both consumers

    # Worker fleet (S3 -> SQS -> EC2 Auto Scaling group)
    network_mode: NetworkMode = "isolated"
    worker_instance_type: str = "c7g.large"
    worker_max_instances: int = 4
    worker_visibility_timeout_seconds: int = 300
    worker_concurrency: int = DEFAULT_CONCURRENCY
    scaling_mode: ScalingMode = "step"
    # Step scaling: backlog (visible messages) at which to add 1, 2, 4 ... instances.
    scale_out_thresholds: tuple[int, ...] = (1, 20, 100)
    scale_out_adjustments: tuple[int, ...] = (1, 2, 4)
    scale_in_empty_minutes: int = 10
    # Backlog-per-instance target tracking: target = acceptable latency / seconds per job.
    acceptable_latency_seconds: int = 600
    seconds_per_job: int = 60

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def backlog_target_per_instance(self) -> int:
        """Messages one instance may have waiting and still meet the latency goal."""
        return max(1, self.acceptable_latency_seconds // self.seconds_per_job)

    def encrypted_queue_props(self) -> dict[str, Any]:
        """The EncryptedQueue settings every stack takes from this configuration."""
        return {
            "retention": Duration.days(self.retention_days),
            "max_message_size_bytes": self.max_message_size_bytes,
            "max_receive_count": self.max_receive_count,
            "data_key_reuse": Duration.seconds(self.kms_data_key_reuse_seconds),
            "oldest_message_alarm_threshold": Duration.seconds(self.oldest_message_alarm_seconds),
            "removal_policy": RemovalPolicy.RETAIN if self.queue_removal_policy == "retain" else RemovalPolicy.DESTROY,
        }

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
        return str(value)  # str and the Literal choices, checked in _validate
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Configuration key '{name}' = {value!r} is not a valid {type_name}: {err}") from err


def _check_range(name: str, value: int, low: int, high: int, unit: str = "") -> None:
    check_range(
        f"Configuration key '{name}'",
        value,
        low,
        high,
        unit,
        advice=f"Set it in cdk.json or with -c {name}=<value>.",
        error=ConfigError,
    )


def _check_choice(name: str, value: str, hint: Any) -> None:
    allowed = get_args(hint)
    if value not in allowed:
        raise ConfigError(f"Configuration key '{name}' = {value!r} is not allowed: choose one of {list(allowed)}.")


def _check_instance_type(value: str) -> None:
    if not EC2_INSTANCE_TYPE.match(value):
        raise ConfigError(
            f"Configuration key 'worker_instance_type' = {value!r} is not an EC2 instance type: use family.size, "
            "e.g. 'c7g.large' (Graviton, arm64) or 'c7i.large' (x86_64)."
        )
    if value.startswith("mac"):
        raise ConfigError(
            f"Configuration key 'worker_instance_type' = {value!r} runs macOS only; the worker runs on Amazon Linux "
            "2023: choose an arm64 (Graviton, e.g. 'c7g.large') or x86_64 (e.g. 'c7i.large') type."
        )
    try:
        ec2.InstanceType(value).architecture  # noqa: B018 -- what the worker asset is built for
    except Exception as err:  # jsii raises plain errors for types CDK cannot classify
        raise ConfigError(
            f"Configuration key 'worker_instance_type' = {value!r}: CDK cannot tell its architecture ({err}); "
            "choose a current arm64 (e.g. 'c7g.large') or x86_64 (e.g. 'c7i.large') type."
        ) from err


def _validate(c: AppConfig) -> None:
    if c.account is not None and not AWS_ACCOUNT_ID.match(c.account):
        raise ConfigError(f"Configuration key 'account' = {c.account!r} must be a 12-digit AWS account id.")
    if c.region is not None and not AWS_REGION.match(c.region):
        raise ConfigError(f"Configuration key 'region' = {c.region!r} is not an AWS region name like 'eu-west-1'.")
    if c.alarm_email is not None and not EMAIL_ADDRESS.match(c.alarm_email):
        raise ConfigError(
            f"Configuration key 'alarm_email' = {c.alarm_email!r} is not an e-mail address like 'ops@example.com' "
            "(one address; leave it unset for no subscription)."
        )
    for account in c.cross_account_producer_accounts:
        if not AWS_ACCOUNT_ID.match(account):
            raise ConfigError(
                f"Configuration key 'cross_account_producer_accounts' holds {account!r}: "
                "each entry must be a 12-digit AWS account id."
            )
    _check_range("retention_days", c.retention_days, 1, 14, " days")
    _check_range("max_message_size_bytes", c.max_message_size_bytes, 1024, 1024 * 1024, " bytes")
    _check_range("max_receive_count", c.max_receive_count, 1, 1000)
    _check_range("kms_data_key_reuse_seconds", c.kms_data_key_reuse_seconds, 60, 86_400, " seconds")
    _check_choice("queue_removal_policy", c.queue_removal_policy, RemovalChoice)
    if c.log_retention_days not in RETENTION_DAYS:
        raise ConfigError(
            f"Configuration key 'log_retention_days' = {c.log_retention_days} is not allowed: choose one of "
            f"{sorted(RETENTION_DAYS)} (CloudWatch Logs' retention periods of at least a year, the minimum of "
            "AWS Control Tower's control CT.CLOUDWATCH.PR.2)."
        )
    _check_range("oldest_message_alarm_seconds", c.oldest_message_alarm_seconds, 60, 1_209_600, " seconds")
    if not c.upload_prefix or c.upload_prefix.startswith("/") or not c.upload_prefix.endswith("/"):
        raise ConfigError(
            f"Configuration key 'upload_prefix' = {c.upload_prefix!r} must be a key prefix like 'uploads/' "
            "(not empty, no leading '/', ending in '/')."
        )
    _check_choice("lambda_architecture", c.lambda_architecture, LambdaArchitecture)
    _check_range("lambda_timeout_seconds", c.lambda_timeout_seconds, 1, 900, " seconds")
    _check_range("lambda_memory_mb", c.lambda_memory_mb, 128, 10_240, " MB")
    _check_range("lambda_batch_size", c.lambda_batch_size, 1, 10)
    _check_range("lambda_batching_window_seconds", c.lambda_batching_window_seconds, 0, 300, " seconds")
    _check_range("lambda_max_concurrency", c.lambda_max_concurrency, 2, 1000)
    _check_range("lambda_reserved_concurrency", c.lambda_reserved_concurrency, 2, 1000)
    if c.lambda_reserved_concurrency < c.lambda_max_concurrency:
        raise ConfigError(
            f"Configuration key 'lambda_reserved_concurrency' = {c.lambda_reserved_concurrency} is below "
            f"'lambda_max_concurrency' = {c.lambda_max_concurrency}: the event source could then start more "
            "invocations than the function may run, and they would be throttled. Raise "
            "lambda_reserved_concurrency or lower lambda_max_concurrency."
        )
    _check_range("max_video_mb", c.max_video_mb, 1, 10_000, " MB")
    _check_choice("network_mode", c.network_mode, NetworkMode)
    _check_instance_type(c.worker_instance_type)
    _check_range("worker_max_instances", c.worker_max_instances, 1, 100)
    _check_range("worker_visibility_timeout_seconds", c.worker_visibility_timeout_seconds, 30, 43_200, " seconds")
    _check_range("worker_concurrency", c.worker_concurrency, 1, 10)
    _check_choice("scaling_mode", c.scaling_mode, ScalingMode)
    if not c.scale_out_thresholds or len(c.scale_out_thresholds) != len(c.scale_out_adjustments):
        raise ConfigError(
            "Configuration keys 'scale_out_thresholds' and 'scale_out_adjustments' must be non-empty lists "
            f"of the same length; got {list(c.scale_out_thresholds)} and {list(c.scale_out_adjustments)}."
        )
    if list(c.scale_out_thresholds) != sorted(set(c.scale_out_thresholds)) or c.scale_out_thresholds[0] < 1:
        raise ConfigError(
            f"Configuration key 'scale_out_thresholds' = {list(c.scale_out_thresholds)} must be strictly "
            "increasing message counts, the first at least 1."
        )
    for adjustment in c.scale_out_adjustments:
        _check_range("scale_out_adjustments", adjustment, 1, c.worker_max_instances, " instances")
    _check_range("scale_in_empty_minutes", c.scale_in_empty_minutes, 2, 60, " minutes")
    _check_range("acceptable_latency_seconds", c.acceptable_latency_seconds, 60, 86_400, " seconds")
    _check_range("seconds_per_job", c.seconds_per_job, 1, 43_200, " seconds")
