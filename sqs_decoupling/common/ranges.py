"""The one range check of every construct prop and setting: what was wrong, and what is allowed.

Each construct states its rules once, as :class:`Limit` values and one validator function that reports every broken
rule to a :class:`Problems` collector; the collector raises one error listing them all, one line each. A construct
raises ``ValueError`` naming itself and the prop; a stack's settings (the cdk.json context keys) run the same
validator through :meth:`Problems.for_settings`, which names the key instead of the prop, converts the value and the
allowed range to the key's unit, and raises :class:`ConfigError`, so `cdk synth` can print the lines without a
traceback.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A setting (a cdk.json context key) is missing, malformed or out of range."""


@dataclass(frozen=True)
class Limit:
    """The allowed range of a prop, in the prop's unit (e.g. ``Limit(60, 1_209_600, " s")``)."""

    low: float
    high: float
    unit: str = ""

    def allows(self, value: float) -> bool:
        return self.low <= value <= self.high

    def text(self) -> str:
        return f"{_number(self.low)}..{_number(self.high)}{self.unit}"

    def scaled(self, factor: float, unit: str) -> Limit:
        """This range in a unit of ``factor`` prop units, rounded inwards to whole numbers (60 s..14 days of a
        setting in days: 1..14 days)."""
        if factor == 1:
            return Limit(self.low, self.high, unit)
        return Limit(math.ceil(self.low / factor), math.floor(self.high / factor), unit)


@dataclass(frozen=True)
class Setting:
    """How a stack setting (cdk.json key ``key``) feeds a construct prop: one unit of the key is ``factor`` units
    of the prop, and ``unit`` is how the key's values are printed."""

    key: str
    factor: float = 1
    unit: str | None = None


class Problems:
    """Every broken rule of one construct's props (or one stack's settings), raised together by :meth:`raise_any`."""

    def __init__(self, owner: str) -> None:
        """``owner`` names the construct, e.g. "EncryptedQueue 'App/Jobs'"."""
        self.owner = owner
        self.messages: list[str] = []
        self._settings: Mapping[str, Setting] | None = None

    @classmethod
    def for_settings(cls, settings: Mapping[str, Setting]) -> Problems:
        """A collector for stack settings: a prop listed in ``settings`` is reported under its key, in its unit."""
        problems = cls("")
        problems._settings = settings
        return problems

    @property
    def error(self) -> type[ValueError]:
        return ValueError if self._settings is None else ConfigError

    def _setting(self, prop: str) -> Setting | None:
        """The setting that feeds ``prop`` (a prop no setting maps is a key of its own), or None for props."""
        return None if self._settings is None else self._settings.get(prop, Setting(prop))

    def name(self, prop: str) -> str:
        """How a message refers to ``prop``: the prop, or the setting's key in quotes."""
        setting = self._setting(prop)
        return prop if setting is None else f"'{setting.key}'"

    def subject(self, prop: str) -> str:
        """The start of a message about ``prop``: "EncryptedQueue 'App/Jobs': retention" or "Configuration key
        'retention_days'"."""
        if self._settings is None:
            return f"{self.owner}: {prop}"
        return f"Configuration key {self.name(prop)}"

    def shown(self, prop: str, value: Any) -> str:
        """``value`` as the user wrote it: a setting's list as the comma-separated text of `-c key=1,2`."""
        setting = self._setting(prop)
        if setting is not None and isinstance(value, tuple | list):
            return repr(",".join(map(str, value)))
        return str(value)

    def fix(self, prop: str, form: str = "<value>") -> str:
        """For a setting, where to set it (" Set it in cdk.json or with -c key=<value>."); nothing for a prop."""
        setting = self._setting(prop)
        return "" if setting is None else f" Set it in cdk.json or with -c {setting.key}={form}."

    def check(self, prop: str, value: float, limit: Limit, *, advice: str = "") -> None:
        """Report ``prop`` unless ``limit`` allows ``value`` (in the prop's unit)."""
        if limit.allows(value):
            return
        setting = self._setting(prop)
        if setting is not None:
            limit = limit.scaled(setting.factor, limit.unit if setting.unit is None else setting.unit)
            value = value / setting.factor
        self.add(
            f"{self.subject(prop)} = {_number(value)}{limit.unit} is out of range: allowed {limit.text()}."
            + (f" {advice}" if advice else self.fix(prop))
        )

    def choice(self, prop: str, value: str, allowed: Iterable[str]) -> None:
        """Report ``prop`` unless ``value`` is one of ``allowed``."""
        choices = list(allowed)
        if value not in choices:
            self.add(f"{self.subject(prop)} = {value!r} is not allowed: choose one of {choices}.")

    def add(self, message: str) -> None:
        """Report a broken rule that is not a plain range (a message naming the prop, its value and what is
        allowed)."""
        if message not in self.messages:
            self.messages.append(message)

    def extend(self, other: Problems) -> None:
        for message in other.messages:
            self.add(message)

    def raise_any(self) -> None:
        """Raise one error listing every problem, one line each (nothing when there is none)."""
        if self.messages:
            raise self.error("\n".join(self.messages))


def seconds(value: Any) -> float:
    """A Duration's seconds, or the number itself (validators take either)."""
    to_seconds = getattr(value, "to_seconds", None)
    return float(to_seconds()) if to_seconds is not None else float(value)


def check_setting(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    """Raise :class:`ConfigError` unless the setting ``name`` is in ``low..high`` (one rule, checked alone: settings
    that feed a construct prop check it with the construct's validator instead)."""
    problems = Problems.for_settings({})
    problems.check(name, value, Limit(low, high, unit))
    problems.raise_any()


def check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless the setting ``name`` is one of ``allowed``."""
    problems = Problems.for_settings({})
    problems.choice(name, value, allowed)
    problems.raise_any()


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
    """Raise ``error`` unless ``low <= value <= high``, e.g. "warm pool of 'App/Group': min_size = 0 instances is out
    of range: allowed 1..4 instances." (``subject`` names the prop or key; ``advice`` says how to fix it)."""
    if not low <= value <= high:
        raise error(
            f"{subject} = {_number(value)}{unit} is out of range: allowed {_number(low)}..{_number(high)}{unit}."
            + (f" {advice}" if advice else "")
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_pass_through(
    problems: Problems,
    prop: str,
    given: Mapping[str, Any],
    *,
    target: type,
    refused: Mapping[str, str],
) -> None:
    """Report each key of a pass-through ``prop`` (props for the L2 ``target``, e.g. ``queue_props``) that ``target``
    does not take, or that ``refused`` lists with the reason (a security default it would switch off, or a prop the
    construct sets from one of its own props)."""
    taken = set(inspect.signature(vars(target)["__init__"]).parameters) - {"self", "scope", "id"}
    for key in given:
        if key in refused:
            problems.add(f"{problems.subject(prop)}[{key!r}] is not allowed: {refused[key]}.")
        elif key not in taken:
            allowed = sorted(taken - set(refused))
            problems.add(f"{problems.subject(prop)}[{key!r}] is not a prop of {target.__name__}: allowed {allowed}.")
