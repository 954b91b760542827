"""A queue worker for Amazon SQS that runs the same on EC2 (in an Auto Scaling group) and on premises.

Build one with :class:`QueueWorker` and any :data:`JobHandler`, or run the video worker: ``python -m
sqs_decoupling.worker_fleet.worker``.
"""

from sqs_decoupling.worker_fleet.worker.autoscaling import (
    AsgInstance,
    AsgLifecycleActions,
    ScaleInGuard,
    TerminationWatcher,
)
from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, WorkerOptions
from sqs_decoupling.worker_fleet.worker.counters import Counters, count_requests
from sqs_decoupling.worker_fleet.worker.job import JobHandler, JobOutcome, Message

__all__ = [
    "AsgInstance",
    "AsgLifecycleActions",
    "Counters",
    "JobHandler",
    "JobOutcome",
    "Message",
    "QueueWorker",
    "ScaleInGuard",
    "TerminationWatcher",
    "WorkerOptions",
    "count_requests",
]
