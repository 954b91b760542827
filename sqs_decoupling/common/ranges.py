"""The one range check of every construct prop and setting: what was wrong, and what is allowed.

Construct props fail with ``ValueError`` naming the construct and the prop; stack settings (the cdk.json context
keys) fail with :class:`ConfigError` naming the key, so `cdk synth` can print one line without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(ValueError):
    """A setting (a cdk.json context key) is missing, malformed or out of range."""


def check_range(
    subject: str,
    value: float,
    low: float,
    high: float,
    unit: str = "",
    *,
    advice: str = "",
    error: type[ValueError] = ValueError,
) -> None:
    """Raise ``error`` unless ``low <= value <= high``, e.g. "EncryptedQueue 'App/Jobs': retention = 59 s is out of
    range: allowed 60..1209600 s." (``subject`` names the prop or key; ``advice`` says how to fix it)."""
    if not low <= value <= high:
        raise error(
            f"{subject} = {_number(value)}{unit} is out of range: allowed {_number(low)}..{_number(high)}{unit}."
            + (f" {advice}" if advice else "")
        )


def check_setting(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    """:func:`check_range` for the setting (context key) ``name``."""
    check_range(
        f"Configuration key '{name}'",
        value,
        low,
        high,
        unit,
        advice=f"Set it in cdk.json or with -c {name}=<value>.",
        error=ConfigError,
    )


def check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless the setting ``name`` is one of ``allowed``."""
    choices = list(allowed)
    if value not in choices:
        raise ConfigError(f"Configuration key '{name}' = {value!r} is not allowed: choose one of {choices}.")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
