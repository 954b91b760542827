"""How busy a worker keeps its instance: jobs at once and ffmpeg threads per job, from the vCPUs and the profile.

One rule, here, for the worker (its defaults when ``--concurrency`` / ``WORKER_FFMPEG_THREADS`` are not given) and
for the fleet stack (which writes the result into the instances' environment, so the scaling simulator and the cost
model read the same figure from the template). The limit on ``--concurrency`` and on the stack's
``worker_concurrency`` is ``sqs_decoupling.contracts.worker.MAX_CONCURRENCY``, for both. Standard library only.

The rule:

- a profile that encodes (a rendition ladder, e.g. ``transcode``) is CPU-bound: **one job per vCPU**. More jobs
  would not fit the memory of the smallest supported types: a C-family instance has 2 GiB per vCPU and an encoding
  job's ffmpeg may take up to 1.5 GiB (``MediaLimits.ffmpeg_memory_bytes``). ``bench/busy_bench.py`` measures the
  worker at this setting against every bare-ffmpeg configuration (``bench/results/busy.json``; on the shared
  2-vCPU machine its rounds disagreed too much for a verdict);
- a profile that only probes and takes a thumbnail (e.g. ``preview``) decodes a few frames per job, so its jobs
  spend more of their time on S3 and process start-up: **two jobs per vCPU**;
- either way, no more jobs than 90 % of the memory holds at the ffmpeg memory ceiling each (the rest is the
  worker's and the OS'): 2 on a c7g.large (4 GiB, 1.5 GiB per ffmpeg), whatever the profile;
- ffmpeg threads per job = ``vCPUs // jobs`` (at least 1), counted on the machine the worker runs on: jobs are
  capped at :data:`MAX_CONCURRENCY`, so an instance with more vCPUs gives each job more threads (a c7g.16xlarge,
  64 vCPUs, runs 32 transcode jobs of 2 threads), and so does an instance larger than the one the jobs were
  sized for (a group that mixes sizes, see ``sqs_decoupling.stacks.worker_fleet_stack``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from sqs_decoupling.contracts.worker import MAX_CONCURRENCY

JOBS_PER_VCPU_ENCODING: Final = 1
JOBS_PER_VCPU_NOT_ENCODING: Final = 2
MEMORY_SHARE_FOR_JOBS: Final = 0.9


@dataclass(frozen=True)
class BusySetting:
    """Jobs a worker runs at once and threads each job's ffmpeg uses."""

    concurrency: int
    ffmpeg_threads: int


def default_concurrency(
    vcpus: int, *, encodes: bool, memory_bytes: int | None = None, ffmpeg_memory_bytes: int | None = None
) -> int:
    """Jobs at once for ``vcpus`` vCPUs and a profile that ``encodes`` (or only probes and takes a thumbnail), no
    more than ``memory_bytes`` holds at ``ffmpeg_memory_bytes`` each (either None: no memory cap)."""
    if vcpus < 1:
        raise ValueError(f"vcpus must be at least 1, got {vcpus}")
    per_vcpu = JOBS_PER_VCPU_ENCODING if encodes else JOBS_PER_VCPU_NOT_ENCODING
    jobs = min(MAX_CONCURRENCY, vcpus * per_vcpu)
    if memory_bytes and ffmpeg_memory_bytes:
        jobs = min(jobs, max(1, int(memory_bytes * MEMORY_SHARE_FOR_JOBS) // ffmpeg_memory_bytes))
    return jobs


def ffmpeg_threads(vcpus: int, concurrency: int) -> int:
    """Threads each of ``concurrency`` jobs' ffmpeg gets on ``vcpus`` vCPUs (at least 1)."""
    return max(1, vcpus // max(1, concurrency))


def busy_setting(
    vcpus: int,
    *,
    encodes: bool,
    concurrency: int | None = None,
    memory_bytes: int | None = None,
    ffmpeg_memory_bytes: int | None = None,
) -> BusySetting:
    """The rule above for ``vcpus`` vCPUs (and ``memory_bytes`` at ``ffmpeg_memory_bytes`` per job) and a profile
    that ``encodes`` (or not); a given ``concurrency`` is kept and only the threads follow from it."""
    jobs = (
        concurrency
        if concurrency is not None
        else default_concurrency(
            vcpus, encodes=encodes, memory_bytes=memory_bytes, ffmpeg_memory_bytes=ffmpeg_memory_bytes
        )
    )
    return BusySetting(concurrency=jobs, ffmpeg_threads=ffmpeg_threads(vcpus, jobs))


def machine_memory_bytes() -> int | None:
    """This machine's physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def machine_vcpus() -> int:
    """The vCPUs this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity call
        return os.cpu_count() or 1
