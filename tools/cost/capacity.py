"""Whether a consumer path keeps up with a day of arrivals: the cost model's one call into the scaling simulator.

Everything the cost model needs from ``scaling`` passes through ``simulate_day``, so a change to the simulator's
signatures is adapted here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.scaling.simulate import DEFAULT_STARTUP_SECONDS, simulate_fleet, simulate_lambda
from tools.scaling.template import Fleet, LambdaConsumer
from tools.scaling.workload import MINUTES_PER_DAY, build

# The simulated day runs on this long after the last arrival, so that the day's last jobs are not counted as unmet.
DRAIN_MINUTES = 60


@dataclass(frozen=True)
class DayOfWork:
    """One simulated day of steady arrivals on one path (plus ``DRAIN_MINUTES``)."""

    jobs_in: int
    jobs_done: int
    unmet_jobs: int  # never started by the end of the drain, or deleted by the queue's retention
    max_age_seconds: int  # the oldest message's age, at its highest
    peak: int  # instances (fleet) or concurrent batches (Lambda)
    instance_hours: float = 0.0  # fleet: instance-hours billed (starting or running)
    busy_seconds: float = 0.0  # seconds spent on jobs (Lambda: the billed duration of the invocations)
    invocations: int = 0  # Lambda

    @property
    def keeps_up(self) -> bool:
        return self.unmet_jobs == 0

    @property
    def served_share(self) -> float:
        return self.jobs_done / self.jobs_in if self.jobs_in else 1.0


def simulate_day(
    consumer: Fleet | LambdaConsumer,
    videos_per_day: float,
    job_seconds: float,
    *,
    startup_seconds: int = DEFAULT_STARTUP_SECONDS,
) -> DayOfWork:
    """A day of ``videos_per_day`` steady arrivals on ``consumer`` (the fleet, or the Lambda function).

    ``job_seconds`` is one fleet job, or one Lambda record (a batch takes records x seconds).
    """
    day = build(videos_per_day=videos_per_day, minutes=MINUTES_PER_DAY)
    horizon = MINUTES_PER_DAY + DRAIN_MINUTES
    if isinstance(consumer, Fleet):
        run, summary = simulate_fleet(
            consumer, day, job_seconds=job_seconds, startup_seconds=startup_seconds, horizon_minutes=horizon
        )
        return DayOfWork(
            jobs_in=summary["jobs_in"],
            jobs_done=summary["jobs_done"],
            unmet_jobs=summary["jobs_not_started"] + summary["jobs_expired"],
            max_age_seconds=summary["max_age_seconds"],
            peak=summary["peak_instances"],
            instance_hours=summary["instance_hours"],
            busy_seconds=run.busy_seconds,
        )
    run, summary = simulate_lambda(consumer, day, record_seconds=job_seconds, horizon_minutes=horizon)
    return DayOfWork(
        jobs_in=summary["jobs_in"],
        jobs_done=summary["jobs_done"],
        unmet_jobs=summary["jobs_not_started"] + summary["jobs_expired"],
        max_age_seconds=summary["max_age_seconds"],
        peak=summary["peak_concurrency"],
        busy_seconds=run.busy_seconds,
        invocations=summary["invocations"],
    )
