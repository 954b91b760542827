"""FleetNetwork: where the queue workers run. No inbound rules anywhere; two ways out to AWS's APIs.

- "isolated" (default): private isolated subnets, no internet at all. Every AWS API the instances call
  (``WORKER_AWS_SERVICES``) gets an endpoint: S3 a gateway endpoint (free; it also serves Amazon Linux 2023's package
  repositories), the others interface endpoints (billed per hour per AZ, see docs/worker-fleet.md). KMS only with
  client-side encryption: otherwise SQS and S3 call KMS on the worker's behalf. The CloudWatch agent sends logs and
  EMF metrics to CloudWatch Logs (metrics are extracted there), so no Monitoring endpoint is needed.
- "public": public subnets, instances get a public IPv4 address and talk to AWS over the internet. No endpoint or NAT
  charges (each running instance's public IPv4 address is billed). For sandboxes.
Or pass an existing VPC, and subnets to use.

In isolated mode the endpoints are also a boundary: each has a policy that lets requests reach only this
account's resources (plus, for S3, Amazon Linux 2023's package repositories), and the workers may send HTTPS
only to the interface endpoints and to S3's prefix list. Stolen instance credentials cannot copy data to a
bucket or queue of another account from inside the VPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from sqs_decoupling.common.acknowledgements import acknowledge, acknowledge_control, wildcard_finding
from sqs_decoupling.common.log_groups import encrypted_log_group

# Amazon Linux 2023's package repositories are this AWS-owned bucket in each region (dnf reaches it through the
# S3 gateway endpoint, anonymously), see the AL2023 user guide's "S3 gateway endpoint" section.
AL2023_REPOSITORY_BUCKET = "al2023-repos-{region}-de612dc2"

# Every AWS API an instance of the fleet calls (endpoint name "com.amazonaws.<region>.<service>"), with the
# construct id of its endpoint and who calls it. The one list the isolated network's endpoints are made from.
WORKER_AWS_SERVICES: dict[str, tuple[str, str]] = {
    "s3": ("S3", "the worker (video objects, outputs) and user data (the worker asset, dnf's repositories)"),
    "sqs": ("Sqs", "the worker: receive, delete, change visibility, queue attributes"),
    "autoscaling": ("AutoScaling", "the worker: scale-in protection, lifecycle actions"),
    "logs": ("Logs", "the CloudWatch agent: the worker's log file and its EMF metrics"),
    "ssm": ("Ssm", "the SSM agent: Session Manager, our replacement for SSH"),
    "ssmmessages": ("SsmMessages", "the SSM agent: Session Manager's channels"),
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
        log_retention_days: int = 365,
    ) -> None:
        """:param services: AWS services that get an endpoint in isolated mode. Default: ``worker_aws_services()``.
        :param log_retention_days: retention of the log group of the S3 prefix-list lookup (isolated mode).
        """
        super().__init__(scope, construct_id)
        if mode not in ("isolated", "public"):
            raise ValueError(f"FleetNetwork '{self.node.path}': mode is {mode!r}, allowed 'isolated' or 'public'.")
        self.public_ip = mode == "public"
        self.endpoints_security_group: ec2.SecurityGroup | None = None
        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        self.log_retention_days = log_retention_days
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
            cast(ec2.CfnSubnet, subnet.node.default_child).add_metadata(
                "cfn-lint", {"config": {"ignore_checks": ["W3010"]}}
            )
        if self.public_ip:
            _acknowledge_public_subnets(self.vpc)
        _acknowledge_default_security_group_handler(Stack.of(self))
        if not self.public_ip:
            self._add_endpoints(services if services is not None else worker_aws_services())
            _scope_endpoint_policies(self.vpc)

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

    def allow_https_out(self, workers: ec2.SecurityGroup) -> None:
        """Let ``workers`` send HTTPS: in isolated mode only to the interface endpoints and S3's prefix list."""
        if self.endpoints_security_group is None:
            workers.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")
            return
        workers.add_egress_rule(self.endpoints_security_group, ec2.Port.tcp(443), "HTTPS to the interface endpoints")
        workers.add_egress_rule(
            ec2.Peer.prefix_list(self._s3_prefix_list_id()), ec2.Port.tcp(443), "HTTPS to S3 (gateway endpoint)"
        )

    def _s3_prefix_list_id(self) -> str:
        """The id of the AWS-managed prefix list of S3 in this region, read at deploy time.

        CloudFormation cannot name it and a synth-time lookup would need AWS credentials, so a custom resource
        calls ec2:DescribeManagedPrefixLists (read-only) when the stack is deployed.
        """
        region = Stack.of(self).region
        lookup = cr.AwsCustomResource(
            self,
            "S3PrefixList",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{region}.s3"]}]},
                physical_resource_id=cr.PhysicalResourceId.of(f"s3-prefix-list-{region}"),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
            log_group=encrypted_log_group(self, "S3PrefixListLogs", retention_days=self.log_retention_days),
        )
        acknowledge(
            lookup,
            wildcard_finding("*"),
            "ec2:DescribeManagedPrefixLists has no resource-level permissions; it only reads.",
        )
        _acknowledge_sdk_call_handler(Stack.of(self))
        return lookup.get_response_field("PrefixLists.0.PrefixListId")


def _scope_endpoint_policies(vpc: ec2.IVpc) -> None:
    """Give every VPC endpoint of ``vpc`` a policy: requests by this account's principals to this account's resources.

    aws:ResourceAccount is checked where the request carries it (S3, SQS, KMS, Logs, Auto Scaling ...); Session
    Manager's channel APIs name no resource, so there only the principal's account is checked. The CDK assets
    bucket is this account's; AL2023's package repositories get their own read-only statement.
    """
    stack = Stack.of(vpc)
    this_account = {"StringEquals": {"aws:PrincipalAccount": stack.account}}
    for endpoint in vpc.node.find_all():
        if not isinstance(endpoint, ec2.GatewayVpcEndpoint | ec2.InterfaceVpcEndpoint):
            continue
        endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="ThisAccountsPrincipalsToThisAccountsResources",
                principals=[iam.AnyPrincipal()],
                actions=["*"],
                resources=["*"],
                conditions={**this_account, "StringEqualsIfExists": {"aws:ResourceAccount": stack.account}},
            )
        )
        if isinstance(endpoint, ec2.GatewayVpcEndpoint):
            repositories = AL2023_REPOSITORY_BUCKET.format(region=stack.region)
            endpoint.add_to_policy(
                iam.PolicyStatement(
                    sid="AmazonLinuxPackageRepositories",
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:GetObject"],
                    resources=[f"arn:{stack.partition}:s3:::{repositories}/*"],
                )
            )


def _acknowledge_public_subnets(vpc: ec2.IVpc) -> None:
    for subnet in vpc.public_subnets:
        acknowledge_control(
            subnet,
            "CT.EC2.PR.11",
            "Public mode is the sandbox option: instances reach AWS over the internet, without NAT or endpoints, "
            "so the subnet gives them public addresses; no security group allows anything in.",
        )


def _acknowledge_default_security_group_handler(stack: Stack) -> None:
    """CDK removes the VPC default security group's rules with a custom-resource Lambda of its own."""
    provider = stack.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
    if provider is not None:
        acknowledge_control(
            provider,
            "CT.LAMBDA.PR.3",
            "CDK's handler that empties the VPC's default security group runs only while CloudFormation deploys "
            "and calls only the EC2 API; CDK creates it outside any VPC.",
        )


def _acknowledge_sdk_call_handler(stack: Stack) -> None:
    """CDK runs AwsCustomResource calls with a stack-wide singleton Lambda; its findings are CDK's design."""
    handler = stack.node.find_child("AWS679f53fac002430cb0da5b7982bd2287")
    why = "CDK's AwsCustomResource handler runs only while CloudFormation deploys (here: one read-only EC2 call)"
    acknowledge(
        handler,
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        f"{why}; CDK gives its role AWSLambdaBasicExecutionRole.",
    )
    acknowledge(handler, "Serverless::Serverless-LambdaDLQ", f"{why}; CloudFormation invokes it and sees failures.")
    acknowledge(handler, "Serverless::Serverless-LambdaDefaultMemorySize", f"{why}; CDK sizes it.")
    acknowledge(handler, "Serverless::Serverless-LambdaTracing", f"{why}; there is nothing to trace.")
    acknowledge_control(handler, "CT.LAMBDA.PR.3", f"{why}; CDK creates it outside any VPC.")
