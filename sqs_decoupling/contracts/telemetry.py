"""The consumers' telemetry contract: one namespace, one set of metric names, one service name per consumer.

The runtime (Lambda handler, worker) emits these; the infrastructure imports them for the environment it sets,
the dashboards and the alarms (stacks -> runtime is allowed; runtime never imports stacks). Both consumers write
the same metric names under one namespace, told apart by the ``service`` dimension, so a dashboard can put the
Lambda path and the fleet path side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

METRICS_NAMESPACE: Final = "SqsDecoupling/VideoPipeline"
SERVICE_DIMENSION: Final = "service"
LAMBDA_SERVICE_NAME: Final = "video-processor"
WORKER_SERVICE_NAME: Final = "video-worker"

# Metric names (unit in the comment). VIDEOS_FAILED also carries a "reason" dimension (see PermanentJobError.reason).
VIDEOS_PROCESSED: Final = "VideosProcessed"  # Count
VIDEOS_FAILED: Final = "VideosFailed"  # Count, dimension reason
DUPLICATES_SKIPPED: Final = "DuplicatesSkipped"  # Count
INPUTS_IGNORED: Final = "InputsIgnored"  # Count: s3:TestEvent, folder placeholders
PROCESSING_SECONDS: Final = "ProcessingSeconds"  # Seconds per video
JOBS_IN_FLIGHT: Final = "JobsInFlight"  # Count, worker only: jobs running on one worker at the time of emission
FAILURE_REASON_DIMENSION: Final = "reason"
TRANSIENT_FAILURES: Final = "TransientFailures"  # Count, dimension error_type: retried, DLQ after maxReceiveCount
ERROR_TYPE_DIMENSION: Final = "error_type"  # an AWS error code (SlowDown, NoSuchBucket) or an exception class name

# The worker on EC2: its JSON log lines go to this file (systemd StandardOutput=append:), which the CloudWatch
# agent ships to the fleet's log group; its EMF metric documents go to the agent's EMF listener.
WORKER_LOG_FILE: Final = "/var/log/video-worker/worker.log"
WORKER_METRICS_ENDPOINT_ENV: Final = "WORKER_METRICS_ENDPOINT"  # e.g. udp://127.0.0.1:25888; unset = no metrics
CLOUDWATCH_AGENT_EMF_ENDPOINT: Final = "udp://127.0.0.1:25888"


@dataclass(frozen=True)
class MetricPoint:
    """One value to emit: a name above, its unit, and dimensions on top of the consumer's ``service``."""

    name: str
    unit: Literal["Count", "Seconds"]
    value: float
    dimensions: dict[str, str] = field(default_factory=dict)


# The log group the worker's EMF documents name (`_aws.LogGroupName`): the CloudWatch agent sends them there, and
# otherwise to "emf/logs/default", which the instances may not create. The fleet sets it to its own log group.
WORKER_METRICS_LOG_GROUP_ENV: Final = "WORKER_METRICS_LOG_GROUP"
