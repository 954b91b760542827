"""QueueWorkerFleet: EC2 instances in an Auto Scaling group that drain an SQS queue, scaled on its depth.

The seed's "SQS with ASG", done so that it deploys, costs nothing when idle and never loses a job:
- a launch template (never a launch configuration): Amazon Linux 2023, IMDSv2 only, encrypted gp3 root
  volume, no key pair and no inbound rule (Session Manager for shell access), detailed monitoring;
- min 0 instances: scale to zero when there is nothing to do (scaling: see ``queue_depth_scaling``);
- workers turn on scale-in protection while busy, and a termination lifecycle hook gives an instance
  that is being terminated anyway (rebalancing, health) time to finish or release its jobs;
- the worker code and its wheels come from two S3 assets (a ``PythonBundle``), installed and run as a systemd service
  by user data (``worker_user_data``) with no internet access;
- the worker's logs and EMF metrics reach CloudWatch through the CloudWatch agent, into a KMS-encrypted log group.

The construct is generic: it takes the bundle, the service (command) and the environment, and grants what any
queue worker needs (consume the queue, its group's lifecycle actions, its log group). What the jobs themselves
need (buckets, keys) the stack grants to ``role``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from sqs_decoupling.common.acknowledgements import acknowledge, acknowledge_control, finding_text, wildcard_finding
from sqs_decoupling.common.log_groups import RETENTION_DAYS, logs_key
from sqs_decoupling.common.python_bundling import PythonBundle
from sqs_decoupling.common.ranges import Limit, Problems
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.worker_fleet.fleet_network import FleetNetwork
from sqs_decoupling.worker_fleet.worker_user_data import WorkerService, install_user_data

LIFECYCLE_HOOK_NAME = "drain-jobs-before-termination"
AUTO_SCALING_SERVICE_ROLE = "AWSServiceRoleForAutoScaling"
MAX_INSTANCES = 100
# Session Manager's agent: its heartbeat names the instance; the channel actions have no resource-level permissions.
SESSION_MANAGER_INSTANCE_ACTION = "ssm:UpdateInstanceInformation"
SESSION_MANAGER_CHANNEL_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
GROUP_ACTIONS = (
    "autoscaling:SetInstanceProtection",
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:RecordLifecycleActionHeartbeat",
)


FLEET_LIMITS: dict[str, Limit] = {
    "max_instances": Limit(1, MAX_INSTANCES),
    "instance_mix.spot_percentage": Limit(0, 100, " %"),
}


def fleet_props(max_instances: int, instance_mix: InstanceMix | None) -> dict[str, Any]:
    """The sizes ``validate_fleet_props`` checks, from the construct's props."""
    props: dict[str, Any] = {"max_instances": max_instances}
    if instance_mix is not None:
        props["instance_mix.instance_types"] = len(instance_mix.instance_types)
        props["instance_mix.spot_percentage"] = instance_mix.spot_percentage
        props["instance_mix.on_demand_base_capacity"] = instance_mix.on_demand_base_capacity
    return props


def validate_fleet_props(problems: Problems, props: dict[str, Any]) -> None:
    """The one check of QueueWorkerFleet's sizes (and of WorkerFleetSettings', through them): ``max_instances``, and
    when given, ``instance_mix.instance_types`` (how many), ``.spot_percentage`` and ``.on_demand_base_capacity``
    (0..max_instances)."""
    for prop, limit in FLEET_LIMITS.items():
        if prop in props:
            problems.check(prop, props[prop], limit)
    if props.get("instance_mix.instance_types") == 0:
        problems.add(f"{problems.subject('instance_mix.instance_types')} must name at least one instance type.")
    if "instance_mix.on_demand_base_capacity" in props:
        limit = Limit(0, props["max_instances"])
        problems.check("instance_mix.on_demand_base_capacity", props["instance_mix.on_demand_base_capacity"], limit)


@dataclass(frozen=True)
class InstanceMix:
    """A group of several instance types and/or Spot capacity (an Auto Scaling mixed instances policy).

    ``instance_types``: the types the group may launch (one architecture, the bundle's), in priority order for
    On-Demand; ``spot_percentage``: the share of Spot instances above ``on_demand_base_capacity`` (0..100; the
    first ``on_demand_base_capacity`` instances are always On-Demand). Spot capacity is chosen
    ``price-capacity-optimized`` (the pools least likely to be interrupted, then the cheapest), and capacity
    rebalancing is on: the group starts a replacement when EC2 recommends it, before the interruption notice."""

    instance_types: Sequence[ec2.InstanceType]
    spot_percentage: int = 0
    on_demand_base_capacity: int = 0


def architecture_of(instance_type: ec2.InstanceType) -> str:
    """The bundle architecture ("arm64" or "x86_64") for an instance type: Graviton types are arm64."""
    return "arm64" if instance_type.architecture == ec2.InstanceArchitecture.ARM_64 else "x86_64"


def worker_log_group_name(scope: Construct, service: WorkerService) -> str:
    """The name of the fleet's log group (fixed, so the worker's environment and the agent can name it)."""
    return f"/{Stack.of(scope).stack_name}/{service.name}"


class QueueWorkerFleet(Construct):
    """An Auto Scaling group of queue workers. Attributes: ``group``, ``role``, ``launch_template``,
    ``security_group``, ``lifecycle_hook``, ``log_group``.

    :param network: where the instances run (a ``FleetNetwork``, which may wrap an existing VPC).
    :param bundle: the worker's code and wheels, built for ``instance_type``'s architecture.
    :param service: how the instances run it (command, packages, log file; see ``WorkerService``).
    :param environment: the service's environment variables (AWS_REGION is added).
    :param emf_endpoint: where the CloudWatch agent listens for the worker's EMF metric documents.
    :param max_instances: the group's maximum (1..100; the minimum is 0). Default: 4.
    :param drain_timeout: how long a terminating instance may drain (the lifecycle hook's heartbeat timeout and the
        service's stop timeout). Default: 10 minutes.
    :param notifications_key: the KMS key ``notifications_topic`` is encrypted with, if any: Auto Scaling's
        service-linked role may then use it to publish. Default: none (an unencrypted topic).
    :param log_retention_days: how long the worker's log group keeps logs (a CloudWatch Logs retention of a year or
        more). Default: 365.
    :param instance_mix: several instance types and/or Spot (see ``InstanceMix``). Default: none, the launch
        template's ``instance_type`` only, On-Demand.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: EncryptedQueue,
        network: FleetNetwork,
        bundle: PythonBundle,
        service: WorkerService,
        environment: Mapping[str, str],
        instance_type: ec2.InstanceType,
        notifications_topic: sns.ITopic,
        emf_endpoint: str,
        max_instances: int = 4,
        drain_timeout: Duration = Duration.minutes(10),
        root_volume_gib: int = 30,
        notifications_key: kms.IKey | None = None,
        log_retention_days: int = 365,
        instance_mix: InstanceMix | None = None,
    ) -> None:
        """Wire the fleet's parts in the order their references need: role, network, log group, asset and user
        data, launch template, group, hook, grants."""
        super().__init__(scope, construct_id)
        problems = Problems(f"QueueWorkerFleet '{self.node.path}'")
        validate_fleet_props(problems, fleet_props(max_instances, instance_mix))
        problems.raise_any()
        self.role = self._instance_role()
        if not network.public_ip:
            self._deny_use_outside(network.vpc)
        self.security_group = self._security_group(network)
        self.log_group = self._log_group(worker_log_group_name(self, service), log_retention_days)
        user_data = self._user_data(
            bundle,
            service,
            environment={"AWS_REGION": Stack.of(self).region, **environment},
            drain_seconds=int(drain_timeout.to_seconds()),
            emf_endpoint=emf_endpoint,
        )
        self.launch_template = self._launch_template(instance_type, network, root_volume_gib, user_data)
        self.group = self._group(network, notifications_topic, max_instances, instance_mix)
        if notifications_key is not None:
            _let_auto_scaling_publish_with(notifications_key)
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
        self._grant_group_actions()

    def _security_group(self, network: FleetNetwork) -> ec2.SecurityGroup:
        """No inbound rule; HTTPS out to AWS's APIs only (in isolated mode: to the endpoints and S3's prefix list)."""
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="Queue workers: no inbound rules; HTTPS out to AWS APIs",
            allow_all_outbound=False,
        )
        network.allow_https_out(group)
        network.allow_endpoints_from(group)
        return group

    def _user_data(
        self,
        bundle: PythonBundle,
        service: WorkerService,
        *,
        environment: Mapping[str, str],
        drain_seconds: int,
        emf_endpoint: str,
    ) -> ec2.UserData:
        """The worker's two archives (the locked wheels, a new object only when the lock changes, and the code),
        readable by the role (only these objects, not CDK's grant_read on the whole assets bucket), installed and
        started as a systemd service by user data."""
        archives = [
            s3_assets.Asset(self, "WorkerDependencies", path=bundle.source_dir, **bundle.dependencies_options()),
            s3_assets.Asset(self, "WorkerCode", path=bundle.source_dir, **bundle.code_options()),
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[a.bucket.arn_for_objects(a.s3_object_key) for a in archives]
            )
        )
        return install_user_data(
            service,
            archives,
            environment=environment,
            drain_seconds=drain_seconds,
            log_group_name=self.log_group.log_group_name,
            emf_endpoint=emf_endpoint,
        )

    def _group(
        self,
        network: FleetNetwork,
        notifications_topic: sns.ITopic,
        max_instances: int,
        instance_mix: InstanceMix | None,
    ) -> autoscaling.AutoScalingGroup:
        """The group, from 0 to ``max_instances``, with group metrics and notifications, and its acknowledgements."""
        group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            **self._capacity(instance_mix),
            min_capacity=0,
            max_capacity=max_instances,
            group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=notifications_topic)],
            default_instance_warmup=Duration.minutes(3),
        )
        self._acknowledge_group_controls(
            group,
            public_ip=network.public_ip,
            one_type=instance_mix is None or len(instance_mix.instance_types) == 1,
        )
        if instance_mix is not None:
            acknowledge(
                group,
                "AwsSolutions::AwsSolutions-EC26",
                "cdk-nag 3.0's EBS-encryption rule reads only the group's LaunchTemplate and throws on a "
                "MixedInstancesPolicy; the launch template it names has only encrypted gp3 volumes (tested).",
            )
        return group

    def _instance_role(self) -> iam.Role:
        """The instances' role, with Session Manager (our replacement for SSH). Only these actions:
        AmazonSSMManagedInstanceCore would also give ssm:GetParameter(s) on every parameter of the account to hosts
        that run ffmpeg on uploads."""
        instances = Stack.of(self).format_arn(
            service="ec2", resource="instance", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )
        role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            inline_policies={
                "SessionManager": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=[SESSION_MANAGER_INSTANCE_ACTION], resources=[instances]),
                        iam.PolicyStatement(actions=list(SESSION_MANAGER_CHANNEL_ACTIONS), resources=["*"]),
                    ]
                )
            },
        )
        acknowledge(
            role,
            wildcard_finding("*"),
            "Session Manager: ssmmessages' channel actions have no resource-level permissions.",
        )
        acknowledge(
            role,
            wildcard_finding(finding_text(self, instances)),
            "Session Manager: ssm:UpdateInstanceInformation names the instance, whose id is not known before it "
            "starts; instances of this account and region only.",
        )
        return role

    def _deny_use_outside(self, vpc: ec2.IVpc) -> None:
        """The instances' credentials work only from the fleet's VPC (isolated mode: every call goes through its
        endpoints, which set aws:SourceVpc), except for what an AWS service does with them on the instance's behalf
        (SQS and S3 asking KMS). Credentials taken from an instance are of no use elsewhere (AWS's SQS security best
        practices; the data perimeter's "expected networks")."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DenyUseOutsideTheFleetsVpc",
                effect=iam.Effect.DENY,
                actions=["*"],
                resources=["*"],
                conditions={
                    "StringNotEquals": {"aws:SourceVpc": vpc.vpc_id},
                    "BoolIfExists": {"aws:ViaAWSService": "false"},
                },
            )
        )

    def _launch_template(
        self, instance_type: ec2.InstanceType, network: FleetNetwork, root_volume_gib: int, user_data: ec2.UserData
    ) -> ec2.LaunchTemplate:
        """Amazon Linux 2023 for the instance type's architecture, IMDSv2 only, an encrypted gp3 root volume."""
        return ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=ec2.MachineImage.latest_amazon_linux2023(
                cpu_type=ec2.AmazonLinuxCpuType.ARM_64
                if architecture_of(instance_type) == "arm64"
                else ec2.AmazonLinuxCpuType.X86_64
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
            user_data=user_data,
        )

    def _capacity(self, mix: InstanceMix | None) -> dict[str, Any]:
        """The group's launch template, alone or in a mixed instances policy (Spot, several types)."""
        if mix is None:
            return {"launch_template": self.launch_template}
        return {
            "mixed_instances_policy": autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=mix.on_demand_base_capacity,
                    on_demand_percentage_above_base_capacity=100 - mix.spot_percentage,
                    on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
                    spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
                ),
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=instance_type)
                    for instance_type in mix.instance_types
                ],
            ),
            "capacity_rebalance": True,
        }

    def _acknowledge_group_controls(
        self, group: autoscaling.AutoScalingGroup, *, public_ip: bool, one_type: bool
    ) -> None:
        acknowledge_control(
            group,
            "CT.AUTOSCALING.PR.1",
            "The group spans every subnet of the fleet (one per Availability Zone, two by default) through "
            "VPCZoneIdentifier; the control reads only the AvailabilityZones property.",
        )
        if one_type:
            acknowledge_control(
                group,
                "CT.AUTOSCALING.PR.6",
                "One instance type unless configured (worker_instance_types): the scaling thresholds and the cost "
                "model assume one job rate per instance; several types of the asset's architecture are an option.",
            )
        if public_ip:
            acknowledge_control(
                self.launch_template,
                "CT.EC2.PR.9",
                "Public mode is the sandbox option: instances reach AWS over the internet, without NAT or endpoints, "
                "so they need a public address; no security group allows anything in.",
            )

    def _grant_group_actions(self) -> None:
        """Scale-in protection and the lifecycle actions on this group only; describing is read-only on *."""
        # In a policy of its own: the role's default policy cannot name the group, because the launch template
        # (which the group needs) waits for that policy; this one nobody waits for.
        # arn:<partition>:autoscaling:<region>:<account>:autoScalingGroup:<uuid>:autoScalingGroupName/<name> (the
        # service authorization reference's format: a colon after autoScalingGroup).
        group_arn = Stack.of(self).format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{self.group.auto_scaling_group_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        group_policy = iam.Policy(
            self,
            "GroupActions",
            roles=[self.role],
            statements=[iam.PolicyStatement(actions=list(GROUP_ACTIONS), resources=[group_arn])],
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

    def _log_group(self, name: str, retention_days: int) -> logs.LogGroup:
        """The worker's log group (its logs and EMF metrics), encrypted with the stack's logs key (which CloudWatch
        Logs may use only for this account's log groups); the instances may only write to it."""
        group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=name,
            encryption_key=logs_key(Stack.of(self)),
            retention=RETENTION_DAYS[retention_days],
            # Its name is fixed, so a retained group would make the next deploy of this stack fail ("already
            # exists"); the logs key, retained, can still decrypt an export.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # What the CloudWatch agent calls, on this group and its streams only (the group's Arn ends in ":*"); the
        # group exists, so no logs:CreateLogGroup.
        group.grant(self.role, "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
        return group


def _let_auto_scaling_publish_with(key: kms.IKey) -> None:
    """Let Auto Scaling's service-linked role publish the group's notifications to a KMS-encrypted topic.

    A publisher to an encrypted topic needs kms:GenerateDataKey* and kms:Decrypt on its key
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "Configuring AWS KMS permissions"), and
    Auto Scaling publishes as AWSServiceRoleForAutoScaling
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html). Only that role,
    of this account, only through SNS.

    The role is named in a condition (aws:PrincipalArn), not as the Principal: KMS refuses a key policy whose
    principal does not exist, and the role exists only once the account has had an Auto Scaling group, so naming it
    would fail the first deploy into a new account (and break the key if the role were ever re-created).
    (Naming the topic in kms:EncryptionContext:aws:sns:topicArn would make a dependency cycle: the topic is
    encrypted with this key.)
    """
    stack = Stack.of(key)
    role_arn = stack.format_arn(
        service="iam",
        region="",
        resource="role",
        resource_name=f"aws-service-role/autoscaling.amazonaws.com/{AUTO_SCALING_SERVICE_ROLE}",
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowAutoScalingNotificationsToTheEncryptedTopic",
            principals=[iam.AnyPrincipal()],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
            conditions={
                "ArnEquals": {"aws:PrincipalArn": role_arn},
                "StringEquals": {
                    "kms:CallerAccount": stack.account,
                    "kms:ViaService": f"sns.{stack.region}.amazonaws.com",
                },
            },
        )
    )
