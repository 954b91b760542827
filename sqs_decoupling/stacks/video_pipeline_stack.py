"""VideoPipelineStack: the seed's "SQS to decouple applications".

Uploads land in S3, S3 queues a job on an encrypted SQS queue, Lambda consumers process the videos with ffmpeg
and save the results to a processed bucket. The uploader never waits for the processing, and the processing
scales (and fails, and retries) on its own.

    uploads bucket --ObjectCreated uploads/--> video-jobs queue (KMS, DLQ) --batch--> Lambda --> processed bucket
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aws_cdk import Aspects, CfnOutput, Duration, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from sqs_decoupling.common.alarm_email import AlarmEmailSubscription
from sqs_decoupling.common.log_groups import EncryptedLogGroups
from sqs_decoupling.common.python_bundling import (
    LAMBDA_LAYER_FOLDER,
    LAMBDA_RUNTIME_PROVIDES,
    PythonBundle,
    package_sources,
)
from sqs_decoupling.common.ranges import Limit, Problems, Setting
from sqs_decoupling.contracts import lambda_function, telemetry
from sqs_decoupling.contracts.lambda_function import Settings as ProcessorSettings
from sqs_decoupling.contracts.media import DEFAULT_MAX_VIDEO_BYTES, MAX_VIDEO_BYTES, MIB, MediaLimits
from sqs_decoupling.contracts.profiles import PROFILES
from sqs_decoupling.intake.buckets import access_logs_bucket, data_bucket
from sqs_decoupling.intake.upload_intake import UploadIntake
from sqs_decoupling.intake.video_job_access import grant_video_job_access
from sqs_decoupling.lambda_consumer import lambda_consumer as consumer_limits
from sqs_decoupling.lambda_consumer.lambda_consumer import (
    LambdaQueueConsumer,
    python_runtime,
    validate_consumer_props,
    visibility_timeout_for,
)
from sqs_decoupling.queue.client_side_key import ClientSideEncryptionKey
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.stacks.stack_settings import IntakeSettings

# The asset keeps the repository's layout, so the handler imports its settings module by the same name in both.
HANDLER = "sqs_decoupling.lambda_consumer.runtime.handler.lambda_handler"


LambdaArchitecture = Literal["arm64", "x86_64"]


@dataclass(frozen=True, kw_only=True)
class VideoPipelineSettings(IntakeSettings):
    """VideoPipelineStack's settings: those of an intake stack plus the function's. Defaults:
    ``lambda_architecture`` "arm64", ``lambda_timeout_seconds`` 120 (1..900), ``lambda_memory_mb`` 2048
    (128..10,240), ``lambda_batch_size`` 10 (1..10), ``lambda_batching_window_seconds`` 5 (0..300),
    ``lambda_max_concurrency`` 10 (2..1000), ``lambda_reserved_concurrency`` none (optional; at least the maximum
    concurrency, so the queue can always run what it may start: a reservation fails the deploy in an account whose
    concurrency quota cannot keep 100 unreserved, as a new account's often cannot), ``max_video_mb`` 200 MiB
    (1..10,000, the function's /tmp), ``lambda_provisioned_pollers`` off (``(MIN, MAX)`` event pollers, 2..200 and
    2..2,000: the event source's provisioned mode, which replaces ``lambda_max_concurrency``).
    """

    lambda_architecture: LambdaArchitecture = "arm64"
    lambda_timeout_seconds: int = 120
    lambda_memory_mb: int = 2048
    lambda_batch_size: int = consumer_limits.DEFAULT_BATCH_SIZE
    lambda_batching_window_seconds: int = consumer_limits.DEFAULT_BATCHING_WINDOW_SECONDS
    lambda_max_concurrency: int = consumer_limits.DEFAULT_MAX_CONCURRENCY
    # None: no reservation (the event source's maximum concurrency already caps the function).
    lambda_reserved_concurrency: int | None = None
    # (): standard mode. (MIN, MAX): provisioned mode, MIN pollers always ready (billed), scaling up to MAX.
    lambda_provisioned_pollers: tuple[int, ...] = ()
    max_video_mb: int = DEFAULT_MAX_VIDEO_BYTES // MIB
    # The video profile the function makes (sqs_decoupling.contracts.profiles): "preview" (metadata + thumbnail) fits a
    # function; "transcode" (renditions) needs the memory and time of a long job.
    lambda_profile: str = lambda_function.DEFAULT_PROFILE

    # The LambdaQueueConsumer prop each lambda_* key feeds: the construct's validator checks them.
    SETTING_KEYS: ClassVar[Mapping[str, Setting]] = {
        **IntakeSettings.SETTING_KEYS,
        "timeout": Setting("lambda_timeout_seconds", 1, " seconds"),
        "memory_size": Setting("lambda_memory_mb"),
        "batch_size": Setting("lambda_batch_size"),
        "max_batching_window": Setting("lambda_batching_window_seconds", 1, " seconds"),
        "max_concurrency": Setting("lambda_max_concurrency"),
        "reserved_concurrency": Setting("lambda_reserved_concurrency"),
        "provisioned_pollers": Setting("lambda_provisioned_pollers"),
    }

    def check(self, problems: Problems) -> None:
        super().check(problems)
        problems.choice("lambda_profile", self.lambda_profile, tuple(PROFILES))
        problems.choice("lambda_architecture", self.lambda_architecture, ("arm64", "x86_64"))
        validate_consumer_props(problems, self.consumer_props())
        max_mb = MAX_VIDEO_BYTES // MIB
        problems.check("max_video_mb", self.max_video_mb, Limit(1, max_mb, " MB"))
        if not problems.messages:  # the ceilings need a known profile and a function size in range
            self._check_profile_fits_the_timeout(problems)

    def consumer_props(self) -> dict[str, Any]:
        """These settings as LambdaQueueConsumer props (durations in seconds)."""
        return {
            "timeout": self.lambda_timeout_seconds,
            "memory_size": self.lambda_memory_mb,
            "batch_size": self.lambda_batch_size,
            "max_batching_window": self.lambda_batching_window_seconds,
            "max_concurrency": self.lambda_max_concurrency,
            "reserved_concurrency": self.lambda_reserved_concurrency,
            "provisioned_pollers": tuple(self.lambda_provisioned_pollers) or None,
        }

    def _check_profile_fits_the_timeout(self, problems: Problems) -> None:
        """A profile whose ceiling for the longest allowed video exceeds the function timeout cannot finish in
        Lambda: every such video would time out and reach the DLQ without a failure record."""
        limits = processor_limits(memory_mib=self.lambda_memory_mb, timeout_seconds=self.lambda_timeout_seconds)
        needed = PROFILES[self.lambda_profile].worst_case_seconds(limits)
        if needed > self.lambda_timeout_seconds:
            timeout = self.lambda_timeout_seconds
            fitting = [name for name, profile in PROFILES.items() if profile.worst_case_seconds(limits) <= timeout]
            problems.add(
                f"Configuration key 'lambda_profile' = {self.lambda_profile!r} may take up to {needed:,.0f} s for "
                f"the longest video the media limits allow ({limits.max_duration_seconds:,.0f} s), above "
                f"'lambda_timeout_seconds' = {timeout} s: such videos would time out and reach the DLQ. Choose a "
                f"profile that fits ({', '.join(fitting) or 'none'}) and run this one on the worker fleet "
                "(worker_profile)."
            )


def video_processor_bundle(architecture: str) -> PythonBundle:
    """The Lambda asset: sqs_decoupling/lambda_consumer/runtime/ (handler and settings), the shared libraries, and
    Linux wheels."""
    return PythonBundle(
        sources=package_sources(
            "sqs_decoupling/lambda_consumer/runtime",
            "sqs_decoupling/contracts",
            "sqs_decoupling/video",
            "sqs_decoupling/queue/envelope",
        ),
        requirements="sqs_decoupling/lambda_consumer/runtime/requirements.txt",
        architecture=architecture,
        python_version=lambda_function.PYTHON_VERSION,
        runtime_provides=LAMBDA_RUNTIME_PROVIDES,
    )


def processor_limits(*, memory_mib: int, timeout_seconds: float) -> MediaLimits:
    """The media limits of a function of this size: ffmpeg gets the memory the handler leaves and per-run time
    ceilings well inside the function timeout, so a ceiling is recorded as a failure before Lambda stops."""
    return MediaLimits(
        ffmpeg_memory_bytes=lambda_function.ffmpeg_memory_bytes(memory_mib),
        time_base_seconds=lambda_function.ffmpeg_time_base_seconds(timeout_seconds),
    )


def processor_settings_for(
    *,
    output_bucket: str,
    max_video_mb: int,
    memory_mib: int,
    timeout_seconds: float,
    profile: str,
    max_receive_count: int = lambda_function.DEFAULT_MAX_RECEIVE_COUNT,
) -> ProcessorSettings:
    """The handler's settings for a function of this size (:func:`processor_limits`) fed by a queue that
    dead-letters after ``max_receive_count`` receives."""
    return ProcessorSettings(
        output_bucket=output_bucket,
        max_video_bytes=max_video_mb * MIB,
        profile=profile,
        limits=processor_limits(memory_mib=memory_mib, timeout_seconds=timeout_seconds),
        max_receive_count=max_receive_count,
    )


class VideoPipelineStack(Stack):
    """S3 uploads -> encrypted SQS -> Lambda (Powertools, ffmpeg) -> processed S3 bucket. ``settings``: default
    ``VideoPipelineSettings()``; other keyword arguments go to ``Stack`` (e.g. ``env``)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: VideoPipelineSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = settings or VideoPipelineSettings()
        # Every log group explicit, encrypted and kept log_retention_days, CDK's handler functions' included.
        Aspects.of(self).add(EncryptedLogGroups(retention_days=config.log_retention_days))
        timeout = Duration.seconds(config.lambda_timeout_seconds)
        batching_window = Duration.seconds(config.lambda_batching_window_seconds)

        access_logs = access_logs_bucket(self, "AccessLogs")
        self.jobs = EncryptedQueue(
            self,
            "VideoJobs",
            visibility_timeout=visibility_timeout_for(timeout, batching_window),
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

        self.consumer = self._video_processor(config, timeout, batching_window)
        function = self.consumer.function
        grant_video_job_access(
            self.consumer.role, intake=self.intake, processed=self.processed, processed_key=self.jobs.key
        )

        if config.client_side_encryption:
            self.body_key = ClientSideEncryptionKey(self, "BodyKey", queue_name=self.jobs.queue_name)
            self.body_key.grant_decrypt(function)
            function.add_environment(lambda_function.BODY_KEY_ARN_ENV, self.body_key.key.key_arn)

        for alarm in self._function_alarms(function):
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.jobs.alarm_topic))

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            widgets=[
                self.jobs.dashboard_widgets(),
                self.consumer.dashboard_widgets(),
                self._processing_widgets(),
            ],
        )

        self._outputs()

    def _video_processor(
        self, config: VideoPipelineSettings, timeout: Duration, batching_window: Duration
    ) -> LambdaQueueConsumer:
        """The Lambda consumer of the jobs queue: the handler's code, its locked wheels as a layer, its settings."""
        bundle = video_processor_bundle(config.lambda_architecture)
        runtime = python_runtime(lambda_function.PYTHON_VERSION)
        architecture = (
            lambda_.Architecture.ARM_64 if config.lambda_architecture == "arm64" else lambda_.Architecture.X86_64
        )
        # The locked wheels (ffmpeg included) as a layer: a new version only when the lock changes, so a code change
        # deploys a few hundred KB instead of the whole 150-200 MB.
        self.processor_dependencies = lambda_.LayerVersion(
            self,
            "ProcessorDependencies",
            code=lambda_.Code.from_asset(bundle.source_dir, **bundle.dependencies_options(LAMBDA_LAYER_FOLDER)),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description=f"{bundle.requirements}, locked, for Python {bundle.python_version} on {bundle.architecture}",
        )
        return LambdaQueueConsumer(
            self,
            "VideoProcessor",
            jobs=self.jobs,
            code=lambda_.Code.from_asset(bundle.source_dir, **bundle.code_options()),
            layers=[self.processor_dependencies],
            handler=HANDLER,
            runtime=runtime,
            timeout=timeout,
            architecture=architecture,
            memory_size=config.lambda_memory_mb,
            # The source video, its outputs and ffmpeg's scratch files all live in /tmp.
            ephemeral_storage=Size.mebibytes(min(10_240, max(512, 3 * config.max_video_mb))),
            environment={
                **processor_settings_for(
                    output_bucket=self.processed.bucket_name,
                    max_video_mb=config.max_video_mb,
                    memory_mib=config.lambda_memory_mb,
                    timeout_seconds=config.lambda_timeout_seconds,
                    profile=config.lambda_profile,
                    max_receive_count=config.queue.max_receive_count,
                ).environment(),
                "POWERTOOLS_SERVICE_NAME": telemetry.LAMBDA_SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": telemetry.METRICS_NAMESPACE,
            },
            batch_size=config.lambda_batch_size,
            max_batching_window=batching_window,
            max_concurrency=config.lambda_max_concurrency,
            reserved_concurrency=config.lambda_reserved_concurrency,
            provisioned_pollers=(
                (config.lambda_provisioned_pollers[0], config.lambda_provisioned_pollers[1])
                if config.lambda_provisioned_pollers
                else None
            ),
            log_retention_days=config.log_retention_days,
        )

    def _outputs(self) -> None:
        """What a user needs after the deploy: the buckets, the queues, the redrive policy, the function."""
        for name, value in {
            "UploadsBucketName": self.intake.bucket.bucket_name,
            "ProcessedBucketName": self.processed.bucket_name,
            "QueueUrl": self.jobs.queue.queue_url,
            "DeadLetterQueueUrl": self.jobs.dead_letter_queue.queue_url,
            # Attach to whoever runs sqs-redrive (docs/runbook-dlq-redrive.md); nothing here is given it.
            "RedriveOperatorPolicyArn": self.jobs.redrive_operator_policy.managed_policy_arn,
            "FunctionName": self.consumer.function.function_name,
        }.items():
            CfnOutput(self, name, value=value)

    @staticmethod
    def _processing_widgets() -> list[cloudwatch.IWidget]:
        """The Powertools metrics the handler emits (``sqs_decoupling.contracts.telemetry``)."""

        def metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=telemetry.METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={telemetry.SERVICE_DIMENSION: telemetry.LAMBDA_SERVICE_NAME},
                period=Duration.minutes(1),
                statistic=statistic,
            )

        # VideosFailed carries a second dimension, the reason: one line per reason.
        failed_by_reason = cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{telemetry.METRICS_NAMESPACE},{telemetry.FAILURE_REASON_DIMENSION},"
                f'{telemetry.SERVICE_DIMENSION}}} MetricName="{telemetry.VIDEOS_FAILED}"'
                "', 'Sum', 60)"
            ),
            using_metrics={},
            label=telemetry.VIDEOS_FAILED,
            period=Duration.minutes(1),
        )
        return [
            cloudwatch.GraphWidget(
                title="Videos processed, failed (by reason), duplicates skipped",
                left=[metric(telemetry.VIDEOS_PROCESSED), failed_by_reason, metric(telemetry.DUPLICATES_SKIPPED)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Processing seconds per video",
                left=[metric(telemetry.PROCESSING_SECONDS, "Average"), metric(telemetry.PROCESSING_SECONDS, "Maximum")],
                width=12,
            ),
        ]

    def _function_alarms(self, function: lambda_.Function) -> list[cloudwatch.Alarm]:
        """Errors (a failed invocation retries a whole batch) and throttles (max concurrency or account limit)."""
        one_minute = Duration.minutes(1)
        return [
            cloudwatch.Alarm(
                self,
                "VideoProcessorErrors",
                alarm_description="The video processor failed invocations: check its logs; messages will retry.",
                metric=function.metric_errors(period=one_minute, statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "VideoProcessorThrottles",
                alarm_description="The video processor was throttled: raise its concurrency or the account limit.",
                metric=function.metric_throttles(period=one_minute, statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
