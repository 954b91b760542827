"""WorkerFleetStack: the seed's "SQS with ASG".

Jobs arrive on an encrypted queue (from S3 uploads, or from producers calling SendMessage); EC2 workers in an
Auto Scaling group drain it, and the group grows and shrinks with the queue's depth, down to zero.

    uploads bucket --ObjectCreated--> transcode-jobs queue (KMS, DLQ) <-- SendMessage(Batch) producers
    CloudWatch alarms on ApproximateNumberOfMessagesVisible --> step scaling --> Auto Scaling group (0..N)
    workers: receive <= 10, transcode with ffmpeg --> processed bucket, DeleteMessageBatch
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import Aspects, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from stacks.constructs.alarm_email import AlarmEmailSubscription
from stacks.constructs.buckets import access_logs_bucket, data_bucket
from stacks.constructs.client_side_key import ClientSideEncryptionKey
from stacks.constructs.encrypted_queue import EncryptedQueue
from stacks.constructs.fleet_network import FleetNetwork, worker_aws_services
from stacks.constructs.log_groups import EncryptedLogGroups
from stacks.constructs.python_bundling import PythonBundle
from stacks.constructs.queue_depth_scaling import backlog_target_tracking, step_scaling
from stacks.constructs.ranges import ConfigError, check_choice, check_setting
from stacks.constructs.upload_intake import UploadIntake
from stacks.constructs.video_job_access import grant_video_job_access
from stacks.constructs.worker_fleet import (
    LIFECYCLE_HOOK_NAME,
    MAX_INSTANCES,
    QueueWorkerFleet,
    architecture_of,
    worker_log_group_name,
)
from stacks.constructs.worker_user_data import WorkerService
from stacks.stack_settings import IntakeSettings
from video_processing import telemetry
from video_processing.limits import DEFAULT_LIMITS, DEFAULT_MAX_VIDEO_BYTES, MIB, limits_environment
from video_processing.profiles import PROFILES
from worker import config as worker_config
from worker.config import DEFAULT_CONCURRENCY
from worker.sqs_limits import MAX_VISIBILITY_TIMEOUT_SECONDS

WORKER_PYTHON = "3.11"  # a dnf package on Amazon Linux 2023 (its system python3 is 3.9)
WORKER_SERVICE = WorkerService(
    name=telemetry.WORKER_SERVICE_NAME,
    command=(f"/usr/bin/python{WORKER_PYTHON}", "-m", "worker"),
    packages=(f"python{WORKER_PYTHON}",),
    log_file=telemetry.WORKER_LOG_FILE,
    # The static ffmpeg inside the imageio-ffmpeg wheel.
    executables=("imageio_ffmpeg/binaries/*",),
)
DRAIN_TIMEOUT = Duration.minutes(10)

NetworkMode = Literal["isolated", "public"]
ScalingMode = Literal["step", "backlog"]
# family.size, e.g. c7g.large, m7i-flex.2xlarge, c7gn.metal
EC2_INSTANCE_TYPE = re.compile(
    r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$"
)
# SQS hands out at most 10 messages per receive; a worker runs at most that many jobs at once here.
MAX_WORKER_CONCURRENCY = 10
MIN_VISIBILITY_SECONDS, MAX_VISIBILITY_SECONDS = 30, MAX_VISIBILITY_TIMEOUT_SECONDS


@dataclass(frozen=True, kw_only=True)
class WorkerFleetSettings(IntakeSettings):
    """WorkerFleetStack's settings: those of an intake stack plus the fleet's. Defaults: ``network_mode``
    "isolated" (or "public"), ``worker_instance_type`` "c7g.large", ``worker_max_instances`` 4 (1..100),
    ``worker_visibility_timeout_seconds`` 300 (30..43,200), ``worker_concurrency`` 2 (1..10), ``max_video_mb`` 200,
    ``scaling_mode`` "step" (or "backlog"); step scaling adds ``scale_out_adjustments`` (1, 2, 4) instances at
    ``scale_out_thresholds`` (1, 20, 100) visible messages and goes to zero after ``scale_in_empty_minutes`` (10,
    2..60) idle minutes; backlog tracking keeps ``acceptable_latency_seconds`` (600) / ``seconds_per_job`` (60)
    messages per instance."""

    network_mode: NetworkMode = "isolated"
    worker_instance_type: str = "c7g.large"
    worker_max_instances: int = 4
    worker_visibility_timeout_seconds: int = 300
    worker_concurrency: int = DEFAULT_CONCURRENCY
    max_video_mb: int = DEFAULT_MAX_VIDEO_BYTES // MIB
    scaling_mode: ScalingMode = "step"
    scale_out_thresholds: tuple[int, ...] = (1, 20, 100)
    scale_out_adjustments: tuple[int, ...] = (1, 2, 4)
    scale_in_empty_minutes: int = 10
    acceptable_latency_seconds: int = 600
    seconds_per_job: int = 60
    # The video profile each worker job makes (video_processing.profiles), "transcode" by default.
    worker_profile: str = worker_config.DEFAULT_PROFILE

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("network_mode", self.network_mode, ("isolated", "public"))
        check_choice("worker_profile", self.worker_profile, tuple(PROFILES))
        check_instance_type(self.worker_instance_type)
        check_setting("worker_max_instances", self.worker_max_instances, 1, MAX_INSTANCES)
        check_setting(
            "worker_visibility_timeout_seconds",
            self.worker_visibility_timeout_seconds,
            MIN_VISIBILITY_SECONDS,
            MAX_VISIBILITY_SECONDS,
            " seconds",
        )
        check_setting("worker_concurrency", self.worker_concurrency, 1, MAX_WORKER_CONCURRENCY)
        check_setting("max_video_mb", self.max_video_mb, 1, 10_000, " MB")
        check_choice("scaling_mode", self.scaling_mode, ("step", "backlog"))
        self._check_steps()
        check_setting("scale_in_empty_minutes", self.scale_in_empty_minutes, 2, 60, " minutes")
        check_setting("acceptable_latency_seconds", self.acceptable_latency_seconds, 60, 86_400, " seconds")
        check_setting("seconds_per_job", self.seconds_per_job, 1, MAX_VISIBILITY_SECONDS, " seconds")

    def _check_steps(self) -> None:
        thresholds, adjustments = self.scale_out_thresholds, self.scale_out_adjustments
        if not thresholds or len(thresholds) != len(adjustments):
            raise ConfigError(
                "Configuration keys 'scale_out_thresholds' and 'scale_out_adjustments' must be non-empty lists "
                f"of the same length; got {list(thresholds)} and {list(adjustments)}."
            )
        if list(thresholds) != sorted(set(thresholds)) or thresholds[0] < 1:
            raise ConfigError(
                f"Configuration key 'scale_out_thresholds' = {list(thresholds)} must be strictly "
                "increasing message counts, the first at least 1."
            )
        for adjustment in adjustments:
            check_setting("scale_out_adjustments", adjustment, 1, self.worker_max_instances, " instances")

    @property
    def backlog_target_per_instance(self) -> int:
        """Messages one instance may have waiting and still meet the latency goal."""
        return max(1, self.acceptable_latency_seconds // self.seconds_per_job)


def check_instance_type(value: str) -> None:
    """Fail unless ``value`` is an EC2 instance type the worker can run on (Amazon Linux 2023, arm64 or x86_64)."""
    if not EC2_INSTANCE_TYPE.match(value):
        raise ConfigError(
            f"Configuration key 'worker_instance_type' = {value!r} is not an EC2 instance type: use family.size, "
            "e.g. 'c7g.large' (Graviton, arm64) or 'c7i.large' (x86_64)."
        )
    if value.startswith("mac"):
        raise ConfigError(
            f"Configuration key 'worker_instance_type' = {value!r} runs macOS only; the worker runs on Amazon Linux "
            "2023: choose an arm64 (Graviton, e.g. 'c7g.large') or x86_64 (e.g. 'c7i.large') type."
        )
    try:
        ec2.InstanceType(value).architecture  # noqa: B018 -- what the worker asset is built for
    except Exception as err:  # jsii raises plain errors for types CDK cannot classify
        raise ConfigError(
            f"Configuration key 'worker_instance_type' = {value!r}: CDK cannot tell its architecture ({err}); "
            "choose a current arm64 (e.g. 'c7g.large') or x86_64 (e.g. 'c7i.large') type."
        ) from err


class WorkerFleetStack(Stack):
    """S3 uploads and SendMessage producers -> encrypted SQS -> EC2 Auto Scaling group of workers -> S3.
    ``settings``: default ``WorkerFleetSettings()``; ``existing_vpc``: a VPC to use instead of a new one; other
    keyword arguments go to ``Stack`` (e.g. ``env``).

    ``__init__`` is longer than 60 lines on purpose: it reads top to bottom as the list of the stack's building
    blocks being wired together (the house style for a stack module)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: WorkerFleetSettings | None = None,
        existing_vpc: ec2.IVpc | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = settings or WorkerFleetSettings()
        # Every log group explicit, encrypted and kept log_retention_days, CDK's handler functions' included.
        Aspects.of(self).add(EncryptedLogGroups(retention_days=config.log_retention_days))
        access_logs = access_logs_bucket(self, "AccessLogs")
        self.jobs = EncryptedQueue(
            self,
            "TranscodeJobs",
            visibility_timeout=Duration.seconds(config.worker_visibility_timeout_seconds),
            **config.queue.props(),
        )
        if config.alarm_email:
            AlarmEmailSubscription(
                self, "AlarmEmail", topic=self.jobs.alarm_topic, key=self.jobs.key, address=config.alarm_email
            )
        self.intake = UploadIntake(
            self, "Uploads", jobs=self.jobs, access_logs=access_logs, prefix=config.upload_prefix
        )
        self.processed = data_bucket(self, "ProcessedBucket", encryption_key=self.jobs.key, access_logs=access_logs)
        self.network = FleetNetwork(
            self,
            "Network",
            mode=config.network_mode,
            flow_logs_bucket=access_logs,
            existing_vpc=existing_vpc,
            services=worker_aws_services(client_side_encryption=config.client_side_encryption),
            log_retention_days=config.log_retention_days,
        )
        self.body_key = (
            ClientSideEncryptionKey(self, "BodyKey", queue_name=self.jobs.queue_name)
            if config.client_side_encryption
            else None
        )
        instance_type = ec2.InstanceType(config.worker_instance_type)
        self.fleet = QueueWorkerFleet(
            self,
            "Workers",
            jobs=self.jobs,
            network=self.network,
            bundle=worker_bundle(architecture_of(instance_type)),
            service=WORKER_SERVICE,
            environment=self._worker_environment(config),
            instance_type=instance_type,
            notifications_topic=self.jobs.alarm_topic,
            notifications_key=self.jobs.key,
            emf_endpoint=telemetry.CLOUDWATCH_AGENT_EMF_ENDPOINT,
            log_retention_days=config.log_retention_days,
            max_instances=config.worker_max_instances,
            drain_timeout=DRAIN_TIMEOUT,
        )
        # What the video jobs need: read uploads, write outputs (and open encrypted bodies).
        grant_video_job_access(
            self.fleet.role, intake=self.intake, processed=self.processed, processed_key=self.jobs.key
        )
        if self.body_key is not None:
            self.body_key.grant_decrypt(self.fleet.role)
        if config.scaling_mode == "step":
            step_scaling(
                self.fleet.group,
                self.jobs.queue,
                thresholds=config.scale_out_thresholds,
                adjustments=config.scale_out_adjustments,
                empty_minutes=config.scale_in_empty_minutes,
            )
        else:
            backlog_target_tracking(
                self.fleet.group, self.jobs.queue, backlog_per_instance=config.backlog_target_per_instance
            )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            widgets=[self.jobs.dashboard_widgets(), self._fleet_widgets(config), worker_job_widgets()],
        )

        for name, value in {
            "UploadsBucketName": self.intake.bucket.bucket_name,
            "ProcessedBucketName": self.processed.bucket_name,
            "QueueUrl": self.jobs.queue.queue_url,
            "DeadLetterQueueUrl": self.jobs.dead_letter_queue.queue_url,
            "AutoScalingGroupName": self.fleet.group.auto_scaling_group_name,
            "LaunchTemplateId": self.fleet.launch_template.launch_template_id or "",
        }.items():
            CfnOutput(self, name, value=value)

    def _worker_environment(self, config: WorkerFleetSettings) -> dict[str, str]:
        """The worker's settings (worker/config.py's contract) as the environment of its systemd service."""
        environment = {
            worker_config.QUEUE_URL_ENV: self.jobs.queue.queue_url,
            worker_config.OUTPUT_BUCKET_ENV: self.processed.bucket_name,
            worker_config.CONCURRENCY_ENV: str(config.worker_concurrency),
            worker_config.VISIBILITY_TIMEOUT_ENV: str(int(self.jobs.visibility_timeout.to_seconds())),
            worker_config.MAX_BYTES_ENV: str(config.max_video_mb * MIB),
            worker_config.DRAIN_SECONDS_ENV: str(int(DRAIN_TIMEOUT.to_seconds())),
            worker_config.LIFECYCLE_HOOK_ENV: LIFECYCLE_HOOK_NAME,
            worker_config.PROFILE_ENV: config.worker_profile,
            **limits_environment(DEFAULT_LIMITS, worker_config.ENV_PREFIX),
            # ffmpeg's scratch files: /tmp on Amazon Linux 2023 is a small RAM-backed tmpfs, /var/tmp is on disk.
            "TMPDIR": "/var/tmp",  # noqa: S108
            telemetry.WORKER_METRICS_ENDPOINT_ENV: telemetry.CLOUDWATCH_AGENT_EMF_ENDPOINT,
            telemetry.WORKER_METRICS_LOG_GROUP_ENV: worker_log_group_name(self, WORKER_SERVICE),
        }
        if self.body_key is not None:
            environment[worker_config.BODY_KEY_ARN_ENV] = self.body_key.key.key_arn
        return environment

    def _fleet_widgets(self, config: WorkerFleetSettings) -> list[cloudwatch.IWidget]:
        """Desired and in-service instances next to the backlog, with the scale-out thresholds drawn in."""

        def group_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/AutoScaling",
                metric_name=name,
                dimensions_map={"AutoScalingGroupName": self.fleet.group.auto_scaling_group_name},
                period=Duration.minutes(1),
                statistic="Maximum",
            )

        thresholds = (
            [
                cloudwatch.HorizontalAnnotation(value=threshold, label=f"+{adjustment} instance(s)")
                for threshold, adjustment in zip(config.scale_out_thresholds, config.scale_out_adjustments, strict=True)
            ]
            if config.scaling_mode == "step"
            else [
                cloudwatch.HorizontalAnnotation(
                    value=config.backlog_target_per_instance, label="target backlog per instance"
                )
            ]
        )
        return [
            cloudwatch.GraphWidget(
                title="Instances: desired and in service",
                left=[group_metric("GroupDesiredCapacity"), group_metric("GroupInServiceInstances")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=config.worker_max_instances, label="maximum")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Backlog against the scaling thresholds",
                left=[
                    self.jobs.queue.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(1), statistic="Maximum"
                    )
                ],
                left_annotations=thresholds,
                width=12,
            ),
        ]


def worker_bundle(architecture: str) -> PythonBundle:
    """The worker asset: the worker and the libraries it uses plus Linux wheels for its Python."""
    return PythonBundle(
        sources=(
            ("worker", "worker"),
            ("video_processing", "video_processing"),
            ("clientside", "clientside"),
            ("awsregion", "awsregion"),
        ),
        requirements="worker/requirements.txt",
        architecture=architecture,
        python_version=WORKER_PYTHON,
    )


def worker_job_widgets() -> list[cloudwatch.IWidget]:
    """What the workers report about their jobs (EMF, through the CloudWatch agent): done, failed by reason,
    seconds per job, jobs in flight."""
    dimensions = {telemetry.SERVICE_DIMENSION: telemetry.WORKER_SERVICE_NAME}

    def job_metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=telemetry.METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map=dimensions,
            period=Duration.minutes(1),
            statistic=statistic,
            label=label,
        )

    failed_by_reason = cloudwatch.MathExpression(
        # One line per failure reason, whichever reasons occur.
        expression=(
            f"SEARCH('{{{telemetry.METRICS_NAMESPACE},{telemetry.FAILURE_REASON_DIMENSION},"
            f'{telemetry.SERVICE_DIMENSION}}} MetricName="{telemetry.VIDEOS_FAILED}" '
            f"{telemetry.SERVICE_DIMENSION}=\"{telemetry.WORKER_SERVICE_NAME}\"', 'Sum', 60)"
        ),
        label="failed:",
        period=Duration.minutes(1),
    )
    return [
        cloudwatch.GraphWidget(
            title="Worker jobs: processed and failed (by reason) per minute",
            left=[job_metric(telemetry.VIDEOS_PROCESSED, "Sum", "processed"), failed_by_reason],
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="Worker: seconds per job",
            left=[
                job_metric(telemetry.PROCESSING_SECONDS, "p50", "p50"),
                job_metric(telemetry.PROCESSING_SECONDS, "p90", "p90"),
                job_metric(telemetry.PROCESSING_SECONDS, "Maximum", "max"),
            ],
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="Worker: jobs in flight",
            left=[job_metric(telemetry.JOBS_IN_FLIGHT, "Maximum", "most on one worker")],
            width=8,
        ),
    ]
