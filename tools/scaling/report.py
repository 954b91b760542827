"""The simulator's outputs: one summary per policy and path, a JSON file, a terminal table and a PNG."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.scaling.prices import (
    EBS_GP3_PER_GB_MONTH,
    HOURS_PER_MONTH,
    LAMBDA_GB_SECOND,
    LAMBDA_PER_MILLION_REQUESTS,
    instance_price,
)
from tools.scaling.simulate import Run
from tools.scaling.template import Fleet, LambdaConsumer

ROWS = (
    ("jobs_in", "jobs in"),
    ("jobs_done", "jobs done"),
    ("jobs_not_started", "jobs not started by the end"),
    ("jobs_expired", "jobs lost to queue retention"),
    ("jobs_dead_lettered", "jobs dead-lettered (DLQ)"),
    ("failed_receives", "failed receives (retried)"),
    ("first_empty_minute", "queue first empty at minute"),
    ("drain_minutes", "all done at minute"),
    ("max_age_seconds", "oldest message age, max (s)"),
    ("p95_wait_seconds", "p95 wait (s)"),
    ("scale_out_delay_seconds", "first job starts after (s)"),
    ("peak", "peak instances / concurrency"),
    ("instance_hours", "instance-hours"),
    ("cost_usd", "compute cost (USD)"),
)


def fleet_cost(fleet: Fleet, instance_hours: float) -> float:
    """Instance-hours at the on-demand price, plus their gp3 root volumes."""
    volumes = instance_hours / HOURS_PER_MONTH * fleet.root_volume_gb * EBS_GP3_PER_GB_MONTH
    return instance_hours * instance_price(fleet.instance_type) + volumes


def lambda_cost(consumer: LambdaConsumer, gb_seconds: float, invocations: int) -> float:
    return gb_seconds * LAMBDA_GB_SECOND[consumer.architecture] + invocations / 1e6 * LAMBDA_PER_MILLION_REQUESTS


@dataclass
class Result:
    """Everything one ``make scaling`` run found, keyed as scaling.json has it."""

    workload: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    lambda_path: dict[str, Any]
    runs: dict[str, Run]
    sources: dict[str, str]
    warm_pool_effect: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        series = {name: {key: values for key, values in run.series.items()} for name, run in self.runs.items()}
        return {
            "workload": self.workload,
            "policies": self.policies,
            "lambda": self.lambda_path,
            "sources": self.sources,
            "warm_pool_effect": self.warm_pool_effect,
            "series_per_minute": series,
        }

    def write_json(self, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return dest

    def table(self) -> str:
        columns: dict[str, Mapping[str, Any]] = {
            **{f"fleet: {k}": v for k, v in self.policies.items()},
            "lambda": self.lambda_path,
        }
        header = ["", *columns]
        rows = [header]
        for key, label in ROWS:
            cells = [label]
            for summary in columns.values():
                value = summary.get(
                    key, summary.get("peak_instances", summary.get("peak_concurrency")) if key == "peak" else None
                )
                cells.append("-" if value is None else f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
            rows.append(cells)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        effect = self.warm_pool_effect
        if effect:
            with_, without = effect["with"], effect["without"]
            lines.append(
                f"warm pool ({effect['pool']['pool_state']}, fleet: {effect['pool']['mode']}): first job after "
                f"{_cell(with_['scale_out_delay_seconds'])} s with, {_cell(without['scale_out_delay_seconds'])} s "
                f"without; all done at minute {_cell(with_['drain_minutes'])} with, "
                f"{_cell(without['drain_minutes'])} without"
            )
        return "\n".join([f"workload: {self.workload['label']}", *lines])


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _binned(values: list[float], width: int) -> tuple[list[float], list[float], list[float]]:
    """(mean, min, max) of each ``width`` consecutive values: a long run drawn as a band, not a solid block."""
    chunks = [values[i : i + width] for i in range(0, len(values), width)]
    return [sum(c) / len(c) for c in chunks], [min(c) for c in chunks], [max(c) for c in chunks]


def _y_from_zero(axis: Any, *series: list[float]) -> None:
    """Counts start at 0 and a constant series gets headroom, not an axis like 3.8-4.2."""
    top = max((max(s, default=0) for s in series), default=0)
    axis.set_ylim(0, max(1.0, top * 1.12))


def write_chart(result: Result, dest: Path) -> Path:
    """Queue depth, capacity and oldest age: the two fleet policies and the Lambda path side by side.

    Runs longer than 6 hours are drawn in hours, in bins (line: the bin's mean; band: its min..max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    names = list(result.runs)
    fig, axes = plt.subplots(
        3, len(names), figsize=(5.2 * len(names), 9.5), sharex=True, squeeze=False, constrained_layout=True
    )
    for column, name in enumerate(names):
        run = result.runs[name]
        minutes = len(run.series["visible"])
        width = max(1, math.ceil(minutes / 100))
        hours = minutes > 360
        scale = 60 if hours else 1

        def x(values: list[float], width: int = width, scale: int = scale) -> list[float]:
            return [(i * width + width / 2) / scale for i in range(len(values))]

        top, middle, bottom = axes[0][column], axes[1][column], axes[2][column]
        lam = name.startswith("lambda")
        queue_lines = [("visible", "visible (backlog)", "tab:blue"), ("in_flight", "in flight", "tab:orange")]
        for key, label, colour in queue_lines:
            mean, low, high = _binned(run.series[key], width)
            top.plot(x(mean), mean, label=label, color=colour, linewidth=1.2)
            if width > 1:
                top.fill_between(x(mean), low, high, color=colour, alpha=0.18, linewidth=0)
        _y_from_zero(top, run.series["visible"], run.series["in_flight"])
        top.set_title(name, fontsize=11)
        top.legend(fontsize=8, loc="best")
        top.yaxis.set_major_locator(MaxNLocator(integer=True))
        top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        _, _, cap_high = _binned(run.series["capacity"], width)
        busy, _, busy_high = _binned(run.series["busy"], width)
        if lam:
            middle.plot(x(cap_high), cap_high, color="tab:green", label="concurrency limit (scaling)")
            middle.plot(x(busy), busy, color="tab:purple", label="batches running (mean)")
            middle.set_ylabel("concurrent batches")
            _y_from_zero(middle, cap_high, busy_high)
        else:
            middle.step(x(cap_high), cap_high, where="mid", color="tab:green", label="instances (billed)")
            middle.plot(x(busy), busy, color="tab:purple", label="jobs running (mean)")
            middle.set_ylabel("instances / jobs")
            _y_from_zero(middle, cap_high, busy_high)
        middle.yaxis.set_major_locator(MaxNLocator(integer=True))
        middle.legend(fontsize=8, loc="best")
        ages = [a / 60 for a in run.series["oldest_age"]]
        _, _, age_high = _binned(ages, width)
        use_hours = max(ages, default=0) > 180
        age_high = [a / 60 for a in age_high] if use_hours else age_high
        bottom.plot(x(age_high), age_high, color="tab:red", label="max in bin" if width > 1 else None)
        bottom.set_ylabel(f"oldest message age ({'h' if use_hours else 'min'})")
        _y_from_zero(bottom, age_high)
        bottom.set_xlabel("hour" if hours else "minute")
    axes[0][0].set_ylabel("messages")
    fig.suptitle(f"Same workload: {result.workload['label']}", fontsize=11)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=90)
    plt.close(fig)
    return dest
