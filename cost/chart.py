"""Monthly cost against daily volume for both consumer paths, as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from cost.model import ConsumerPath, Workload, estimate_monthly_cost
from stacks.config import AppConfig

VOLUMES = (1, 3, 10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)


def write_chart(dest: Path, config: AppConfig, size_mb: float, duration_s: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    paths: tuple[ConsumerPath, ...] = ("lambda", "fleet")
    for path in paths:
        totals = [estimate_monthly_cost(Workload(v, size_mb, duration_s, path), config).total for v in VOLUMES]
        ax.plot(VOLUMES, totals, marker="o", label=f"{path}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("videos per day")
    ax.set_ylabel("USD per month")
    ax.set_title(
        f"Monthly cost, {size_mb:g} MB / {duration_s:g} s videos "
        f"(fleet: {config.network_mode}, max {config.worker_max_instances} x {config.worker_instance_type})"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return dest
