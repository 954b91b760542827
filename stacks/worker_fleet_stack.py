"""WorkerFleetStack: the seed's "SQS with ASG".

Jobs arrive on an encrypted queue (from S3 uploads, or from producers calling SendMessage); EC2 workers in an
Auto Scaling group drain it, and the group grows and shrinks with the queue's depth, down to zero.

    uploads bucket --ObjectCreated--> transcode-jobs queue (KMS, DLQ) <-- SendMessage(Batch) producers
    CloudWatch alarms on ApproximateNumberOfMessagesVisible --> step scaling --> Auto Scaling group (0..N)
    workers: receive <= 10, transcode with ffmpeg --> processed bucket, DeleteMessageBatch
"""

from __future__ import annotations

from aws_cdk import Aspects, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.alarm_email import AlarmEmailSubscription
from stacks.constructs.buckets import access_logs_bucket, data_bucket
from stacks.constructs.client_side_key import ClientSideEncryptionKey
from stacks.constructs.encrypted_queue import EncryptedQueue
from stacks.constructs.fleet_network import FleetNetwork, worker_aws_services
from stacks.constructs.log_groups import EncryptedLogGroups
from stacks.constructs.queue_depth_scaling import backlog_target_tracking, step_scaling
from stacks.constructs.upload_intake import UploadIntake
from stacks.constructs.worker_fleet import QueueWorkerFleet
from video_processing import telemetry


class WorkerFleetStack(Stack):
    """S3 uploads and SendMessage producers -> encrypted SQS -> EC2 Auto Scaling group of workers -> S3."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        existing_vpc: ec2.IVpc | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        # Every log group explicit, encrypted and kept log_retention_days, CDK's handler functions' included.
        Aspects.of(self).add(EncryptedLogGroups(retention_days=config.log_retention_days))
        access_logs = access_logs_bucket(self, "AccessLogs")
        self.jobs = EncryptedQueue(
            self,
            "TranscodeJobs",
            visibility_timeout=Duration.seconds(config.worker_visibility_timeout_seconds),
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
        self.fleet = QueueWorkerFleet(
            self,
            "Workers",
            jobs=self.jobs,
            intake=self.intake,
            network=self.network,
            output_bucket=self.processed,
            output_key=self.jobs.key,
            instance_type=ec2.InstanceType(config.worker_instance_type),
            notifications_topic=self.jobs.alarm_topic,
            notifications_key=self.jobs.key,
            log_retention_days=config.log_retention_days,
            max_instances=config.worker_max_instances,
            worker_concurrency=config.worker_concurrency,
            max_video_bytes=config.max_video_mb * 1024 * 1024,
            body_key=self.body_key,
        )
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

    def _fleet_widgets(self, config: AppConfig) -> list[cloudwatch.IWidget]:
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
