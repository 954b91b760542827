"""WorkerFleetStack's security boundary: the instance role, the endpoints' policies and the workers' egress."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from sqs_decoupling.worker_fleet.fleet_network import AL2023_REPOSITORY_BUCKET
from sqs_decoupling.worker_fleet.worker_fleet import SESSION_MANAGER_CHANNEL_ACTIONS, SESSION_MANAGER_INSTANCE_ACTION

STACK = "WorkerFleetStack"


@pytest.fixture(scope="module")
def isolated(templates: dict[str, Template]) -> Template:
    return templates[STACK]


@pytest.fixture(scope="module")
def public(synth_with: Any) -> Template:
    return synth_with(network_mode="public")[STACK]


def _instance_role(template: Template) -> dict[str, Any]:
    roles = template.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": Match.object_like(
                    {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
                )
            }
        },
    )
    assert len(roles) == 1
    return next(iter(roles.values()))["Properties"]  # type: ignore[no-any-return]


def _workers_security_group(template: Template) -> str:
    found = template.find_resources(
        "AWS::EC2::SecurityGroup", {"Properties": {"GroupDescription": Match.string_like_regexp("^Queue workers")}}
    )
    assert len(found) == 1
    return next(iter(found))


def _egress(template: Template) -> list[dict[str, Any]]:
    workers = _workers_security_group(template)
    inline = template.to_json()["Resources"][workers]["Properties"].get("SecurityGroupEgress", [])
    separate = [
        rule["Properties"]
        for rule in template.find_resources("AWS::EC2::SecurityGroupEgress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [workers, "GroupId"]}
    ]
    return [*inline, *separate]


def test_the_instance_role_has_session_manager_only_not_the_managed_ssm_policy(isolated: Template) -> None:
    # GIVEN the workers' instance role
    role = _instance_role(isolated)
    # THEN no managed policy (AmazonSSMManagedInstanceCore would allow ssm:GetParameter(s) on every parameter)
    assert "ManagedPolicyArns" not in role
    # AND one inline policy with exactly Session Manager's actions: the agent's heartbeat on this account's
    # instances, the channels (no resource-level permissions) on *
    instances = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ec2:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":instance/*",
            ],
        ]
    }
    assert role["Policies"] == [
        {
            "PolicyName": "SessionManager",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": SESSION_MANAGER_INSTANCE_ACTION, "Resource": instances},
                    {"Effect": "Allow", "Action": list(SESSION_MANAGER_CHANNEL_ACTIONS), "Resource": "*"},
                ],
            },
        }
    ]
    assert not [action for action in SESSION_MANAGER_CHANNEL_ACTIONS if action.startswith("ssm:Get")]


def test_every_endpoint_lets_only_this_accounts_principals_reach_this_accounts_resources(isolated: Template) -> None:
    # GIVEN the isolated network's endpoints (S3 gateway, interface endpoints)
    endpoints = isolated.find_resources("AWS::EC2::VPCEndpoint")
    assert len(endpoints) >= 6
    for logical_id, endpoint in endpoints.items():
        statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
        # THEN each has a policy whose statement for everything is limited to this account, both sides
        assert {
            "Sid": "ThisAccountsPrincipalsToThisAccountsResources",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}},
                "StringEqualsIfExists": {"aws:ResourceAccount": {"Ref": "AWS::AccountId"}},
            },
        } in statements, logical_id


def test_the_s3_gateway_also_serves_amazon_linux_package_repositories_read_only(isolated: Template) -> None:
    # GIVEN the S3 gateway endpoint (dnf fetches python3.11 from AL2023's repository bucket, anonymously)
    gateway = isolated.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}})
    statements = next(iter(gateway.values()))["Properties"]["PolicyDocument"]["Statement"]
    repositories = [s for s in statements if s.get("Sid") == "AmazonLinuxPackageRepositories"]
    # THEN the only other statement allows s3:GetObject on that bucket, nothing more
    assert len(statements) == 2
    assert repositories[0]["Action"] == "s3:GetObject"
    resource = str(repositories[0]["Resource"])
    assert AL2023_REPOSITORY_BUCKET.split("{")[0] in resource and "de612dc2/*" in resource


def test_isolated_workers_send_https_only_to_the_endpoints_and_s3(isolated: Template) -> None:
    # GIVEN the workers' egress rules in isolated mode
    egress = _egress(isolated)
    endpoints_group = next(
        iter(
            isolated.find_resources(
                "AWS::EC2::SecurityGroup",
                {"Properties": {"GroupDescription": Match.string_like_regexp("^Interface endpoints")}},
            )
        )
    )
    # THEN HTTPS to the endpoints' security group and to S3's prefix list (read at deploy time), nothing else
    assert len(egress) == 2
    assert all(rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"] == 443 for rule in egress)
    assert {"Fn::GetAtt": [endpoints_group, "GroupId"]} in [rule.get("DestinationSecurityGroupId") for rule in egress]
    prefix_list = next(rule["DestinationPrefixListId"] for rule in egress if "DestinationPrefixListId" in rule)
    assert prefix_list["Fn::GetAtt"][1] == "PrefixLists.0.PrefixListId"
    assert not [rule for rule in egress if "CidrIp" in rule]


def test_public_workers_send_https_to_the_internet(public: Template) -> None:
    # GIVEN public mode (no endpoints): the workers reach AWS's public endpoints
    egress = _egress(public)
    # THEN HTTPS anywhere, and nothing else
    assert [(rule["CidrIp"], rule["FromPort"], rule["ToPort"]) for rule in egress] == [("0.0.0.0/0", 443, 443)]
