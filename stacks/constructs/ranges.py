"""The one range check of every construct prop and configuration key: what was wrong, and what is allowed."""

from __future__ import annotations


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


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
