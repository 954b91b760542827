"""Workloads: how many videos arrive in each minute, and how long one job takes.

Arrivals are whole jobs per minute (a rate is spread with carried remainders, so a day of 1,000 videos is exactly
1,000 jobs), spread evenly over the minute's seconds by the simulator. Shapes: a steady rate, a burst (N at once, in
second 0 of minute 0, on top of the rate), a daily curve (a rate that peaks mid-day), or a CSV with one whole count
per minute. ``poisson=True`` draws each minute's count from a Poisson distribution with the rate as its mean (seeded,
so a run is repeatable): real uploads arrive independently of each other, not on a metronome.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from tools.localcloud.paths import REPO_ROOT

MINUTES_PER_DAY = 1440
HANDLER_BENCH = REPO_ROOT / "bench" / "results" / "handler.json"


class WorkloadError(ValueError):
    """A workload flag or file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Workload:
    """Jobs arriving per minute (index = minute), with a label for tables and charts."""

    arrivals: tuple[int, ...]
    label: str
    at_once: int = 0  # of arrivals[0], the jobs that arrive together in second 0 (--burst)

    @property
    def total(self) -> int:
        return sum(self.arrivals)


def _spread(rates_per_minute: list[float]) -> list[int]:
    """Whole jobs per minute whose running total never drifts from the running total of the rates."""
    out, carried = [], 0.0
    for rate in rates_per_minute:
        carried += rate
        whole = math.floor(carried + 1e-9)
        out.append(whole)
        carried -= whole
    return out


def build(
    *,
    videos_per_day: float = 0.0,
    burst: int = 0,
    shape: str = "steady",
    minutes: int = MINUTES_PER_DAY,
    csv_path: Path | None = None,
    poisson: bool = False,
    seed: int = 0,
) -> Workload:
    """The workload the flags describe: ``shape`` is steady or daily; ``csv_path`` overrides both."""
    if not (math.isfinite(videos_per_day) and videos_per_day >= 0) or burst < 0 or minutes <= 0:
        raise WorkloadError(
            f"--videos-per-day ({videos_per_day:g}) and --burst ({burst}) must be >= 0 and --minutes ({minutes}) > 0"
        )
    if csv_path is not None:
        return from_csv(csv_path)
    per_minute = videos_per_day / MINUTES_PER_DAY
    if shape == "steady":
        rates = [per_minute] * minutes
    elif shape == "daily":
        # 1 + sin, lowest at 06:00 and highest at 18:00 of each day: the day's total stays videos_per_day.
        rates = [
            per_minute * (1 + math.sin(2 * math.pi * (m % MINUTES_PER_DAY - 720) / MINUTES_PER_DAY))
            for m in range(minutes)
        ]
    else:
        raise WorkloadError(f"--shape {shape!r}: use steady or daily (or --arrivals-csv FILE)")
    arrivals = _poisson(rates, seed) if poisson else _spread(rates)
    arrivals[0] += burst
    parts = [f"{videos_per_day:,.0f} videos/day ({shape}{', Poisson' if poisson else ''})"] if videos_per_day else []
    if burst:
        parts.append(f"burst of {burst:,} at once")
    return Workload(tuple(arrivals), ", ".join(parts) or "no arrivals", at_once=burst)


def _poisson(rates_per_minute: list[float], seed: int) -> list[int]:
    """Each minute's count drawn from Poisson(rate): independent arrivals with the same mean."""
    import numpy

    rng = numpy.random.default_rng(seed)
    return [int(n) for n in rng.poisson(rates_per_minute)]


def from_csv(path: Path) -> Workload:
    """One row per minute; the last column is the number of arrivals (a header row is allowed)."""
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except OSError as error:
        raise WorkloadError(f"--arrivals-csv {path}: {error.strerror}") from None
    arrivals: list[int] = []
    for number, row in enumerate(rows, start=1):
        if not row:
            continue
        try:
            count = float(row[-1])
        except ValueError:
            if number == 1:
                continue  # header
            raise WorkloadError(f"--arrivals-csv {path}, line {number}: {row[-1]!r} is not a number") from None
        # Arrivals are whole messages: 50.7 is refused rather than truncated to 50 (or rounded to 51).
        if not math.isfinite(count) or count < 0 or count != int(count):
            raise WorkloadError(
                f"--arrivals-csv {path}, line {number}: arrivals must be a whole number >= 0, got {row[-1].strip()!r}"
            )
        arrivals.append(int(count))
    if not arrivals:
        raise WorkloadError(f"--arrivals-csv {path}: no rows with a count of arrivals per minute")
    return Workload(tuple(arrivals), f"{path.name} ({len(arrivals)} minutes)")


def measured_handler_seconds(path: Path = HANDLER_BENCH) -> float:
    """Seconds one record takes in the Lambda handler (preview profile), from bench/handler_bench.py's result."""
    try:
        data = json.loads(path.read_text())
        return float(data["handler_seconds_median"]) / int(data["batch_records"])
    except (OSError, KeyError, ValueError) as error:
        raise WorkloadError(
            f"cannot read the handler benchmark {path} ({error}): run bench/handler_bench.py, "
            "or pass --lambda-job-seconds"
        ) from None
