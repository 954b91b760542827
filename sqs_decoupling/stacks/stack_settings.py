"""What every stack of this project takes: its queue's settings, log retention and an optional alarm address.

Each stack module extends these with its own typed settings (``SecureQueueSettings``, ``VideoPipelineSettings``,
``WorkerFleetSettings``); every field has its default here or there, in one place, and is checked where it is
defined, naming the field (which is also its cdk.json context key). ``sqs_decoupling.stacks.config.AppConfig`` only
maps cdk.json
onto them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqs_decoupling.common.alarm_email import EMAIL_ADDRESS
from sqs_decoupling.common.log_groups import RETENTION_DAYS
from sqs_decoupling.common.ranges import ConfigError
from sqs_decoupling.intake.upload_intake import DEFAULT_PREFIX, PREFIX_RULE, is_valid_prefix
from sqs_decoupling.queue.encrypted_queue import QueueSettings


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """``queue``: the jobs queue (default ``QueueSettings()``); ``log_retention_days``: days every log group keeps
    its events, one of CloudWatch's periods of a year or more (default 365); ``alarm_email``: an address
    subscribed to the alarm topic (default none)."""

    queue: QueueSettings = field(default_factory=QueueSettings)
    log_retention_days: int = 365
    alarm_email: str | None = None

    def __post_init__(self) -> None:
        if self.log_retention_days not in RETENTION_DAYS:
            raise ConfigError(
                f"Configuration key 'log_retention_days' = {self.log_retention_days} is not allowed: choose one of "
                f"{sorted(RETENTION_DAYS)} (CloudWatch Logs' retention periods of at least a year, the minimum of "
                "AWS Control Tower's control CT.CLOUDWATCH.PR.2)."
            )
        if self.alarm_email is not None and not EMAIL_ADDRESS.match(self.alarm_email):
            raise ConfigError(
                f"Configuration key 'alarm_email' = {self.alarm_email!r} is not an e-mail address like "
                "'ops@example.com' (one address; leave it unset for no subscription)."
            )


@dataclass(frozen=True, kw_only=True)
class IntakeSettings(StackSettings):
    """A stack with an upload intake: ``upload_prefix`` (default "uploads/") whose new objects become jobs, and
    ``client_side_encryption`` (default off): a KMS key the consumers may decrypt message bodies with."""

    upload_prefix: str = DEFAULT_PREFIX
    client_side_encryption: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_valid_prefix(self.upload_prefix):
            raise ConfigError(f"Configuration key 'upload_prefix' = {self.upload_prefix!r} must be {PREFIX_RULE}.")
