"""WorkerFleetStack: the seed's "SQS with ASG".

Jobs arrive on an encrypted queue (from S3 uploads, or from producers calling SendMessage); EC2 workers in an
Auto Scaling group drain it, and the group grows and shrinks with the queue's depth, down to zero.

    uploads bucket --ObjectCreated--> transcode-jobs queue (KMS, DLQ) <-- SendMessage(Batch) producers
    CloudWatch alarms on ApproximateNumberOfMessagesVisible --> step scaling --> Auto Scaling group (0..N)
    workers: receive <= 10, transcode with ffmpeg --> processed bucket, DeleteMessageBatch
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aws_cdk import Aspects, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from sqs_decoupling.common.alarm_email import AlarmEmailSubscription
from sqs_decoupling.common.log_groups import EncryptedLogGroups
from sqs_decoupling.common.python_bundling import PythonBundle, package_sources
from sqs_decoupling.common.ranges import Limit, Problems, Setting
from sqs_decoupling.contracts import telemetry, worker_sizing
from sqs_decoupling.contracts import worker as worker_contract
from sqs_decoupling.contracts.instance_types import UnsupportedInstanceType, lookup
from sqs_decoupling.contracts.media import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_VIDEO_BYTES,
    LIMIT_VARIABLES,
    MAX_VIDEO_BYTES,
    MIB,
    limits_environment,
)
from sqs_decoupling.contracts.profiles import PROFILES
from sqs_decoupling.contracts.sqs import MAX_VISIBILITY_TIMEOUT_SECONDS
from sqs_decoupling.intake.buckets import access_logs_bucket, data_bucket
from sqs_decoupling.intake.upload_intake import UploadIntake
from sqs_decoupling.intake.video_job_access import grant_video_job_access
from sqs_decoupling.queue.client_side_key import ClientSideEncryptionKey
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.stacks.stack_settings import IntakeSettings
from sqs_decoupling.worker_fleet.fleet_network import FleetNetwork, worker_aws_services
from sqs_decoupling.worker_fleet.queue_depth_scaling import backlog_target_tracking, step_scaling
from sqs_decoupling.worker_fleet.warm_pool import LAUNCH_HOOK_NAME, add_warm_pool
from sqs_decoupling.worker_fleet.worker_fleet import (
    FLEET_LIMITS,
    LIFECYCLE_HOOK_NAME,
    InstanceMix,
    QueueWorkerFleet,
    validate_fleet_props,
    worker_log_group_name,
)
from sqs_decoupling.worker_fleet.worker_user_data import WorkerService

WORKER_PYTHON = "3.11"  # a dnf package on Amazon Linux 2023 (its system python3 is 3.9)
WORKER_SERVICE = WorkerService(
    name=telemetry.WORKER_SERVICE_NAME,
    command=(f"/usr/bin/python{WORKER_PYTHON}", "-m", "sqs_decoupling.worker_fleet.worker"),
    packages=(f"python{WORKER_PYTHON}",),
    log_file=telemetry.WORKER_LOG_FILE,
    # The static ffmpeg inside the imageio-ffmpeg wheel.
    executables=("imageio_ffmpeg/binaries/*",),
)
DRAIN_TIMEOUT = Duration.minutes(10)

NetworkMode = Literal["isolated", "public"]
ScalingMode = Literal["step", "backlog"]
# Each worker sizes its ffmpeg threads from its own instance's vCPUs (sqs_decoupling.contracts.worker_sizing), so a
# larger type of a mixed group puts its extra vCPUs to use; the stack does not pin them.
_THREADS_VARIABLE = worker_contract.ENV_PREFIX + LIMIT_VARIABLES["ffmpeg_threads"]
MIN_VISIBILITY_SECONDS = 30


@dataclass(frozen=True, kw_only=True)
class WorkerFleetSettings(IntakeSettings):
    """WorkerFleetStack's settings: those of an intake stack plus the fleet's. Defaults: ``network_mode``
    "isolated" (or "public"), ``worker_instance_type`` "c7g.large", ``worker_max_instances`` 4 (1..100),
    ``worker_visibility_timeout_seconds`` 300 (30..43,200), ``worker_concurrency`` None (from the vCPUs and the
    profile, ``sqs_decoupling.contracts.worker_sizing``; 1..32), ``max_video_mb`` 200,
    ``scaling_mode`` "step" (or "backlog"); step scaling adds ``scale_out_adjustments`` (1, 2, 4) instances at
    ``scale_out_thresholds`` (1, 20, 100) visible messages and goes to zero after ``scale_in_empty_minutes`` (10,
    2..60) idle minutes; backlog tracking keeps ``acceptable_latency_seconds`` (600) / ``seconds_per_job`` (60)
    messages per instance. ``worker_warm_pool_min`` (0, 0..``worker_max_instances``) stopped, pre-initialized
    instances wait in a warm pool (0: no pool). Spot: ``worker_spot_percentage`` 0 (0..100: the share of Spot
    instances above ``worker_on_demand_base_capacity``, 0) over ``worker_instance_types`` (none:
    ``worker_instance_type`` alone)."""

    network_mode: NetworkMode = "isolated"
    worker_instance_type: str = "c7g.large"
    worker_max_instances: int = 4
    worker_visibility_timeout_seconds: int = 300
    worker_concurrency: int | None = None
    # Spot and several instance types (a mixed instances policy when either is set)
    worker_instance_types: tuple[str, ...] = ()
    worker_spot_percentage: int = 0
    worker_on_demand_base_capacity: int = 0
    max_video_mb: int = DEFAULT_MAX_VIDEO_BYTES // MIB
    scaling_mode: ScalingMode = "step"
    scale_out_thresholds: tuple[int, ...] = (1, 20, 100)
    scale_out_adjustments: tuple[int, ...] = (1, 2, 4)
    scale_in_empty_minutes: int = 10
    acceptable_latency_seconds: int = 600
    seconds_per_job: int = 60
    # The video profile each worker job makes (sqs_decoupling.contracts.profiles), "transcode" by default.
    worker_profile: str = worker_contract.DEFAULT_PROFILE
    # Warm pool (sqs_decoupling/worker_fleet/warm_pool.py): stopped instances with the worker installed; 0 = no pool.
    worker_warm_pool_min: int = 0

    # The QueueWorkerFleet prop each key feeds: the construct's validator checks them.
    SETTING_KEYS: ClassVar[Mapping[str, Setting]] = {
        **IntakeSettings.SETTING_KEYS,
        "max_instances": Setting("worker_max_instances"),
        "instance_mix.spot_percentage": Setting("worker_spot_percentage"),
        "instance_mix.on_demand_base_capacity": Setting("worker_on_demand_base_capacity", 1, " instances"),
    }

    def check(self, problems: Problems) -> None:
        super().check(problems)
        problems.choice("network_mode", self.network_mode, ("isolated", "public"))
        problems.choice("worker_profile", self.worker_profile, tuple(PROFILES))
        problems.choice("scaling_mode", self.scaling_mode, ("step", "backlog"))
        validate_fleet_props(problems, self.fleet_props())
        instance_types_known = check_instance_type(problems, "worker_instance_type", self.worker_instance_type)
        if instance_types_known:
            self._check_instance_mix(problems)
        seconds = " seconds"
        problems.check(
            "worker_visibility_timeout_seconds",
            self.worker_visibility_timeout_seconds,
            Limit(MIN_VISIBILITY_SECONDS, MAX_VISIBILITY_TIMEOUT_SECONDS, seconds),
        )
        if self.worker_concurrency is not None:
            problems.check("worker_concurrency", self.worker_concurrency, Limit(1, worker_contract.MAX_CONCURRENCY))
        problems.check("max_video_mb", self.max_video_mb, Limit(1, MAX_VIDEO_BYTES // MIB, " MB"))
        self._check_steps(problems)
        problems.check("scale_in_empty_minutes", self.scale_in_empty_minutes, Limit(2, 60, " minutes"))
        problems.check("acceptable_latency_seconds", self.acceptable_latency_seconds, Limit(60, 86_400, seconds))
        problems.check("seconds_per_job", self.seconds_per_job, Limit(1, MAX_VISIBILITY_TIMEOUT_SECONDS, seconds))
        warm_pool = Limit(0, self.worker_max_instances, " instances")
        problems.check("worker_warm_pool_min", self.worker_warm_pool_min, warm_pool)

    def fleet_props(self) -> dict[str, Any]:
        """These settings as QueueWorkerFleet's sizes (``validate_fleet_props``)."""
        return {
            "max_instances": self.worker_max_instances,
            "instance_mix.spot_percentage": self.worker_spot_percentage,
            "instance_mix.on_demand_base_capacity": self.worker_on_demand_base_capacity,
        }

    def _check_steps(self, problems: Problems) -> None:
        thresholds, adjustments = self.scale_out_thresholds, self.scale_out_adjustments
        if not thresholds or len(thresholds) != len(adjustments):
            problems.add(
                "Configuration keys 'scale_out_thresholds' and 'scale_out_adjustments' must be non-empty lists "
                f"of the same length; got {list(thresholds)} and {list(adjustments)}."
            )
        elif list(thresholds) != sorted(set(thresholds)) or thresholds[0] < 1:
            problems.add(
                f"Configuration key 'scale_out_thresholds' = {list(thresholds)} must be strictly "
                "increasing message counts, the first at least 1."
            )
        if not FLEET_LIMITS["max_instances"].allows(self.worker_max_instances):
            return  # reported already; the adjustments' range follows from it
        for adjustment in adjustments:
            limit = Limit(1, self.worker_max_instances, " instances")
            problems.check("scale_out_adjustments", adjustment, limit)

    def _check_instance_mix(self, problems: Problems) -> None:
        architecture = lookup(self.worker_instance_type).architecture
        for name in self.worker_instance_types:
            if not check_instance_type(problems, "worker_instance_types", name):
                continue
            if lookup(name).architecture != architecture:
                problems.add(
                    f"Configuration key 'worker_instance_types': {name!r} is {lookup(name).architecture}, but the "
                    f"worker asset is built for {architecture} (the architecture of worker_instance_type "
                    f"{self.worker_instance_type!r}): list {architecture} types only, or set worker_instance_type "
                    "to one of the list."
                )
        if len(set(self.worker_instance_types)) != len(self.worker_instance_types):
            problems.add(
                f"Configuration key 'worker_instance_types' = {list(self.worker_instance_types)} names a type twice."
            )
        if self.worker_on_demand_base_capacity and not self.worker_spot_percentage:
            problems.add(
                f"Configuration key 'worker_on_demand_base_capacity' = {self.worker_on_demand_base_capacity} has no "
                "effect without Spot: every instance is On-Demand while worker_spot_percentage is 0; set "
                "worker_spot_percentage (1..100) or leave the base at 0."
            )
        if self.worker_warm_pool_min and self.mixed_instances:
            # EC2 Auto Scaling User Guide, "Warm pools": a warm pool cannot be added to a group with a mixed
            # instances policy or one that launches Spot Instances (PutWarmPool would fail at deploy time).
            problems.add(
                f"Configuration key 'worker_warm_pool_min' = {self.worker_warm_pool_min} cannot be combined with "
                "Spot or several instance types (worker_spot_percentage, worker_instance_types): EC2 Auto Scaling "
                "refuses a warm pool on a group with a mixed instances policy. Choose one: set "
                "worker_warm_pool_min to 0, or leave worker_spot_percentage at 0 and worker_instance_types unset."
            )

    @property
    def backlog_target_per_instance(self) -> int:
        """Messages one instance may have waiting and still meet the latency goal."""
        return max(1, self.acceptable_latency_seconds // self.seconds_per_job)

    @property
    def group_instance_types(self) -> tuple[str, ...]:
        """The types the group may launch: ``worker_instance_types``, else ``worker_instance_type`` alone."""
        return self.worker_instance_types or (self.worker_instance_type,)

    @property
    def mixed_instances(self) -> bool:
        """True when the group needs a mixed instances policy (Spot, or more than the launch template's type)."""
        return self.worker_spot_percentage > 0 or bool(self.worker_instance_types)

    @property
    def sized_vcpus(self) -> int:
        """The vCPUs the job slots are sized for: the smallest of the group's types, so that every instance the
        group launches has at least one vCPU per encoding job and each instance counts as the same job slots."""
        return min(lookup(name).vcpus for name in self.group_instance_types)

    @property
    def busy(self) -> worker_sizing.BusySetting:
        """Jobs per instance (``worker_concurrency``, else sqs_decoupling.contracts.worker_sizing's rule for
        ``sized_vcpus``, the smallest memory of the group's types and the profile) and the ffmpeg threads an
        instance of ``sized_vcpus`` gives each."""
        encodes = bool(PROFILES[self.worker_profile].ladder)
        return worker_sizing.busy_setting(
            self.sized_vcpus,
            encodes=encodes,
            concurrency=self.worker_concurrency,
            memory_bytes=min(lookup(name).memory_gib for name in self.group_instance_types) * 1024 * MIB,
            ffmpeg_memory_bytes=DEFAULT_LIMITS.ffmpeg_memory_bytes,
        )


def check_instance_type(problems: Problems, key: str, value: str) -> bool:
    """Report ``key`` unless ``value`` is in the supported catalogue (``sqs_decoupling.contracts.instance_types``),
    with the nearest supported type as a suggestion; True when it is."""
    try:
        lookup(value)
    except UnsupportedInstanceType as err:
        text = str(err)
        problems.add(f"Configuration key '{key}' = {text}{'' if text.endswith('?') else '.'}")
        return False
    return True


class WorkerFleetStack(Stack):
    """S3 uploads and SendMessage producers -> encrypted SQS -> EC2 Auto Scaling group of workers -> S3.
    ``settings``: default ``WorkerFleetSettings()``; ``existing_vpc``: a VPC to use instead of a new one; other
    keyword arguments go to ``Stack`` (e.g. ``env``)."""

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
        self._jobs_and_buckets(config, access_logs)
        self.network = FleetNetwork(
            self,
            "Network",
            mode=config.network_mode,
            flow_logs_bucket=access_logs,
            existing_vpc=existing_vpc,
            services=worker_aws_services(client_side_encryption=config.client_side_encryption),
            log_retention_days=config.log_retention_days,
        )
        self.fleet = self._workers(config)
        # Warm pool (off by default): stopped instances with the worker installed, and the launch hook the worker
        # completes once started (its permission is among the group actions the fleet grants).
        if config.worker_warm_pool_min:
            add_warm_pool(
                self.fleet.group, min_size=config.worker_warm_pool_min, max_instances=config.worker_max_instances
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
                worker_concurrency=config.busy.concurrency,
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

        self._outputs()

    def _jobs_and_buckets(self, config: WorkerFleetSettings, access_logs: s3.IBucket) -> None:
        """The jobs queue (its alarms to ``alarm_email`` when set), the uploads that feed it, the processed bucket, and
        the body key with client-side encryption."""
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
        self.body_key = (
            ClientSideEncryptionKey(self, "BodyKey", queue_name=self.jobs.queue_name)
            if config.client_side_encryption
            else None
        )

    def _workers(self, config: WorkerFleetSettings) -> QueueWorkerFleet:
        """The Auto Scaling group of workers: the worker asset for the instance type's architecture, its service,
        its environment, and Spot or several instance types when configured."""
        instance_type = ec2.InstanceType(config.worker_instance_type)
        return QueueWorkerFleet(
            self,
            "Workers",
            jobs=self.jobs,
            network=self.network,
            bundle=worker_bundle(lookup(config.worker_instance_type).architecture),
            service=WORKER_SERVICE,
            environment=self._worker_environment(config),
            instance_type=instance_type,
            notifications_topic=self.jobs.alarm_topic,
            notifications_key=self.jobs.key,
            emf_endpoint=telemetry.CLOUDWATCH_AGENT_EMF_ENDPOINT,
            log_retention_days=config.log_retention_days,
            max_instances=config.worker_max_instances,
            drain_timeout=DRAIN_TIMEOUT,
            instance_mix=InstanceMix(
                instance_types=[ec2.InstanceType(name) for name in config.group_instance_types],
                spot_percentage=config.worker_spot_percentage,
                on_demand_base_capacity=config.worker_on_demand_base_capacity,
            )
            if config.mixed_instances
            else None,
        )

    def _outputs(self) -> None:
        """What a user needs after the deploy: the buckets, the queues, the redrive policy, the group."""
        for name, value in {
            "UploadsBucketName": self.intake.bucket.bucket_name,
            "ProcessedBucketName": self.processed.bucket_name,
            "QueueUrl": self.jobs.queue.queue_url,
            "DeadLetterQueueUrl": self.jobs.dead_letter_queue.queue_url,
            # Attach to whoever runs sqs-redrive (docs/runbook-dlq-redrive.md); nothing here is given it.
            "RedriveOperatorPolicyArn": self.jobs.redrive_operator_policy.managed_policy_arn,
            "AutoScalingGroupName": self.fleet.group.auto_scaling_group_name,
            "LaunchTemplateId": self.fleet.launch_template.launch_template_id or "",
        }.items():
            CfnOutput(self, name, value=value)

    def _worker_environment(self, config: WorkerFleetSettings) -> dict[str, str]:
        """The worker's settings (sqs_decoupling/contracts/worker.py's contract) as the environment of its
        systemd service."""
        environment = {
            worker_contract.QUEUE_URL_ENV: self.jobs.queue.queue_url,
            worker_contract.OUTPUT_BUCKET_ENV: self.processed.bucket_name,
            worker_contract.CONCURRENCY_ENV: str(config.busy.concurrency),
            worker_contract.VCPUS_ENV: str(config.sized_vcpus),
            worker_contract.VISIBILITY_TIMEOUT_ENV: str(int(self.jobs.visibility_timeout.to_seconds())),
            worker_contract.MAX_VIDEO_BYTES_ENV: str(config.max_video_mb * MIB),
            worker_contract.DRAIN_SECONDS_ENV: str(int(DRAIN_TIMEOUT.to_seconds())),
            worker_contract.LIFECYCLE_HOOK_ENV: LIFECYCLE_HOOK_NAME,
            worker_contract.PROFILE_ENV: config.worker_profile,
            **{
                name: value
                for name, value in limits_environment(DEFAULT_LIMITS, worker_contract.ENV_PREFIX).items()
                if name != _THREADS_VARIABLE
            },
            # ffmpeg's scratch files: /tmp on Amazon Linux 2023 is a small RAM-backed tmpfs, /var/tmp is on disk.
            "TMPDIR": "/var/tmp",  # noqa: S108
            telemetry.WORKER_METRICS_ENDPOINT_ENV: telemetry.CLOUDWATCH_AGENT_EMF_ENDPOINT,
            telemetry.WORKER_METRICS_LOG_GROUP_ENV: worker_log_group_name(self, WORKER_SERVICE),
        }
        if self.body_key is not None:
            environment[worker_contract.BODY_KEY_ARN_ENV] = self.body_key.key.key_arn
        if config.worker_warm_pool_min:
            environment[worker_contract.LAUNCH_HOOK_ENV] = LAUNCH_HOOK_NAME
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
        sources=package_sources(
            "sqs_decoupling/worker_fleet/worker",
            "sqs_decoupling/contracts",
            "sqs_decoupling/video",
            "sqs_decoupling/queue/envelope",
            "sqs_decoupling/regions",
        ),
        requirements="sqs_decoupling/worker_fleet/worker/requirements.txt",
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
