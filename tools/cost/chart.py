"""Monthly cost against daily volume for both consumer paths, as a PNG (matplotlib, Agg backend).

Volumes run from 1 to 1,000,000 videos a day. Points where a path does not keep up are drawn hollow (priced for the
work it does); the workload asked about is a star. The totals and where each path falls behind are one text box
inside the axes, so nothing is clipped or drawn over a curve at either end of the volume range.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tools.cost.model import PATHS, CostBreakdown, Deployed, Measured, estimate_monthly_cost

VOLUMES = (1, 3, 10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
COLOURS = {"lambda": "tab:orange", "fleet": "tab:blue"}


def write_chart(dest: Path, deployed: Deployed, asked: list[CostBreakdown], measured: Measured) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    first = asked[0].workload
    # "\\$": a bare $ starts matplotlib's mathtext.
    summary = [
        f"* {first.videos_per_day:,.9g}/day, {b.workload.path}: \\${b.total:,.0f}/month "
        f"({'keeps up' if b.keeps_up else 'falls behind'})"
        for b in asked
    ]
    lowest = float("inf")
    for path in PATHS:
        colour = COLOURS[path]
        points = [
            estimate_monthly_cost(replace(first, videos_per_day=v, path=path), deployed, measured=measured)
            for v in VOLUMES
        ]
        lowest = min(lowest, *(p.total for p in points))
        ax.plot(VOLUMES, [p.total for p in points], color=colour, marker="o", label=f"{path}: keeps up")
        short = [(v, p) for v, p in zip(VOLUMES, points, strict=True) if not p.keeps_up]
        if short:
            ax.scatter(
                [v for v, _ in short],
                [p.total for _, p in short],
                s=110,
                facecolors="white",
                edgecolors=colour,
                linewidths=2,
                zorder=3,
                label=f"{path}: does not keep up (priced for the work done)",
            )
            v, p = short[0]
            undone = p.capacity.unmet_jobs / max(1, p.capacity.jobs_in)
            summary.append(f"{path} falls behind from {v:,}/day ({undone:.0%} of the jobs undone)")
        else:
            summary.append(f"{path} keeps up at every volume shown")
    for mark in asked:
        colour = COLOURS[mark.workload.path]
        ax.scatter([first.videos_per_day], [mark.total], marker="*", s=260, color=colour, edgecolors="black", zorder=4)
    # Inside the axes, bottom right (the curves rise to the right, so that corner is empty): never clipped.
    ax.text(
        0.98,
        0.03,
        "\n".join(summary),
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8.5,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "edgecolor": "0.7"},
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.5, 2_000_000)
    ax.set_ylim(bottom=lowest / 40)  # room for the text box below the curves
    ax.set_xlabel("videos per day")
    ax.set_ylabel("USD per month (log scale)")
    fleet = deployed.fleet
    ax.set_title(
        f"Monthly cost, {first.average_size_mb:g} MB / {first.average_duration_seconds:g} s videos "
        f"(* = {first.videos_per_day:,.9g}/day)\n"
        f"Lambda: preview, max concurrency {deployed.consumer.max_concurrency or 'unset'}; "
        f"fleet: transcode, max {fleet.max_size} x {fleet.instance_type}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return dest
