"""FleetNetwork: where the queue workers run. No inbound rules anywhere; two ways out to AWS's APIs.

- "isolated" (default): private isolated subnets, no internet at all. Instances reach S3 through a gateway
  endpoint (free; it also serves Amazon Linux 2023's package repositories) and SQS, Auto Scaling and Systems
  Manager through interface endpoints (billed per hour per AZ, see README). No KMS or CloudWatch endpoint is
  needed: SQS and S3 call KMS on the worker's behalf, and the worker publishes no metrics itself.
- "public": public subnets, instances get a public IPv4 address and talk to AWS over the internet. No endpoint
  or NAT charges (each running instance's public IPv4 address is billed). For sandboxes.
Or pass an existing VPC, and subnets to use.
"""

from __future__ import annotations

from typing import Literal

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

INTERFACE_ENDPOINTS = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "AutoScaling": ec2.InterfaceVpcEndpointAwsService.AUTOSCALING,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2Messages": ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
}


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
    ) -> None:
        super().__init__(scope, construct_id)
        if mode not in ("isolated", "public"):
            raise ValueError(f"FleetNetwork '{self.node.path}': mode is {mode!r}, allowed 'isolated' or 'public'.")
        self.public_ip = mode == "public"
        self.endpoints_security_group: ec2.SecurityGroup | None = None
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
        if not self.public_ip:
            self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
            # One security group for all interface endpoints; only the workers may reach them (allow_endpoints_from).
            self.endpoints_security_group = ec2.SecurityGroup(
                self,
                "EndpointsSecurityGroup",
                vpc=self.vpc,
                description="Interface endpoints: HTTPS from the queue workers only",
                allow_all_outbound=False,
            )
            for name, service in INTERFACE_ENDPOINTS.items():
                self.vpc.add_interface_endpoint(
                    name,
                    service=service,
                    subnets=self.subnets,
                    private_dns_enabled=True,
                    security_groups=[self.endpoints_security_group],
                    open=False,
                )

    def allow_endpoints_from(self, peer: ec2.ISecurityGroup) -> None:
        """Let instances in ``peer`` call the interface endpoints over HTTPS."""
        if self.endpoints_security_group is not None:
            self.endpoints_security_group.add_ingress_rule(peer, ec2.Port.tcp(443), "HTTPS from the queue workers")
