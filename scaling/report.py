"""The simulator's outputs: one summary per policy and path, a JSON file, a terminal table and a PNG."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost.prices import (
    EBS_GP3_PER_GB_MONTH,
    HOURS_PER_MONTH,
    LAMBDA_GB_SECOND,
    LAMBDA_PER_MILLION_REQUESTS,
    instance_price,
)
from scaling.simulate import Run
from scaling.template import Fleet, LambdaConsumer

ROWS = (
    ("jobs_in", "jobs in"),
    ("jobs_done", "jobs done"),
    ("jobs_not_started", "jobs not started by the end"),
    ("jobs_expired", "jobs lost to queue retention"),
    ("first_empty_minute", "queue first empty at minute"),
    ("drain_minutes", "all done at minute"),
    ("max_age_seconds", "oldest message age, max (s)"),
    ("p95_wait_seconds", "p95 wait (s)"),
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

    def to_json(self) -> dict[str, Any]:
        series = {name: {key: values for key, values in run.series.items()} for name, run in self.runs.items()}
        return {
            "workload": self.workload,
            "policies": self.policies,
            "lambda": self.lambda_path,
            "sources": self.sources,
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
        return "\n".join([f"workload: {self.workload['label']}", *lines])


def write_chart(result: Result, dest: Path) -> Path:
    """Queue depth, capacity and oldest age per minute: the two fleet policies and the Lambda path side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.runs)
    fig, axes = plt.subplots(3, len(names), figsize=(5 * len(names), 9), sharex=True, squeeze=False)
    for column, name in enumerate(names):
        run = result.runs[name]
        minutes = range(len(run.series["visible"]))
        top, middle, bottom = axes[0][column], axes[1][column], axes[2][column]
        top.plot(minutes, run.series["visible"], label="visible")
        top.plot(minutes, run.series["in_flight"], label="in flight")
        top.set_title(name)
        top.legend()
        middle.step(minutes, run.series["capacity"], where="post", color="tab:green")
        middle.set_ylabel("concurrent batches" if name.startswith("lambda") else "instances")
        bottom.plot(minutes, [a / 60 for a in run.series["oldest_age"]], color="tab:red")
        bottom.set_ylabel("oldest message age (min)")
        bottom.set_xlabel("minute")
    axes[0][0].set_ylabel("messages")
    fig.suptitle(f"Same workload: {result.workload['label']}")
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=90)
    plt.close(fig)
    return dest
