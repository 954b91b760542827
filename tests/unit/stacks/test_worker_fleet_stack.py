"""WorkerFleetStack: an EC2 Auto Scaling group of queue workers, scaled on the queue's depth."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from sqs_decoupling.worker_fleet.fleet_network import WORKER_AWS_SERVICES, worker_aws_services
from tools.scaling.policy import evaluate_step_policy
from tools.scaling.template import fleet_from_template

STACK = "WorkerFleetStack"


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    return templates[STACK]


@pytest.fixture(scope="module")
def backlog_template(synth_with: Any) -> Template:
    """The same stack configured for backlog-per-instance target tracking, in public subnets."""
    return synth_with(scaling_mode="backlog", network_mode="public")[STACK]


def _one(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(resource_type, {"Properties": props} if props else {})
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.items()))


def _jobs_queue(template: Template) -> str:
    return _one(template, "AWS::SQS::Queue", {"RedrivePolicy": Match.any_value()})[0]


def _group(template: Template) -> str:
    return _one(template, "AWS::AutoScaling::AutoScalingGroup")[0]


def _worker_log_group(template: Template) -> str:
    return _one(template, "AWS::Logs::LogGroup", {"LogGroupName": "/WorkerFleetStack/video-worker"})[0]


def test_scale_out_alarm_watches_visible_messages_of_the_jobs_queue_every_minute(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [_jobs_queue(template), "QueueName"]}}],
            "Period": 60,
            "Statistic": "Maximum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "EvaluationPeriods": 1,
            "AlarmActions": [{"Ref": Match.string_like_regexp("ScaleOutOnBacklog")}],
        },
    )


def test_scale_out_adds_1_2_4_instances_at_1_20_100_visible_messages(template: Template) -> None:
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "AutoScalingGroupName": {"Ref": _group(template)},
            "PolicyType": "StepScaling",
            "AdjustmentType": "ChangeInCapacity",
            "EstimatedInstanceWarmup": 180,
        },
    )
    # The decision AWS takes, through the project's one evaluation of the synthesized policy and alarm
    # (tools.scaling.policy): the single step containing the backlog applies, capped at worker_max_instances.
    fleet = fleet_from_template(template.to_json())
    rule = fleet.rule("ScaleOutOnBacklog")
    added = {
        visible: evaluate_step_policy(
            rule.policy, rule.alarm, visible, desired=0, minimum=0, maximum=fleet.max_size
        ).desired
        for visible in (1, 19, 20, 25, 99, 100, 1000)
    }
    assert added == {1: 1, 19: 1, 20: 2, 25: 2, 99: 2, 100: 4, 1000: 4}
    assert not rule.alarm.breaches(0)


def test_scale_in_to_zero_only_after_10_minutes_with_nothing_visible_and_nothing_in_flight(template: Template) -> None:
    queue_dimension = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [_jobs_queue(template), "QueueName"]}}]
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "ComparisonOperator": "LessThanOrEqualToThreshold",
            "Threshold": 0,
            "EvaluationPeriods": 10,
            "DatapointsToAlarm": 10,
            "Metrics": Match.array_with(
                [
                    Match.object_like({"Expression": "visible + inflight", "ReturnData": True}),
                    {
                        "Id": "visible",
                        "MetricStat": {
                            "Metric": {
                                "Dimensions": queue_dimension,
                                "MetricName": "ApproximateNumberOfMessagesVisible",
                                "Namespace": "AWS/SQS",
                            },
                            "Period": 60,
                            "Stat": "Maximum",
                        },
                        "ReturnData": False,
                    },
                    {
                        "Id": "inflight",
                        "MetricStat": {
                            "Metric": {
                                "Dimensions": queue_dimension,
                                "MetricName": "ApproximateNumberOfMessagesNotVisible",
                                "Namespace": "AWS/SQS",
                            },
                            "Period": 60,
                            "Stat": "Maximum",
                        },
                        "ReturnData": False,
                    },
                ]
            ),
            "AlarmActions": [{"Ref": Match.string_like_regexp("ScaleInWhenIdle")}],
        },
    )
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "AdjustmentType": "PercentChangeInCapacity",
            "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -100}],
        },
    )


def test_scale_in_removes_one_instance_while_a_whole_one_is_spare_for_5_minutes(template: Template) -> None:
    queue = {"Name": "QueueName", "Value": {"Fn::GetAtt": [_jobs_queue(template), "QueueName"]}}

    def query(query_id: str, namespace: str, name: str, dimension: dict[str, Any], stat: str) -> dict[str, Any]:
        metric = {"Dimensions": [dimension], "MetricName": name, "Namespace": namespace}
        return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat}, "ReturnData": False}

    # GIVEN the default stack (c7g.large: 2 jobs per instance)
    # THEN an alarm reads spare instances = InService - (visible + in flight) / 2 at the busiest second of each minute
    # and fires when one whole instance was spare in each of 5 minutes, with more than one instance in service
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Metrics": Match.array_with(
                [
                    Match.object_like(
                        {"Expression": "IF(inservice > 1, inservice - (visible + inflight) / 2, 0)", "ReturnData": True}
                    ),
                    query("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum"),
                    query("inflight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue, "Maximum"),
                    query(
                        "inservice",
                        "AWS/AutoScaling",
                        "GroupInServiceInstances",
                        {"Name": "AutoScalingGroupName", "Value": {"Ref": _group(template)}},
                        "Minimum",
                    ),
                ]
            ),
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "EvaluationPeriods": 5,
            "DatapointsToAlarm": 5,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": Match.string_like_regexp("ScaleInOnSpareCapacity")}],
        },
    )
    # AND it removes one instance, then waits 300 s before the next, so a datapoint from before a scale-in (SQS's
    # metrics arrive a minute late) cannot remove a second one
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "AutoScalingGroupName": {"Ref": _group(template)},
            "PolicyType": "SimpleScaling",
            "AdjustmentType": "ChangeInCapacity",
            "ScalingAdjustment": -1,
            "Cooldown": "300",
        },
    )


def test_the_spare_capacity_rule_divides_by_the_workers_job_slots(synth_with: Any) -> None:
    # GIVEN instances sized for 8 jobs at once (the configuration of the job slots test below)
    template = synth_with(worker_instance_type="m7i.xlarge", worker_profile="preview")[STACK]
    # THEN the spare-capacity alarm counts 8 messages as one instance's work
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Metrics": Match.array_with([Match.object_like({"Expression": Match.string_like_regexp(r"\) / 8, 0\)$")})])},
    )


def test_backlog_mode_tracks_visible_per_in_service_instance_and_starts_from_zero(backlog_template: Template) -> None:
    group = _group(backlog_template)
    backlog_template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                # acceptable latency 600 s / 60 s per job
                "TargetValue": 10,
                "CustomizedMetricSpecification": {
                    "Metrics": [
                        Match.object_like(
                            {"Id": "visible", "MetricStat": Match.object_like({"Stat": "Sum"}), "ReturnData": False}
                        ),
                        Match.object_like(
                            {
                                "Id": "inservice",
                                "MetricStat": {
                                    "Metric": {
                                        "Namespace": "AWS/AutoScaling",
                                        "MetricName": "GroupInServiceInstances",
                                        "Dimensions": [{"Name": "AutoScalingGroupName", "Value": {"Ref": group}}],
                                    },
                                    "Stat": "Average",
                                },
                            }
                        ),
                        {
                            "Id": "backlog_per_instance",
                            "Expression": "visible / inservice",
                            "Label": "Visible messages per in-service instance",
                            "ReturnData": True,
                        },
                    ]
                },
            },
        },
    )
    backlog_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Metrics": Match.array_with([Match.object_like({"Expression": "IF(inservice == 0, visible, 0)"})]),
            "Threshold": 1,
        },
    )
    backlog_template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "AdjustmentType": "ExactCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
        },
    )
    # AND no step-scaling alarm on the plain backlog, and no spare-capacity rule, is left in this mode
    for policy in ("ScaleOutOnBacklog", "ScaleInOnSpareCapacity"):
        assert not backlog_template.find_resources(
            "AWS::CloudWatch::Alarm",
            {"Properties": {"AlarmActions": [{"Ref": Match.string_like_regexp(policy)}]}},
        )


def test_the_launch_template_requires_imdsv2_encrypts_the_root_volume_and_has_no_key_pair(template: Template) -> None:
    _, launch_template = _one(template, "AWS::EC2::LaunchTemplate")
    data = launch_template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 30, "VolumeType": "gp3"},
        }
    ]
    assert "KeyName" not in data
    assert data["Monitoring"] == {"Enabled": True}
    assert data["InstanceType"] == "c7g.large"
    # Amazon Linux 2023 for arm64, resolved from AWS's public SSM parameter at deploy time (no lookup at synth)
    parameters = template.to_json()["Parameters"]
    image_parameter = data["ImageId"]["Ref"]
    assert parameters[image_parameter]["Default"] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"


def test_the_group_scales_to_zero_uses_the_launch_template_and_reports_events(template: Template) -> None:
    template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "MinSize": "0",
            "MaxSize": "4",
            "LaunchTemplate": {
                "LaunchTemplateId": {"Ref": Match.string_like_regexp("LaunchTemplate")},
                "Version": Match.any_value(),
            },
            "MetricsCollection": [{"Granularity": "1Minute"}],
            "NotificationConfigurations": [
                Match.object_like({"TopicARN": {"Ref": Match.string_like_regexp("AlarmTopic")}})
            ],
        },
    )


def test_a_termination_lifecycle_hook_gives_workers_time_to_drain(template: Template) -> None:
    template.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "AutoScalingGroupName": {"Ref": _group(template)},
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "LifecycleHookName": "drain-jobs-before-termination",
            "DefaultResult": "CONTINUE",
            "HeartbeatTimeout": 600,
        },
    )


def test_no_security_group_has_an_inbound_rule_from_anywhere(template: Template) -> None:
    for logical_id, group in template.find_resources("AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert "CidrIp" not in rule, logical_id
    assert not template.find_resources("AWS::EC2::SecurityGroupIngress", {"Properties": {"CidrIp": Match.any_value()}})
    # the workers' group has none at all; only the endpoints accept HTTPS, from the workers
    workers_sg, workers = _one(
        template, "AWS::EC2::SecurityGroup", {"GroupDescription": Match.string_like_regexp("^Queue workers")}
    )
    assert "SecurityGroupIngress" not in workers["Properties"]
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "SourceSecurityGroupId": {"Fn::GetAtt": [workers_sg, "GroupId"]},
        },
    )


def test_the_instance_role_is_limited_to_this_queue_key_bucket_prefixes_and_group(template: Template) -> None:
    role, _ = _one(
        template,
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
            )
        },
    )
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}}).values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    # one deny: the credentials are refused outside the fleet's VPC (isolated mode; the rehearsal evaluates it)
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:SourceVpc": {"Ref": _one(template, "AWS::EC2::VPC")[0]}},
        "BoolIfExists": {"aws:ViaAWSService": "false"},
    }
    by_action = {}
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action.setdefault(action, []).append(statement["Resource"])
    assert set(by_action) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucket",
        "autoscaling:SetInstanceProtection",
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:DescribeAutoScalingInstances",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    }
    assert by_action["logs:PutLogEvents"] == [{"Fn::GetAtt": [_worker_log_group(template), "Arn"]}]
    assert by_action["sqs:ReceiveMessage"] == [{"Fn::GetAtt": [_jobs_queue(template), "Arn"]}]
    group_arn = str(by_action["autoscaling:SetInstanceProtection"])
    assert f"{{'Ref': '{_group(template)}'}}" in group_arn
    # the service's ARN format: autoScalingGroup:<uuid>:autoScalingGroupName/<name> (a colon, not a slash)
    assert ":autoScalingGroup:*:autoScalingGroupName/" in group_arn
    assert by_action["autoscaling:DescribeAutoScalingInstances"] == ["*"]
    put_resources = str(by_action["s3:PutObject"])
    assert "/processed/*" in put_resources and "/failed/" not in put_resources
    assert "uploads" not in put_resources
    assert by_action["s3:AbortMultipartUpload"] == by_action["s3:PutObject"]
    # the assets bucket: exactly the two objects the user data downloads (dependencies, code), nothing else
    asset_reads = [str(r) for r in by_action["s3:GetObject"] if "cdk-hnb659fds-assets" in str(r)]
    downloaded = re.findall(r"^aws s3 cp .*/([0-9a-f]{64}\.zip)' ", _user_data(template), flags=re.MULTILINE)
    assert len(asset_reads) == 1 and len(downloaded) == 2
    assert sorted(re.findall(r"[0-9a-f]{64}\.zip", asset_reads[0])) == sorted(downloaded)
    assert str(by_action["s3:GetObject"]).count("cdk-hnb659fds-assets") == 2


def _endpoint_services(template: Template) -> dict[str, str]:
    """{service: endpoint type} from each endpoint's ServiceName, e.g. com.amazonaws.<region>.sqs -> sqs."""
    found = {}
    for endpoint in template.find_resources("AWS::EC2::VPCEndpoint").values():
        name = endpoint["Properties"]["ServiceName"]
        text = name if isinstance(name, str) else "".join(p for p in name["Fn::Join"][1] if isinstance(p, str))
        found[text.rsplit(".", 1)[-1]] = endpoint["Properties"].get("VpcEndpointType", "Gateway")
    return found


def test_isolated_mode_reaches_aws_through_endpoints_only(template: Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    # THEN every AWS API the instances call has an endpoint: S3 a gateway, the others interface endpoints
    expected = {service: "Interface" for service in WORKER_AWS_SERVICES} | {"s3": "Gateway"}
    assert _endpoint_services(template) == expected
    assert "logs" in expected  # the CloudWatch agent's logs and EMF metrics
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT", "LogDestinationType": "s3"})


def test_isolated_mode_with_client_side_encryption_reaches_kms_through_an_endpoint(synth_with: Any) -> None:
    # GIVEN client-side encryption: the worker calls kms:Decrypt itself (SQS and S3 do not do it for it)
    template = synth_with(client_side_encryption=True)[STACK]
    # THEN KMS has an interface endpoint too, next to every other service the instances call
    assert _endpoint_services(template) == {
        service: "Interface" for service in worker_aws_services(client_side_encryption=True)
    } | {"s3": "Gateway"}
    assert "kms" in _endpoint_services(template)


def test_every_service_the_instance_role_may_call_has_an_endpoint_in_isolated_mode(synth_with: Any) -> None:
    # GIVEN the fleet with every option that adds permissions
    template = synth_with(client_side_encryption=True)[STACK]
    role = _one(
        template,
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
            )
        },
    )[0]
    prefixes = {
        action.split(":")[0]
        for policy in template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}}).values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    }
    # THEN each API prefix the role allows is reachable without internet
    assert prefixes <= set(_endpoint_services(template)), prefixes - set(_endpoint_services(template))


def test_public_mode_has_no_endpoints_and_gives_instances_public_addresses(backlog_template: Template) -> None:
    backlog_template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    backlog_template.resource_count_is("AWS::EC2::NatGateway", 0)
    _, launch_template = _one(backlog_template, "AWS::EC2::LaunchTemplate")
    interfaces = launch_template["Properties"]["LaunchTemplateData"]["NetworkInterfaces"]
    assert interfaces[0]["AssociatePublicIpAddress"] is True


def _user_data(template: Template) -> str:
    _, launch_template = _one(template, "AWS::EC2::LaunchTemplate")
    parts = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else f"<{part}>" for part in parts)


def test_user_data_installs_the_worker_from_the_asset_and_runs_it_as_a_service(template: Template) -> None:
    script = _user_data(template)
    # set -euo pipefail before anything else, the asset download included
    assert script.splitlines()[:3] == ["#!/bin/bash", "set -euo pipefail", script.splitlines()[2]]
    assert script.splitlines()[2].startswith("aws s3 cp 's3://")
    for expected in (
        "dnf install -y python3.11 amazon-cloudwatch-agent",
        "ExecStart=/usr/bin/python3.11 -m sqs_decoupling.worker_fleet.worker",
        "Environment=WORKER_LIFECYCLE_HOOK=drain-jobs-before-termination",
        "Environment=WORKER_VISIBILITY_TIMEOUT=300",
        "systemctl enable --now video-worker",
    ):
        assert expected in script.splitlines(), expected


def test_the_service_drains_on_stop_and_logs_to_the_file_the_cloudwatch_agent_ships(template: Template) -> None:
    lines = _user_data(template).splitlines()
    # SIGTERM to the worker only (it drains); SIGKILL to what is left only after the drain time and a margin
    assert "KillMode=mixed" in lines and "KillSignal=SIGTERM" in lines
    drain = int(next(line for line in lines if line.startswith("Environment=WORKER_DRAIN_SECONDS=")).split("=")[-1])
    stop = int(next(line for line in lines if line.startswith("TimeoutStopSec=")).split("=")[1])
    assert stop >= drain + 30
    assert "StandardOutput=append:/var/log/video-worker/worker.log" in lines
    assert "StandardError=append:/var/log/video-worker/worker.log" in lines
    assert "Environment=WORKER_METRICS_ENDPOINT=udp://127.0.0.1:25888" in lines
    # the worker names the fleet's log group in its EMF documents, the name the group is created with
    assert "Environment=WORKER_METRICS_LOG_GROUP=/WorkerFleetStack/video-worker" in lines
    template.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/WorkerFleetStack/video-worker"})
    assert (
        "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s "
        "-c file:/opt/aws/amazon-cloudwatch-agent/etc/video-worker.json"
    ) in lines


def test_the_worker_log_group_is_kms_encrypted_with_the_logs_key_and_kept_a_year(template: Template) -> None:
    # GIVEN the worker's log group (the CloudWatch agent ships the worker's JSON lines and EMF documents there)
    group_id = _worker_log_group(template)
    group = template.to_json()["Resources"][group_id]
    # THEN it is kept log_retention_days (default 365, Control Tower's minimum) and deleted with the stack
    assert group["Properties"]["RetentionInDays"] == 365
    assert group["DeletionPolicy"] == "Delete"  # a fixed name: a retained group would block the next deploy
    assert group["Properties"]["LogGroupName"] == "/WorkerFleetStack/video-worker"
    # AND it is encrypted with the stack's logs key, which CloudWatch Logs may use for this account's groups only
    key_id = group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    statements = template.to_json()["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogsForThisAccountsLogGroups"]
    assert logs["Principal"] == {"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
    arn = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert arn["Fn::Join"][1][-1] == ":log-group:*"


def test_auto_scaling_may_publish_group_notifications_to_the_encrypted_topic_through_sns_only(
    template: Template,
) -> None:
    topic = _one(template, "AWS::SNS::Topic")[1]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    statements = template.to_json()["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    (statement,) = [s for s in statements if s.get("Sid") == "AllowAutoScalingNotificationsToTheEncryptedTopic"]
    # THEN the role is named by condition, not as the principal (KMS refuses a principal that does not exist, and
    # the role appears only with the account's first group), for this account, through SNS only
    assert statement["Principal"] == {"AWS": "*"}
    role = str(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    assert "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" in role
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert sorted(statement["Condition"]["StringEquals"]) == ["kms:CallerAccount", "kms:ViaService"]


def test_the_group_policy_acknowledgement_holds_in_every_environment() -> None:
    # GIVEN the group ARN cdk-nag flags (its * stands for the group id), in an agnostic and a concrete stack
    from aws_cdk import App, ArnFormat, Environment, Stack

    from sqs_decoupling.common.nag import finding_text

    agnostic = Stack(App(), "A")
    concrete = Stack(App(), "C", env=Environment(account="111122223333", region="eu-west-1"))

    def group_arn(stack: Stack) -> str:
        return stack.format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name="*:name/g",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    # THEN the finding id is written as cdk-nag writes each one (the whole app synthesizing in both is the
    # configuration matrix's job)
    assert finding_text(agnostic, group_arn(agnostic)) == (
        "arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:name/g"
    )
    assert finding_text(concrete, group_arn(concrete)).endswith(
        ":autoscaling:eu-west-1:111122223333:autoScalingGroup:*:name/g"
    )


def test_client_side_encryption_tells_the_workers_their_body_key(synth_with: Any) -> None:
    template = synth_with(client_side_encryption=True)[STACK]
    body_key, _ = _one(template, "AWS::KMS::Key", {"Description": Match.string_like_regexp("^Client-side")})
    _, launch_template = _one(template, "AWS::EC2::LaunchTemplate")
    script = str(launch_template["Properties"]["LaunchTemplateData"]["UserData"])
    assert "Environment=WORKER_BODY_KEY_ARN=" in script
    assert body_key in script


SPOT = {"worker_spot_percentage": 70, "worker_instance_types": "c7g.large,c7g.xlarge,m7g.large"}


def test_by_default_the_group_is_on_demand_with_the_launch_templates_one_type(template: Template) -> None:
    # GIVEN the default configuration (worker_spot_percentage 0, no worker_instance_types)
    group = template.to_json()["Resources"][_group(template)]["Properties"]
    # THEN the group names the launch template itself: no mixed instances policy, no capacity rebalancing
    assert "MixedInstancesPolicy" not in group
    assert "CapacityRebalance" not in group
    assert "LaunchTemplate" in group


def test_spot_gives_a_mixed_instances_policy_with_spot_above_the_on_demand_base_and_capacity_rebalancing(
    synth_with: Any,
) -> None:
    # GIVEN `-c worker_spot_percentage=70 -c worker_instance_types=c7g.large,c7g.xlarge,m7g.large`
    template = synth_with(**SPOT)[STACK]
    group = template.to_json()["Resources"][_group(template)]["Properties"]
    # THEN the group launches through a mixed instances policy over the three types: 30 % On-Demand above a base
    # of 0, the rest Spot from the pools least likely to be interrupted, and replaced early on a rebalance notice
    assert "LaunchTemplate" not in group
    assert group["CapacityRebalance"] is True
    policy = group["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "prioritized",
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 30,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }
    assert policy["LaunchTemplate"]["Overrides"] == [
        {"InstanceType": "c7g.large"},
        {"InstanceType": "c7g.xlarge"},
        {"InstanceType": "m7g.large"},
    ]
    launch_template_id, launch_template = _one(template, "AWS::EC2::LaunchTemplate")
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateId"] == {"Ref": launch_template_id}
    # AND the launch template's volumes are all encrypted (cdk-nag's EC26 cannot read a mixed policy: acknowledged)
    devices = launch_template["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"]
    assert devices and all(device["Ebs"]["Encrypted"] is True for device in devices)
    # AND every instance, whichever type, runs the job slots of the smallest type (2 vCPUs: 2 transcode jobs)
    lines = _user_data(template).splitlines()
    assert {"Environment=WORKER_CONCURRENCY=2", "Environment=WORKER_VCPUS=2"} <= set(lines)
    assert not [line for line in lines if "WORKER_FFMPEG_THREADS" in line]  # each instance sizes its threads


def test_an_on_demand_base_keeps_the_first_instances_on_demand(synth_with: Any) -> None:
    template = synth_with(worker_spot_percentage=100, worker_on_demand_base_capacity=1)[STACK]
    policy = template.to_json()["Resources"][_group(template)]["Properties"]["MixedInstancesPolicy"]
    # GIVEN only Spot above one On-Demand instance, and no list of types
    # THEN the first instance is On-Demand, every other Spot, all of worker_instance_type
    assert policy["InstancesDistribution"]["OnDemandBaseCapacity"] == 1
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    assert policy["LaunchTemplate"]["Overrides"] == [{"InstanceType": "c7g.large"}]


def test_the_workers_job_slots_follow_the_instance_types_vcpus_and_the_profile(synth_with: Any) -> None:
    # GIVEN a 4-vCPU, 16 GiB type running the preview profile (probe and thumbnail: two jobs per vCPU, as far as
    # the memory holds at 1.5 GiB a job: sqs_decoupling.contracts.worker_sizing)
    lines = _user_data(synth_with(worker_instance_type="m7i.xlarge", worker_profile="preview")[STACK]).splitlines()
    # THEN the instances run 8 jobs at once, and are told the vCPUs they were sized for
    assert "Environment=WORKER_CONCURRENCY=8" in lines
    assert "Environment=WORKER_VCPUS=4" in lines
