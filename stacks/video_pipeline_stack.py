"""VideoPipelineStack: the seed's "SQS to decouple applications".

Uploads land in S3, S3 queues a job on an encrypted SQS queue, Lambda consumers process the videos with ffmpeg
and save the results to a processed bucket. The uploader never waits for the processing, and the processing
scales (and fails, and retries) on its own.

    uploads bucket --ObjectCreated uploads/--> video-jobs queue (KMS, DLQ) --batch--> Lambda --> processed bucket
"""

from __future__ import annotations

from aws_cdk import Aspects, CfnOutput, Duration, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from lambdas.video_processor import settings as processor_settings
from lambdas.video_processor.settings import Settings as ProcessorSettings
from stacks.config import AppConfig
from stacks.constructs.alarm_email import AlarmEmailSubscription
from stacks.constructs.buckets import access_logs_bucket, data_bucket
from stacks.constructs.client_side_key import ClientSideEncryptionKey
from stacks.constructs.encrypted_queue import EncryptedQueue
from stacks.constructs.lambda_consumer import LambdaQueueConsumer, python_runtime, visibility_timeout_for
from stacks.constructs.log_groups import EncryptedLogGroups
from stacks.constructs.python_bundling import PythonBundle
from stacks.constructs.upload_intake import UploadIntake
from stacks.constructs.video_job_access import grant_video_job_access
from video_processing import telemetry
from video_processing.limits import MIB, MediaLimits

METRICS_NAMESPACE = telemetry.METRICS_NAMESPACE
SERVICE_NAME = telemetry.LAMBDA_SERVICE_NAME
# The asset keeps the repository's layout, so the handler imports its settings module by the same name in both.
HANDLER = "lambdas.video_processor.handler.lambda_handler"


def video_processor_bundle(architecture: str) -> PythonBundle:
    """The Lambda asset: lambdas/video_processor/ (handler and settings), the shared libraries, Linux wheels."""
    return PythonBundle(
        sources=(
            ("lambdas/video_processor", "lambdas/video_processor"),
            ("lambdas/__init__.py", "lambdas/__init__.py"),
            ("video_processing", "video_processing"),
            ("clientside", "clientside"),
        ),
        requirements="lambdas/video_processor/requirements.txt",
        architecture=architecture,
        python_version=processor_settings.PYTHON_VERSION,
    )


def processor_settings_for(
    *, output_bucket: str, max_video_mb: int, memory_mib: int, timeout_seconds: float, profile: str
) -> ProcessorSettings:
    """The handler's settings for a function of this size: ffmpeg gets the memory the handler leaves and per-run
    time ceilings well inside the function timeout, so a ceiling is recorded as a failure before Lambda stops."""
    return ProcessorSettings(
        output_bucket=output_bucket,
        max_video_bytes=max_video_mb * MIB,
        profile=profile,
        limits=MediaLimits(
            ffmpeg_memory_bytes=processor_settings.ffmpeg_memory_bytes(memory_mib),
            time_base_seconds=processor_settings.ffmpeg_time_base_seconds(timeout_seconds),
        ),
    )


class VideoPipelineStack(Stack):
    """S3 uploads -> encrypted SQS -> Lambda (Powertools, ffmpeg) -> processed S3 bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        # Every log group explicit, encrypted and kept log_retention_days, CDK's handler functions' included.
        Aspects.of(self).add(EncryptedLogGroups(retention_days=config.log_retention_days))
        timeout = Duration.seconds(config.lambda_timeout_seconds)
        batching_window = Duration.seconds(config.lambda_batching_window_seconds)

        access_logs = access_logs_bucket(self, "AccessLogs")
        self.jobs = EncryptedQueue(
            self,
            "VideoJobs",
            visibility_timeout=visibility_timeout_for(timeout, batching_window),
            **config.encrypted_queue_props(),
        )
        if config.alarm_email:
            AlarmEmailSubscription(
                self, "AlarmEmail", topic=self.jobs.alarm_topic, key=self.jobs.key, address=config.alarm_email
            )
        self.intake = UploadIntake(
            self, "Uploads", jobs=self.jobs, access_logs=access_logs, prefix=config.upload_prefix
        )
        self.processed = data_bucket(self, "ProcessedBucket", encryption_key=self.jobs.key, access_logs=access_logs)

        bundle = video_processor_bundle(config.lambda_architecture)
        self.consumer = LambdaQueueConsumer(
            self,
            "VideoProcessor",
            jobs=self.jobs,
            code=lambda_.Code.from_asset(bundle.source_dir, **bundle.asset_options()),
            handler=HANDLER,
            runtime=python_runtime(processor_settings.PYTHON_VERSION),
            timeout=timeout,
            architecture=lambda_.Architecture.ARM_64
            if config.lambda_architecture == "arm64"
            else lambda_.Architecture.X86_64,
            memory_size=config.lambda_memory_mb,
            # The source video, its outputs and ffmpeg's scratch files all live in /tmp.
            ephemeral_storage=Size.mebibytes(min(10_240, max(512, 3 * config.max_video_mb))),
            environment={
                **processor_settings_for(
                    output_bucket=self.processed.bucket_name,
                    max_video_mb=config.max_video_mb,
                    memory_mib=config.lambda_memory_mb,
                    timeout_seconds=config.lambda_timeout_seconds,
                    profile=processor_settings.DEFAULT_PROFILE,
                ).environment(),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            batch_size=config.lambda_batch_size,
            max_batching_window=batching_window,
            max_concurrency=config.lambda_max_concurrency,
            reserved_concurrency=config.lambda_reserved_concurrency,
            log_retention_days=config.log_retention_days,
        )
        function = self.consumer.function
        grant_video_job_access(
            self.consumer.role, intake=self.intake, processed=self.processed, processed_key=self.jobs.key
        )

        if config.client_side_encryption:
            self.body_key = ClientSideEncryptionKey(self, "BodyKey", queue_name=self.jobs.queue_name)
            self.body_key.grant_decrypt(function)
            function.add_environment(processor_settings.BODY_KEY_ARN_ENV, self.body_key.key.key_arn)

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

        for name, value in {
            "UploadsBucketName": self.intake.bucket.bucket_name,
            "ProcessedBucketName": self.processed.bucket_name,
            "QueueUrl": self.jobs.queue.queue_url,
            "DeadLetterQueueUrl": self.jobs.dead_letter_queue.queue_url,
            "FunctionName": function.function_name,
        }.items():
            CfnOutput(self, name, value=value)

    @staticmethod
    def _processing_widgets() -> list[cloudwatch.IWidget]:
        """The Powertools metrics the handler emits (namespace METRICS_NAMESPACE, dimension service)."""

        def metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE_NAME},
                period=Duration.minutes(1),
                statistic=statistic,
            )

        # VideosFailed carries a second dimension, the reason: one line per reason.
        failed_by_reason = cloudwatch.MathExpression(
            expression=(f"SEARCH('{{{METRICS_NAMESPACE},reason,service}} MetricName=\"VideosFailed\"', 'Sum', 60)"),
            using_metrics={},
            label="VideosFailed",
            period=Duration.minutes(1),
        )
        return [
            cloudwatch.GraphWidget(
                title="Videos processed, failed (by reason), duplicates skipped",
                left=[metric("VideosProcessed"), failed_by_reason, metric("DuplicatesSkipped")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Processing seconds per video",
                left=[metric("ProcessingSeconds", "Average"), metric("ProcessingSeconds", "Maximum")],
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
