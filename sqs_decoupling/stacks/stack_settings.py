"""What every stack of this project takes: its queue's settings, log retention and an optional alarm address.

Each stack module extends these with its own typed settings (``SecureQueueSettings``, ``VideoPipelineSettings``,
``WorkerFleetSettings``); every field has its default here or there, in one place. A key that feeds a construct
prop is checked by that construct's validator (``SETTING_KEYS`` says which prop each key feeds, in which unit), the
others here; every broken rule is reported in one ConfigError, naming the key (the field's name is its cdk.json
context key). ``sqs_decoupling.stacks.config.AppConfig`` derives its keys from these dataclasses and maps cdk.json
onto them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from sqs_decoupling.common.alarm_email import EMAIL_ADDRESS
from sqs_decoupling.common.log_groups import RETENTION_DAYS
from sqs_decoupling.common.ranges import Problems, Setting
from sqs_decoupling.intake.upload_intake import DEFAULT_PREFIX, validate_intake_props
from sqs_decoupling.queue.encrypted_queue import QueueSettings


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """``queue``: the jobs queue (default ``QueueSettings()``); ``log_retention_days``: days every log group keeps
    its events, one of CloudWatch's periods of a year or more (default 365); ``alarm_email``: an address
    subscribed to the alarm topic (default none)."""

    queue: QueueSettings = field(default_factory=QueueSettings)
    log_retention_days: int = 365
    alarm_email: str | None = None

    # Which construct prop each key feeds (and in which unit): the construct's validator checks the key.
    SETTING_KEYS: ClassVar[Mapping[str, Setting]] = {}

    def __post_init__(self) -> None:
        problems = Problems.for_settings(self.SETTING_KEYS)
        self.check(problems)
        problems.raise_any()

    def check(self, problems: Problems) -> None:
        """Report every broken rule of these settings to ``problems`` (subclasses add theirs)."""
        if self.log_retention_days not in RETENTION_DAYS:
            problems.add(
                f"Configuration key 'log_retention_days' = {self.log_retention_days} is not allowed: choose one of "
                f"{sorted(RETENTION_DAYS)} (CloudWatch Logs' retention periods of at least a year, the minimum of "
                "AWS Control Tower's control CT.CLOUDWATCH.PR.2)."
            )
        if self.alarm_email is not None and not EMAIL_ADDRESS.match(self.alarm_email):
            problems.add(
                f"Configuration key 'alarm_email' = {self.alarm_email!r} is not an e-mail address like "
                "'ops@example.com' (one address; leave it unset for no subscription)."
            )


@dataclass(frozen=True, kw_only=True)
class IntakeSettings(StackSettings):
    """A stack with an upload intake: ``upload_prefix`` (default "uploads/") whose new objects become jobs, and
    ``client_side_encryption`` (default off): a KMS key the consumers may decrypt message bodies with."""

    upload_prefix: str = DEFAULT_PREFIX
    client_side_encryption: bool = False

    SETTING_KEYS: ClassVar[Mapping[str, Setting]] = {"prefix": Setting("upload_prefix")}

    def check(self, problems: Problems) -> None:
        super().check(problems)
        validate_intake_props(problems, prefix=self.upload_prefix)
