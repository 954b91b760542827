"""QueueWorkerFleet: EC2 instances in an Auto Scaling group that drain an SQS queue, scaled on its depth.

The seed's "SQS with ASG", done so that it deploys, costs nothing when idle and never loses a job:
- a launch template (never a launch configuration): Amazon Linux 2023, IMDSv2 only, encrypted gp3 root
  volume, no key pair and no inbound rule (Session Manager for shell access), detailed monitoring;
- min 0 instances: scale to zero when there is nothing to do;
- scaling on ApproximateNumberOfMessagesVisible (see ``QueueDepthScaling``);
- workers turn on scale-in protection while busy, and a termination lifecycle hook gives an instance
  that is being terminated anyway (rebalancing, health) time to finish or release its jobs;
- the worker code and its wheels come from an S3 asset, installed by user data with no internet access;
- the worker's JSON logs and EMF metrics reach CloudWatch through the CloudWatch agent (AL2023's
  ``amazon-cloudwatch-agent`` package), into a KMS-encrypted log group with a retention period.
"""

from __future__ import annotations

import json
import posixpath

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.acknowledgements import acknowledge, acknowledge_control, finding_text, wildcard_finding
from stacks.constructs.client_side_key import ClientSideEncryptionKey
from stacks.constructs.encrypted_queue import EncryptedQueue
from stacks.constructs.fleet_network import FleetNetwork
from stacks.constructs.log_groups import RETENTION_DAYS, logs_key
from stacks.constructs.python_bundling import PythonBundle
from stacks.constructs.ranges import check_range
from stacks.constructs.upload_intake import UploadIntake
from stacks.constructs.video_job_access import grant_video_job_access
from video_processing.limits import DEFAULT_LIMITS, DEFAULT_MAX_VIDEO_BYTES, limits_environment
from video_processing.telemetry import (
    CLOUDWATCH_AGENT_EMF_ENDPOINT,
    WORKER_LOG_FILE,
    WORKER_METRICS_ENDPOINT_ENV,
    WORKER_METRICS_LOG_GROUP_ENV,
)
from worker import config as worker_config

WORKER_PYTHON = "3.11"  # a dnf package on Amazon Linux 2023 (its system python3 is 3.9)
INSTALL_DIR = "/opt/video-worker"
SERVICE_NAME = "video-worker"
UNIT_FILE = f"/etc/systemd/system/{SERVICE_NAME}.service"
DNF_PACKAGES = (f"python{WORKER_PYTHON}", "amazon-cloudwatch-agent")
CLOUDWATCH_AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
CLOUDWATCH_AGENT_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/video-worker.json"
LIFECYCLE_HOOK_NAME = "drain-jobs-before-termination"
MAX_INSTANCES = 100
FFMPEG_BINARIES = "imageio_ffmpeg/binaries"  # where the imageio-ffmpeg wheel puts its static ffmpeg
# systemd's stop: SIGTERM, then this long beyond the worker's drain time before SIGKILL.
STOP_MARGIN_SECONDS = 30
SESSION_MANAGER_ACTIONS = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)


def architecture_of(instance_type: ec2.InstanceType) -> str:
    """The bundle architecture ("arm64" or "x86_64") for an instance type: Graviton types are arm64."""
    return "arm64" if instance_type.architecture == ec2.InstanceArchitecture.ARM_64 else "x86_64"


def worker_bundle(architecture: str) -> PythonBundle:
    """The worker asset: the worker and video_processing packages plus Linux wheels for python3.11."""
    return PythonBundle(
        sources=(("worker", "worker"), ("video_processing", "video_processing"), ("clientside", "clientside")),
        requirements="worker/requirements.txt",
        architecture=architecture,
        python_version=WORKER_PYTHON,
    )


class QueueWorkerFleet(Construct):
    """An Auto Scaling group of queue workers. Attributes: ``group``, ``role``, ``launch_template``,
    ``security_group``, ``lifecycle_hook``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: EncryptedQueue,
        intake: UploadIntake,
        network: FleetNetwork,
        output_bucket: s3.IBucket,
        output_key: kms.IKey,
        instance_type: ec2.InstanceType,
        notifications_topic: sns.ITopic,
        max_instances: int = 4,
        worker_concurrency: int = worker_config.DEFAULT_CONCURRENCY,
        max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
        drain_timeout: Duration = Duration.minutes(10),
        body_key: ClientSideEncryptionKey | None = None,
        root_volume_gib: int = 30,
        notifications_key: kms.IKey | None = None,
        log_retention_days: int = 365,
    ) -> None:
        """:param notifications_key: the KMS key ``notifications_topic`` is encrypted with, if any: Auto Scaling's
            service-linked role may then use it to publish. Default: none (an unencrypted topic).
        :param log_retention_days: how long the worker's log group keeps logs (a CloudWatch Logs retention of a
            year or more). Default: 365.
        """
        super().__init__(scope, construct_id)
        check_range(f"QueueWorkerFleet '{self.node.path}': max_instances", max_instances, 1, MAX_INSTANCES)
        architecture = architecture_of(instance_type)

        # Session Manager (our replacement for SSH) needs only these actions. AmazonSSMManagedInstanceCore would
        # also give ssm:GetParameter(s) on every parameter of the account to hosts that run ffmpeg on uploads.
        self.role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            inline_policies={
                "SessionManager": iam.PolicyDocument(
                    statements=[iam.PolicyStatement(actions=list(SESSION_MANAGER_ACTIONS), resources=["*"])]
                )
            },
        )
        acknowledge(
            self.role,
            wildcard_finding("*"),
            "Session Manager: ssmmessages' channel actions have no resource-level permissions, and "
            "ssm:UpdateInstanceInformation names the instance, whose id is not known before it starts.",
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="Queue workers: no inbound rules; HTTPS out to AWS APIs",
            allow_all_outbound=False,
        )
        network.allow_https_out(self.security_group)
        network.allow_endpoints_from(self.security_group)

        drain_seconds = int(drain_timeout.to_seconds())
        # The worker's settings (worker/config.py), as environment variables of its systemd service.
        environment = {
            "AWS_REGION": Stack.of(self).region,
            worker_config.QUEUE_URL_ENV: jobs.queue.queue_url,
            worker_config.OUTPUT_BUCKET_ENV: output_bucket.bucket_name,
            worker_config.CONCURRENCY_ENV: str(worker_concurrency),
            worker_config.VISIBILITY_TIMEOUT_ENV: str(int(jobs.visibility_timeout.to_seconds())),
            worker_config.MAX_BYTES_ENV: str(max_video_bytes),
            worker_config.DRAIN_SECONDS_ENV: str(drain_seconds),
            worker_config.LIFECYCLE_HOOK_ENV: LIFECYCLE_HOOK_NAME,
            worker_config.PROFILE_ENV: worker_config.DEFAULT_PROFILE,
            **limits_environment(DEFAULT_LIMITS, worker_config.ENV_PREFIX),
            # ffmpeg's scratch files: /tmp on Amazon Linux 2023 is a small RAM-backed tmpfs, /var/tmp is on disk.
            "TMPDIR": "/var/tmp",  # noqa: S108
        }
        if body_key is not None:
            body_key.grant_decrypt(self.role)
            environment[worker_config.BODY_KEY_ARN_ENV] = body_key.key.key_arn
        self.log_group = self._log_group(log_retention_days)
        environment[WORKER_METRICS_ENDPOINT_ENV] = CLOUDWATCH_AGENT_EMF_ENDPOINT
        environment[WORKER_METRICS_LOG_GROUP_ENV] = self.log_group.log_group_name

        bundle = worker_bundle(architecture)
        code = s3_assets.Asset(self, "WorkerCode", path=bundle.source_dir, **bundle.asset_options())
        # Only this asset, not CDK's grant_read on the whole assets bucket.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[code.bucket.arn_for_objects(code.s3_object_key)])
        )

        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=ec2.MachineImage.latest_amazon_linux2023(
                cpu_type=ec2.AmazonLinuxCpuType.ARM_64 if architecture == "arm64" else ec2.AmazonLinuxCpuType.X86_64
            ),
            instance_type=instance_type,
            role=self.role,
            security_group=self.security_group,
            associate_public_ip_address=network.public_ip or None,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            detailed_monitoring=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=self._user_data(code, environment=environment, drain_seconds=drain_seconds),
        )

        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            launch_template=self.launch_template,
            min_capacity=0,
            max_capacity=max_instances,
            group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=notifications_topic)],
            default_instance_warmup=Duration.minutes(3),
        )
        if notifications_key is not None:
            _let_auto_scaling_publish_with(notifications_key)
        acknowledge_control(
            self.group,
            "CT.AUTOSCALING.PR.1",
            "The group spans every subnet of the fleet (one per Availability Zone, two by default) through "
            "VPCZoneIdentifier; the control reads only the AvailabilityZones property.",
        )
        acknowledge_control(
            self.group,
            "CT.AUTOSCALING.PR.6",
            "One instance type on purpose: the worker asset's wheels are built for one architecture, and the "
            "scaling thresholds and the cost model assume one job rate per instance.",
        )
        if network.public_ip:
            acknowledge_control(
                self.launch_template,
                "CT.EC2.PR.9",
                "Public mode is the sandbox option: instances reach AWS over the internet, without NAT or endpoints, "
                "so they need a public address; no security group allows anything in.",
            )
        # A terminating instance waits in Terminating:Wait until its worker has finished or released its jobs
        # and completed the action, at most drain_timeout (the worker sends heartbeats while it drains).
        self.lifecycle_hook = self.group.add_lifecycle_hook(
            "DrainOnTermination",
            lifecycle_hook_name=LIFECYCLE_HOOK_NAME,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=drain_timeout,
            default_result=autoscaling.DefaultResult.CONTINUE,
        )

        jobs.grant_consume(self.role)
        # The worker reads the queue's visibility timeout at start-up (and fails fast on a wrong URL).
        jobs.queue.grant(self.role, "sqs:GetQueueAttributes")
        grant_video_job_access(self.role, intake=intake, processed=output_bucket, processed_key=output_key)
        # In a policy of its own: the role's default policy cannot name the group, because the launch template
        # (which the group needs) waits for that policy; this one nobody waits for.
        group_arn = Stack.of(self).format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{self.group.auto_scaling_group_name}",
        )
        group_policy = iam.Policy(
            self,
            "GroupActions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "autoscaling:SetInstanceProtection",
                        "autoscaling:CompleteLifecycleAction",
                        "autoscaling:RecordLifecycleActionHeartbeat",
                    ],
                    resources=[group_arn],
                )
            ],
        )
        acknowledge(
            group_policy,
            # As cdk-nag prints it in this stack's environment: agnostic (<AWS::Region>) or concrete (eu-west-1).
            wildcard_finding(finding_text(self, group_arn)),
            "This group only: the * stands for the group's id, which the ARN needs and CloudFormation does not expose.",
        )
        # The worker finds its group from its instance id; Describe* actions have no resource-level permissions.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["autoscaling:DescribeAutoScalingInstances"], resources=["*"])
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            wildcard_finding("*"),
            "autoscaling:DescribeAutoScalingInstances has no resource-level permissions; it only reads.",
        )

    def _log_group(self, retention_days: int) -> logs.LogGroup:
        """The worker's log group (its JSON logs and EMF metrics), encrypted with the stack's logs key (which
        CloudWatch Logs may use only for this account's log groups); the instances may only write to it."""
        stack = Stack.of(self)
        # Named from the stack: the CloudWatch agent's configuration and the worker's environment name it.
        group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/{stack.stack_name}/{SERVICE_NAME}",
            encryption_key=logs_key(stack),
            retention=RETENTION_DAYS[retention_days],
            # Its name is fixed, so a retained group would make the next deploy of this stack fail ("already
            # exists"); the logs key, retained, can still decrypt an export.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # What the CloudWatch agent calls, on this group and its streams only (the group's Arn ends in ":*"); the
        # group exists, so no logs:CreateLogGroup.
        group.grant(self.role, "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
        return group

    def _user_data(self, code: s3_assets.Asset, *, environment: dict[str, str], drain_seconds: int) -> ec2.UserData:
        """Install python3.11 and the CloudWatch agent (AL2023's repositories, served from S3), unpack the asset,
        start the agent and the worker's service."""
        user_data = ec2.UserData.for_linux()
        # First of all: a failed download must stop the script, not leave a half-installed instance running.
        user_data.add_commands("set -euo pipefail")
        # Not UserData.add_s3_download_command: its unquoted `mkdir -p $(dirname ...)` fails shellcheck (SC2046).
        archive = f"/tmp/{code.s3_object_key}"  # noqa: S108 -- the instance's own /tmp, used once at boot
        user_data.add_commands(
            f"aws s3 cp 's3://{code.s3_bucket_name}/{code.s3_object_key}' '{archive}'",
            f"dnf install -y {' '.join(DNF_PACKAGES)}",
            f"mkdir -p {INSTALL_DIR} {posixpath.dirname(WORKER_LOG_FILE)}",
            f"python{WORKER_PYTHON} -m zipfile -e {archive} {INSTALL_DIR}",
            # Python's zipfile drops the executable bits: ffmpeg (from the imageio-ffmpeg wheel) needs its back.
            f"chmod 755 {INSTALL_DIR}/{FFMPEG_BINARIES}/*",
            f"cat > {CLOUDWATCH_AGENT_CONFIG} <<'CONFIG'",
            json.dumps(cloudwatch_agent_config(self.log_group.log_group_name), indent=2),
            "CONFIG",
            f"{CLOUDWATCH_AGENT_CTL} -a fetch-config -m ec2 -s -c file:{CLOUDWATCH_AGENT_CONFIG}",
            f"cat > {UNIT_FILE} <<'UNIT'",
            *systemd_unit(environment, drain_seconds=drain_seconds),
            "UNIT",
            "systemctl daemon-reload",
            f"systemctl enable --now {SERVICE_NAME}",
        )
        return user_data


def cloudwatch_agent_config(log_group_name: str) -> dict[str, object]:
    """The CloudWatch agent's configuration: tail the worker's log file into its log group, one stream per
    instance, and listen for the worker's EMF metric documents (which CloudWatch Logs turns into metrics)."""
    return {
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {
                            "file_path": WORKER_LOG_FILE,
                            "log_group_name": log_group_name,
                            "log_stream_name": "{instance_id}",
                        }
                    ]
                }
            },
            "metrics_collected": {"emf": {"service_address": CLOUDWATCH_AGENT_EMF_ENDPOINT}},
        }
    }


def systemd_unit(environment: dict[str, str], *, drain_seconds: int) -> list[str]:
    """The worker's systemd unit, line by line."""
    return [
        "[Unit]",
        "Description=SQS video worker",
        "After=network-online.target",
        "Wants=network-online.target",
        "[Service]",
        # A user made up by systemd for this service: no login, nothing to create in user data.
        "DynamicUser=yes",
        f"WorkingDirectory={INSTALL_DIR}",
        f"Environment=PYTHONPATH={INSTALL_DIR}",
        *(f"Environment={name}={value}" for name, value in environment.items()),
        f"ExecStart=/usr/bin/python{WORKER_PYTHON} -m worker",
        # JSON log lines into the file the CloudWatch agent tails (journald keeps nothing after scale-in).
        f"StandardOutput=append:{WORKER_LOG_FILE}",
        f"StandardError=append:{WORKER_LOG_FILE}",
        # On stop, SIGTERM to the worker only: it stops receiving, drains its jobs and completes the lifecycle
        # action. Whatever is left of the unit (ffmpeg children) gets SIGKILL after TimeoutStopSec.
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={drain_seconds + STOP_MARGIN_SECONDS}",
        "Restart=always",
        "RestartSec=5",
        "[Install]",
        "WantedBy=multi-user.target",
    ]


def _let_auto_scaling_publish_with(key: kms.IKey) -> None:
    """Let Auto Scaling's service-linked role publish the group's notifications to a KMS-encrypted topic.

    A publisher to an encrypted topic needs kms:GenerateDataKey* and kms:Decrypt on its key
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "Configuring AWS KMS permissions"), and
    Auto Scaling publishes as AWSServiceRoleForAutoScaling
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html). Only that role,
    only through SNS. (Naming the topic in kms:EncryptionContext:aws:sns:topicArn would make a dependency cycle:
    the topic is encrypted with this key.)
    """
    stack = Stack.of(key)
    role_arn = stack.format_arn(
        service="iam",
        region="",
        resource="role",
        resource_name="aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowAutoScalingNotificationsToTheEncryptedTopic",
            principals=[iam.ArnPrincipal(role_arn)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
            conditions={"StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}},
        )
    )
