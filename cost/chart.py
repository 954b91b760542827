"""Monthly cost against daily volume for both consumer paths, as a PNG (matplotlib, Agg backend).

The fleet's points where the group's maximum cannot keep up are drawn hollow and labelled with the jobs a day it
leaves unstarted; the workload asked about is marked on both curves.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cost.model import PATHS, Deployed, Workload, estimate_monthly_cost

VOLUMES = (1, 3, 10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)


def write_chart(dest: Path, deployed: Deployed, asked: Workload) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for path in PATHS:
        points = [estimate_monthly_cost(replace(asked, videos_per_day=v, path=path), deployed) for v in VOLUMES]
        line = ax.plot(VOLUMES, [p.total for p in points], marker="o", label=path)[0]
        unmet = [(v, p) for v, p in zip(VOLUMES, points, strict=True) if p.unmet_jobs_per_day]
        if unmet:
            ax.scatter(
                [v for v, _ in unmet],
                [p.total for _, p in unmet],
                s=120,
                facecolors="white",
                edgecolors=line.get_color(),
                zorder=3,
                label=f"{path}: capped, backlog grows",
            )
            for v, p in unmet:
                ax.annotate(
                    f"{p.unmet_jobs_per_day:,}/day unmet",
                    (v, p.total),
                    textcoords="offset points",
                    xytext=(-40, 8),
                    fontsize=7,
                )
        mark = estimate_monthly_cost(replace(asked, path=path), deployed)
        ax.scatter([asked.videos_per_day], [mark.total], marker="*", s=250, color=line.get_color(), zorder=4)
        ax.annotate(
            f"{path}: ${mark.total:,.0f}",
            (asked.videos_per_day, mark.total),
            textcoords="offset points",
            xytext=(8, -12),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("videos per day")
    ax.set_ylabel("USD per month")
    fleet = deployed.fleet
    ax.set_title(
        f"Monthly cost, {asked.average_size_mb:g} MB / {asked.average_duration_seconds:g} s videos "
        f"(* = {asked.videos_per_day:g}/day)\n"
        f"Lambda: preview; fleet: transcode, max {fleet.max_size} x {fleet.instance_type}"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return dest
