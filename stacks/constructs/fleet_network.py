"""FleetNetwork: where the queue workers run. No inbound rules anywhere; two ways out to AWS's APIs.

- "isolated" (default): private isolated subnets, no internet at all. Every AWS API the instances call
  (``WORKER_AWS_SERVICES``) gets an endpoint: S3 a gateway endpoint (free; it also serves Amazon Linux 2023's
  package repositories), the others interface endpoints (billed per hour per AZ, see README). KMS only with
  client-side encryption: otherwise SQS and S3 call KMS on the worker's behalf. The CloudWatch agent sends logs
  and EMF metrics to CloudWatch Logs (metrics are extracted there), so no Monitoring endpoint is needed.
- "public": public subnets, instances get a public IPv4 address and talk to AWS over the internet. No endpoint
  or NAT charges (each running instance's public IPv4 address is billed). For sandboxes.
Or pass an existing VPC, and subnets to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Every AWS API an instance of the fleet calls (endpoint name "com.amazonaws.<region>.<service>"), with the
# construct id of its endpoint and who calls it. The one list the isolated network's endpoints are made from.
WORKER_AWS_SERVICES: dict[str, tuple[str, str]] = {
    "s3": ("S3", "the worker (video objects, outputs) and user data (the worker asset, dnf's repositories)"),
    "sqs": ("Sqs", "the worker: receive, delete, change visibility, queue attributes"),
    "autoscaling": ("AutoScaling", "the worker: scale-in protection, lifecycle actions"),
    "logs": ("Logs", "the CloudWatch agent: the worker's log file and its EMF metrics"),
    "ssm": ("Ssm", "the SSM agent: Session Manager, our replacement for SSH"),
    "ssmmessages": ("SsmMessages", "the SSM agent: Session Manager's channels"),
    "ec2messages": ("Ec2Messages", "the SSM agent: Run Command"),
}
CLIENT_SIDE_ENCRYPTION_SERVICES: dict[str, tuple[str, str]] = {
    "kms": ("Kms", "the worker: kms:Decrypt of client-side encrypted message bodies"),
}
GATEWAY_SERVICES = {"s3": ec2.GatewayVpcEndpointAwsService.S3}


def worker_aws_services(*, client_side_encryption: bool = False) -> list[str]:
    """The AWS services the fleet's instances call in this configuration."""
    extra = list(CLIENT_SIDE_ENCRYPTION_SERVICES) if client_side_encryption else []
    return [*WORKER_AWS_SERVICES, *extra]


class FleetNetwork(Construct):
    """A VPC for the worker fleet. Attributes: ``vpc``, ``subnets``, ``public_ip`` (instances need one)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        mode: Literal["isolated", "public"] = "isolated",
        flow_logs_bucket: s3.IBucket,
        max_azs: int = 2,
        existing_vpc: ec2.IVpc | None = None,
        existing_subnets: ec2.SubnetSelection | None = None,
        services: Sequence[str] | None = None,
    ) -> None:
        """:param services: AWS services that get an endpoint in isolated mode. Default: ``worker_aws_services()``."""
        super().__init__(scope, construct_id)
        if mode not in ("isolated", "public"):
            raise ValueError(f"FleetNetwork '{self.node.path}': mode is {mode!r}, allowed 'isolated' or 'public'.")
        self.public_ip = mode == "public"
        self.endpoints_security_group: ec2.SecurityGroup | None = None
        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        if existing_vpc is not None:
            self.vpc = existing_vpc
            self.subnets = existing_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            return

        subnet_type = ec2.SubnetType.PUBLIC if self.public_ip else ec2.SubnetType.PRIVATE_ISOLATED
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=max_azs,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="workers", subnet_type=subnet_type, cidr_mask=24)],
            flow_logs={
                "ToS3": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_s3(flow_logs_bucket, "vpc-flow-logs/"),
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        self.subnets = ec2.SubnetSelection(subnet_type=subnet_type)
        for subnet in [*self.vpc.public_subnets, *self.vpc.isolated_subnets]:
            # With a concrete account and region, the zones are names from cdk.context.json (CDK's lookup, kept
            # on purpose so that a deploy never moves the subnets), which cfn-lint's W3010 warns about.
            subnet.node.default_child.add_metadata(  # type: ignore[union-attr]
                "cfn-lint", {"config": {"ignore_checks": ["W3010"]}}
            )
        if not self.public_ip:
            self._add_endpoints(services if services is not None else worker_aws_services())

    def allow_endpoints_from(self, peer: ec2.ISecurityGroup) -> None:
        """Let instances in ``peer`` call the interface endpoints over HTTPS."""
        if self.endpoints_security_group is not None:
            self.endpoints_security_group.add_ingress_rule(peer, ec2.Port.tcp(443), "HTTPS from the queue workers")

    def _add_endpoints(self, services: Sequence[str]) -> None:
        """A gateway endpoint or an interface endpoint (private DNS) for each service, in the workers' subnets."""
        named = WORKER_AWS_SERVICES | CLIENT_SIDE_ENCRYPTION_SERVICES
        unknown = sorted(set(services) - set(named))
        if unknown:
            raise ValueError(f"FleetNetwork '{self.node.path}': services {unknown} unknown, allowed {sorted(named)}.")
        # One security group for all interface endpoints; only the workers may reach them (allow_endpoints_from).
        self.endpoints_security_group = ec2.SecurityGroup(
            self,
            "EndpointsSecurityGroup",
            vpc=self.vpc,
            description="Interface endpoints: HTTPS from the queue workers only",
            allow_all_outbound=False,
        )
        for service in services:
            endpoint_id = named[service][0]
            if service in GATEWAY_SERVICES:
                self.endpoints[service] = self.vpc.add_gateway_endpoint(endpoint_id, service=GATEWAY_SERVICES[service])
                continue
            self.endpoints[service] = self.vpc.add_interface_endpoint(
                endpoint_id,
                service=ec2.InterfaceVpcEndpointAwsService(service),
                subnets=self.subnets,
                private_dns_enabled=True,
                security_groups=[self.endpoints_security_group],
                open=False,
            )
