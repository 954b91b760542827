"""QueueWorkerFleet: EC2 instances in an Auto Scaling group that drain an SQS queue, scaled on its depth.

The seed's "SQS with ASG", done so that it deploys, costs nothing when idle and never loses a job:
- a launch template (never a launch configuration): Amazon Linux 2023, IMDSv2 only, encrypted gp3 root
  volume, no key pair and no inbound rule (Session Manager for shell access), detailed monitoring;
- min 0 instances: scale to zero when there is nothing to do;
- scaling on ApproximateNumberOfMessagesVisible (see ``QueueDepthScaling``);
- workers turn on scale-in protection while busy, and a termination lifecycle hook gives an instance
  that is being terminated anyway (rebalancing, health) time to finish or release its jobs;
- the worker code and its wheels come from an S3 asset, installed by user data with no internet access.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.constructs.client_side_key import ClientSideEncryptionKey
from stacks.constructs.encrypted_queue import EncryptedQueue
from stacks.constructs.fleet_network import FleetNetwork
from stacks.constructs.python_bundling import PythonBundle
from stacks.constructs.upload_intake import UploadIntake
from stacks.constructs.video_job_access import grant_video_job_access
from stacks.guard import acknowledge_control
from stacks.nag import acknowledge, wildcard_finding

WORKER_PYTHON = "3.11"  # a dnf package on Amazon Linux 2023 (its system python3 is 3.9)
INSTALL_DIR = "/opt/video-worker"
LIFECYCLE_HOOK_NAME = "drain-jobs-before-termination"
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
        worker_concurrency: int = 2,
        max_video_bytes: int = 200 * 1024 * 1024,
        drain_timeout: Duration = Duration.minutes(10),
        body_key: ClientSideEncryptionKey | None = None,
        root_volume_gib: int = 30,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= max_instances <= 100:
            raise ValueError(f"QueueWorkerFleet '{self.node.path}': max_instances is {max_instances}, allowed 1..100.")
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
            "WORKER_QUEUE_URL": jobs.queue.queue_url,
            "WORKER_OUTPUT_BUCKET": output_bucket.bucket_name,
            "WORKER_CONCURRENCY": str(worker_concurrency),
            "WORKER_VISIBILITY_TIMEOUT": str(jobs.queue.node.default_child.visibility_timeout),  # type: ignore[union-attr]
            "WORKER_MAX_BYTES": str(max_video_bytes),
            "WORKER_DRAIN_SECONDS": str(drain_seconds),
            "WORKER_LIFECYCLE_HOOK": LIFECYCLE_HOOK_NAME,
            # ffmpeg's scratch files: /tmp on Amazon Linux 2023 is a small RAM-backed tmpfs, /var/tmp is on disk.
            "TMPDIR": "/var/tmp",  # noqa: S108
        }
        if body_key is not None:
            body_key.grant_decrypt(self.role)
            environment["WORKER_BODY_KEY_ARN"] = body_key.key.key_arn

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
        group_logical_id = Stack.of(self).get_logical_id(self.group.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            group_policy,
            wildcard_finding(
                "arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup/"
                f"*:autoScalingGroupName/<{group_logical_id}>"
            ),
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

    def _user_data(self, code: s3_assets.Asset, *, environment: dict[str, str], drain_seconds: int) -> ec2.UserData:
        """Install python3.11 (from AL2023's repositories, served from S3), unpack the asset, run a service."""
        user_data = ec2.UserData.for_linux()
        archive = user_data.add_s3_download_command(bucket=code.bucket, bucket_key=code.s3_object_key)
        user_data.add_commands(
            "set -euo pipefail",
            f"dnf install -y python{WORKER_PYTHON}",
            f"mkdir -p {INSTALL_DIR}",
            f"python{WORKER_PYTHON} -m zipfile -e {archive} {INSTALL_DIR}",
            "id video-worker || useradd --system --no-create-home --shell /sbin/nologin video-worker",
            "cat > /etc/systemd/system/video-worker.service <<'UNIT'",
            "[Unit]",
            "Description=SQS video worker",
            "After=network-online.target",
            "Wants=network-online.target",
            "[Service]",
            "User=video-worker",
            f"WorkingDirectory={INSTALL_DIR}",
            f"Environment=PYTHONPATH={INSTALL_DIR}",
            *(f"Environment={name}={value}" for name, value in environment.items()),
            f"ExecStart=/usr/bin/python{WORKER_PYTHON} -m worker",
            # systemd sends SIGTERM on stop; the worker drains, so give it the drain time before SIGKILL.
            "KillSignal=SIGTERM",
            f"TimeoutStopSec={drain_seconds + 30}",
            "Restart=always",
            "RestartSec=5",
            "[Install]",
            "WantedBy=multi-user.target",
            "UNIT",
            "systemctl daemon-reload",
            "systemctl enable --now video-worker",
        )
        return user_data
