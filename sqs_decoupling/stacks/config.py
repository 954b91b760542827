"""The app's configuration: cdk.json's context mapped onto each stack's own settings.

Keys, defaults, types and range checks live with the settings each stack takes (``SecureQueueSettings``,
``VideoPipelineSettings``, ``WorkerFleetSettings`` and the ``QueueSettings`` they share): ``KEYS`` is derived from their
fields, so a new setting is added in one place. This module only reads the context keys (override any with `cdk synth -c
key=value`; values given on the command line arrive as strings and are parsed here), rejects unknown ones, checks the
deployment target, and builds the three settings, which check their own values. A bad value fails synthesis with a
message that names the key, the value and what is allowed. Nothing here calls AWS.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, get_args, get_type_hints

from constructs import Construct

from sqs_decoupling.common.ranges import ConfigError
from sqs_decoupling.queue.encrypted_queue import QueueSettings
from sqs_decoupling.stacks.secure_queue_stack import AWS_ACCOUNT_ID, SecureQueueSettings
from sqs_decoupling.stacks.video_pipeline_stack import VideoPipelineSettings
from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetSettings

__all__ = ["KEYS", "AppConfig", "ConfigError", "is_cdk_context_key"]

AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# Context keys that belong to CDK, not to this configuration: feature flags ("@aws-cdk/..."), the CLI's own
# settings ("aws:cdk:...", "cdk-..."), and the answers of context lookups ("availability-zones:account=...").
CDK_CONTEXT_PREFIXES = ("@", "aws:", "aws-cdk", "cdk")
CDK_CONTEXT_KEYS = frozenset({"acknowledged-issue-numbers"})

# The settings the stacks take; their fields (but the nested ``queue``) are the configuration keys.
SETTINGS = (QueueSettings, SecureQueueSettings, VideoPipelineSettings, WorkerFleetSettings)


class Key(NamedTuple):
    """A configuration key: its type (what a `-c key=value` string is parsed to) and its default."""

    hint: Any
    default: Any


def _settings_keys() -> dict[str, Key]:
    """Every field of ``SETTINGS``, once; a field two stacks share (e.g. ``max_video_mb``) must agree on its type
    and default, or the import fails here rather than one stack silently taking the other's default."""
    keys: dict[str, Key] = {}
    for settings in SETTINGS:
        hints = get_type_hints(settings)
        defaults = settings()
        for field in dataclasses.fields(settings):
            if field.name == "queue":
                continue
            key = Key(hints[field.name], getattr(defaults, field.name))
            if keys.setdefault(field.name, key) != key:
                raise TypeError(f"{settings.__name__}.{field.name} disagrees with {keys[field.name]}: {key}")
    return keys


# Deployment target (both unset = environment-agnostic templates: synth needs no credentials), then the settings.
KEYS: dict[str, Key] = {"account": Key(str | None, None), "region": Key(str | None, None), **_settings_keys()}


class AppConfig:
    """Every cdk.json context key (``KEYS``) with its value, read as attributes (``config.retention_days``);
    keyword arguments override the defaults. Immutable; equal when every value is."""

    __slots__ = ("_values",)
    _values: dict[str, Any]

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise ConfigError(" ".join(_unknown_key_message(key, set(KEYS)) for key in unknown))
        object.__setattr__(self, "_values", {name: values.get(name, key.default) for name, key in KEYS.items()})
        self._check()

    def __getattr__(self, name: str) -> Any:
        if name in KEYS:
            return self._values[name]
        raise AttributeError(f"AppConfig has no key {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("AppConfig is immutable: build a new one")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AppConfig) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        return f"AppConfig({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def values(self) -> dict[str, Any]:
        """Every key with its value."""
        return dict(self._values)

    def _check(self) -> None:
        """The deployment target here; each stack's settings check their own keys. Every problem in one error."""
        messages: list[str] = []
        if self.account is not None and not AWS_ACCOUNT_ID.match(self.account):
            messages.append(f"Configuration key 'account' = {self.account!r} must be a 12-digit AWS account id.")
        if self.region is not None and not AWS_REGION.match(self.region):
            messages.append(f"Configuration key 'region' = {self.region!r} is not an AWS region name like 'eu-west-1'.")
        try:
            queue = self.queue_settings()
        except ConfigError as error:
            messages += str(error).splitlines()
            queue = QueueSettings()  # to check the stacks' own keys too
        for settings in SETTINGS[1:]:
            try:
                settings(queue=queue, **self._values_for(settings))
            except ConfigError as error:
                messages += [line for line in str(error).splitlines() if line not in messages]
        if messages:
            raise ConfigError("\n".join(messages))

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
        return {f.name: self._values[f.name] for f in dataclasses.fields(settings) if f.name != "queue"}

    @classmethod
    def from_context(cls, scope: Construct) -> AppConfig:
        """Read every key from CDK context (cdk.json defaults, `-c key=value` overrides).

        A context key that is neither a key nor CDK's own (see ``is_cdk_context_key``) fails, so a mistyped
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
    def from_mapping(cls, values: Mapping[str, Any]) -> AppConfig:
        """Build a config from plain values (strings from the command line are parsed to the key's type)."""
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise ConfigError(" ".join(_unknown_key_message(key, set(KEYS)) for key in unknown))
        return cls(**{name: _coerce(name, KEYS[name].hint, value) for name, value in values.items()})


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
