"""Static checks over the whole app: cdk-nag (AwsSolutions + Serverless), AWS Control Tower's proactive controls
(cfn-guard), the security properties of every template, and cfn-lint on every template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsii
import pytest
from aws_cdk import IPolicyValidationContextBeta1, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator

from sqs_decoupling.common.acknowledgements import acknowledge_control, recorded_acknowledgements
from sqs_decoupling.common.guard import PLUGIN_NAME, enable_control_tower_checks, rules_by_resource_type, rules_to_skip
from sqs_decoupling.common.nag import (
    NagAcknowledgement,
    acknowledge,
    acknowledgements,
    enable_nag_checks,
    unmatched_acknowledgements,
)
from sqs_decoupling.stacks.names import STACK_NAMES
from tests.conftest import SynthesizedApp, gates_selected, make_app, synthesize
from tests.support.cfn_lint import cfn_lint
from tests.support.schedule import SYNTHESIS
from tests.support.security import security_findings
from tests.unit.stacks.conftest import stack_configurations

# Every test here goes to the process that synthesizes the app (see tests/conftest.py), whichever fixture it reads.
pytestmark = pytest.mark.xdist_group(SYNTHESIS)

# Every cdk-nag and Control Tower finding the project acknowledges instead of fixing, with its reason. Adding one
# is a reviewed change to these lists; the tests below print the actual list when they differ.
EXPECTED_ACKNOWLEDGEMENTS = [
    NagAcknowledgement(
        "SecureQueueStack/Jobs/RedriveOperatorPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:GetMetricData has no resource-level permissions (the service authorization reference lists no resource type for it): sqs-redrive status reads the dead-letter queue's age of oldest message with it. Every SQS and KMS statement names this queue pair and its key.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoJobs/RedriveOperatorPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:GetMetricData has no resource-level permissions (the service authorization reference lists no resource type for it): sqs-redrive status reads the dead-letter queue's age of oldest message with it. Every SQS and KMS statement names this queue pair and its key.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/TranscodeJobs/RedriveOperatorPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:GetMetricData has no resource-level permissions (the service authorization reference lists no resource type for it): sqs-redrive status reads the dead-letter queue's age of oldest message with it. Every SQS and KMS statement names this queue pair and its key.",
    ),
    NagAcknowledgement(
        "SecureQueueStack/Jobs/DeadLetterQueue",
        "Serverless::Serverless-SQSRedrivePolicy",
        "This queue is itself the dead-letter queue; giving it one more would only move failed messages again.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/AccessLogs",
        "cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check",
        "S3 server access logs can only be delivered to a bucket encrypted with SSE-S3.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/AccessLogs",
        "cdk-validator-cfnguard::s3_bucket_logging_enabled_check",
        "This is the access-log bucket itself; logging its own access into itself would loop.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/AccessLogs",
        "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data (uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/AccessLogs",
        "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        "Nothing consumes events of the access-log bucket.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's bucket-notifications handler uses AWSLambdaBasicExecutionRole; CDK owns this function and role.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "cdk-validator-cfnguard::lambda_inside_vpc_check",
        "CDK's bucket-notifications handler runs only while CloudFormation deploys and calls only the S3 API; CDK creates it outside any VPC.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/ProcessedBucket",
        "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data (uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/ProcessedBucket",
        "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        "Nothing consumes events of this bucket: its objects are outputs.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/Uploads/Bucket",
        "cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check",
        "SSE-S3 by choice (the uploads bucket): uploaders need no KMS permission, and the queue key's policy can name the bucket (the same key on the bucket would make a circular dependency).",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/Uploads/Bucket",
        "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data (uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/Uploads/Bucket",
        "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        "Its ObjectCreated events do go to the jobs queue, but through CDK's Custom::S3BucketNotifications resource; the control reads only the bucket's own NotificationConfiguration property.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoJobs/DeadLetterQueue",
        "Serverless::Serverless-SQSRedrivePolicy",
        "This queue is itself the dead-letter queue; giving it one more would only move failed messages again.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Function",
        "Serverless::Serverless-LambdaDLQ",
        "Invoked synchronously by the SQS event source mapping: failed messages go to the queue's own dead-letter queue after maxReceiveCount; a function DLQ only applies to asynchronous invocations.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Function",
        "Serverless::Serverless-LambdaEventSourceMappingDestination",
        "SQS event source mappings cannot have an on-failure destination; the queue's redrive policy sends failed messages to its dead-letter queue instead.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Function",
        "cdk-validator-cfnguard::lambda_inside_vpc_check",
        "Outside a VPC on purpose: it calls only S3, SQS, KMS, X-Ray and CloudWatch, public AWS APIs over TLS with IAM; a VPC would need endpoints or NAT (billed hourly) and would not narrow what its role may do.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Role/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Role/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<ProcessedBucketDE59930C.Arn>/processed/*]",
        "Objects under processed/* only: the keys of a job are not known before the upload arrives.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Role/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<UploadsBucketC4B27CC7.Arn>/uploads/*]",
        "Objects under uploads/* only: the keys of a job are not known before the upload arrives.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack",
        "CloudFormation-Validate::W3010",
        "Literal AZs in template are the result of accessing stack.availabilityZones, this is expected and safe",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AccessLogs",
        "cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check",
        "S3 server access logs can only be delivered to a bucket encrypted with SSE-S3.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AccessLogs",
        "cdk-validator-cfnguard::s3_bucket_logging_enabled_check",
        "This is the access-log bucket itself; logging its own access into itself would loop.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AccessLogs",
        "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data (uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AccessLogs",
        "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        "Nothing consumes events of the access-log bucket.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's bucket-notifications handler uses AWSLambdaBasicExecutionRole; CDK owns this function and role.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "cdk-validator-cfnguard::lambda_inside_vpc_check",
        "CDK's bucket-notifications handler runs only while CloudFormation deploys and calls only the S3 API; CDK creates it outside any VPC.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Custom::VpcRestrictDefaultSGCustomResourceProvider",
        "cdk-validator-cfnguard::lambda_inside_vpc_check",
        "CDK's handler that empties the VPC's default security group runs only while CloudFormation deploys and calls only the EC2 API; CDK creates it outside any VPC.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Network/Vpc/ToS3",
        "CloudFormation-Validate::F3002",
        "AWS::EC2::FlowLog DestinationOptions accepts properties in camelCase, even they are listed as PascalCase in the spec",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Network/Vpc/ToS3",
        "CloudFormation-Validate::F3003",
        "AWS::EC2::FlowLog DestinationOptions accepts properties in camelCase, even they are listed as PascalCase in the spec",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/ProcessedBucket",
        "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data (uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/ProcessedBucket",
        "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        "Nothing consumes events of this bucket: its objects are outputs.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/TranscodeJobs/DeadLetterQueue",
        "Serverless::Serverless-SQSRedrivePolicy",
        "This queue is itself the dead-letter queue; giving it one more would only move failed messages again.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Uploads/Bucket",
        "cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check",
        "SSE-S3 by choice (the uploads bucket): uploaders need no KMS permission, and the queue key's policy can name the bucket (the same key on the bucket would make a circular dependency).",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Uploads/Bucket",
        "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data (uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Uploads/Bucket",
        "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        "Its ObjectCreated events do go to the jobs queue, but through CDK's Custom::S3BucketNotifications resource; the control reads only the bucket's own NotificationConfiguration property.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/Group",
        "cdk-validator-cfnguard::autoscaling_mixed_instances_policy_multiple_instance_types_check",
        "One instance type unless configured (worker_instance_types): the scaling thresholds and the cost model assume one job rate per instance; several types of the asset's architecture are an option.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/Group",
        "cdk-validator-cfnguard::autoscaling_multiple_az_check",
        "The group spans every subnet of the fleet (one per Availability Zone, two by default) through VPCZoneIdentifier; the control reads only the AvailabilityZones property.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/GroupActions",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/<WorkersGroupASG4E50A46C>]",
        "This group only: the * stands for the group's id, which the ARN needs and CloudFormation does not expose.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "Session Manager: ssmmessages' channel actions have no resource-level permissions.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]",
        "Session Manager: ssm:UpdateInstanceInformation names the instance, whose id is not known before it starts; instances of this account and region only.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "autoscaling:DescribeAutoScalingInstances has no resource-level permissions; it only reads.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<ProcessedBucketDE59930C.Arn>/processed/*]",
        "Objects under processed/* only: the keys of a job are not known before the upload arrives.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<UploadsBucketC4B27CC7.Arn>/uploads/*]",
        "Objects under uploads/* only: the keys of a job are not known before the upload arrives.",
    ),
]
# Only in the default (isolated) network mode: CDK's handler that looks up S3's prefix list for the worker egress rule.
ISOLATED_MODE_ACKNOWLEDGEMENTS = [
    NagAcknowledgement(
        "WorkerFleetStack/AWS679f53fac002430cb0da5b7982bd2287",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's AwsCustomResource handler runs only while CloudFormation deploys (here: one read-only EC2 call); CDK gives its role AWSLambdaBasicExecutionRole.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AWS679f53fac002430cb0da5b7982bd2287",
        "Serverless::Serverless-LambdaDLQ",
        "CDK's AwsCustomResource handler runs only while CloudFormation deploys (here: one read-only EC2 call); CloudFormation invokes it and sees failures.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AWS679f53fac002430cb0da5b7982bd2287",
        "Serverless::Serverless-LambdaDefaultMemorySize",
        "CDK's AwsCustomResource handler runs only while CloudFormation deploys (here: one read-only EC2 call); CDK sizes it.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AWS679f53fac002430cb0da5b7982bd2287",
        "Serverless::Serverless-LambdaTracing",
        "CDK's AwsCustomResource handler runs only while CloudFormation deploys (here: one read-only EC2 call); there is nothing to trace.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/AWS679f53fac002430cb0da5b7982bd2287",
        "cdk-validator-cfnguard::lambda_inside_vpc_check",
        "CDK's AwsCustomResource handler runs only while CloudFormation deploys (here: one read-only EC2 call); CDK creates it outside any VPC.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Network/S3PrefixList",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "ec2:DescribeManagedPrefixLists has no resource-level permissions; it only reads.",
    ),
]
# Only in public network mode: instances get public addresses (the sandbox option).
PUBLIC_MODE_ACKNOWLEDGEMENTS = [
    NagAcknowledgement(
        "WorkerFleetStack/Network/Vpc/workersSubnet1",
        "cdk-validator-cfnguard::subnet_auto_assign_public_ip_disabled_check",
        "Public mode is the sandbox option: instances reach AWS over the internet, without NAT or endpoints, so the subnet gives them public addresses; no security group allows anything in.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Network/Vpc/workersSubnet2",
        "cdk-validator-cfnguard::subnet_auto_assign_public_ip_disabled_check",
        "Public mode is the sandbox option: instances reach AWS over the internet, without NAT or endpoints, so the subnet gives them public addresses; no security group allows anything in.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/LaunchTemplate",
        "cdk-validator-cfnguard::ec2_launch_template_public_ip_disabled_check",
        "Public mode is the sandbox option: instances reach AWS over the internet, without NAT or endpoints, so they need a public address; no security group allows anything in.",
    ),
]
# CDK's own acknowledgements for its built-in template validator (added inside aws-cdk-lib's Vpc and FlowLog):
# the project cannot remove them, so they are exempt from the stale-acknowledgement check.
CDK_OWN_RULE_PREFIX = "CloudFormation-Validate::"


# The public network mode through the same gates as the default (isolated) one: in `make test`; the inner-loop tier
# checks the default app only (the configuration matrix also covers public mode).
NETWORK_MODES = ["isolated", pytest.param("public", marks=pytest.mark.slow)]
PUBLIC_MODE = {"network_mode": "public"}


def _stacks_changed_by(overrides: dict[str, Any]) -> list[str]:
    """The stacks whose settings or environment ``overrides`` change. Each other stack's template is the default
    app's, byte for byte (the configuration matrix relies on the same), and goes through every gate there."""
    default, changed = stack_configurations(make_app()), stack_configurations(make_app(overrides))
    return [stack for stack in default if changed[stack] != default[stack]]


@pytest.fixture(scope="module")
def public_mode(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The stacks that public network mode changes (the fleet's), synthesized once; with every gate when a test of
    the run checks them (``gates_selected``)."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out"),
        PUBLIC_MODE,
        stacks=_stacks_changed_by(PUBLIC_MODE),
        control_tower_checks=gates_selected(request.session),
    )


@pytest.mark.slow
@pytest.mark.gate
def test_every_stack_synthesizes_with_cdk_nag_and_only_the_reviewed_acknowledgements(
    synthesized: SynthesizedApp,
) -> None:
    # GIVEN the whole app synthesized with cdk-nag's AwsSolutions and Serverless packs
    # (the fixture raises ValidationFailed on any unacknowledged finding)
    found = acknowledgements(synthesized.app)
    # THEN the acknowledgements are exactly the reviewed list
    print("\n".join(f"{a.rule}  {a.path}  -- {a.reason}" for a in found))
    assert found == sorted(EXPECTED_ACKNOWLEDGEMENTS + ISOLATED_MODE_ACKNOWLEDGEMENTS)
    # AND the cloud assembly records the same ones (the stale check reads them there, not from the tree)
    assert recorded_acknowledgements(synthesized.app, synthesized.outdir) == found


def _synthesized_in(mode: str, request: pytest.FixtureRequest) -> SynthesizedApp:
    """The default synthesis (isolated mode) or the public mode's (the stacks it changes), synthesized only when a
    test asks for it."""
    return request.getfixturevalue("synthesized" if mode == "isolated" else "public_mode")  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.gate
def test_public_mode_synthesizes_with_only_the_reviewed_acknowledgements(
    public_mode: SynthesizedApp, synthesized: SynthesizedApp
) -> None:
    # GIVEN the app in public network mode, synthesized with cdk-nag and the Control Tower controls: the stacks the
    # mode changes, and the default app's others
    unchanged = [synthesized.app.node.find_child(stack) for stack in STACK_NAMES if stack not in public_mode.templates]
    found = sorted(
        [*acknowledgements(public_mode.app), *(ack for stack in unchanged for ack in acknowledgements(stack))]
    )
    # THEN the acknowledgements are the reviewed list, with the public-address ones instead of the lookup's
    print("\n".join(f"{a.rule}  {a.path}  -- {a.reason}" for a in found))
    assert found == sorted(EXPECTED_ACKNOWLEDGEMENTS + PUBLIC_MODE_ACKNOWLEDGEMENTS)


@pytest.mark.slow
@pytest.mark.gate
@pytest.mark.parametrize("mode", NETWORK_MODES)
def test_every_acknowledgement_covers_a_finding(mode: str, request: pytest.FixtureRequest) -> None:
    # GIVEN the app synthesized in each network mode; CDK's validation report records which acknowledgement
    # suppressed which finding, for every plugin
    built = _synthesized_in(mode, request)
    # WHEN the project's acknowledgements are compared with it
    stale = [
        ack
        for ack in unmatched_acknowledgements(built.app, built.outdir)
        if not ack.rule.startswith(CDK_OWN_RULE_PREFIX)
    ]
    # THEN none is stale: each one still covers a finding (a stale one would silently cover a future finding)
    assert stale == []


def test_a_stale_acknowledgement_is_reported(tmp_path: Path) -> None:
    # GIVEN an app whose queue acknowledges a finding it does not have (it has a TLS-only policy)
    app = make_app(outdir=tmp_path)
    enable_nag_checks(app)
    stack = Stack(app, "Tidy")
    queue = sqs.Queue(stack, "Queue", enforce_ssl=True, dead_letter_queue=None)
    acknowledge(queue, "AwsSolutions::AwsSolutions-SQS4", "Acknowledged although the queue is TLS-only already.")
    acknowledge(queue, "AwsSolutions::AwsSolutions-SQS3", "No dead-letter queue: this queue is only an example.")
    acknowledge(queue, "Serverless::Serverless-SQSRedrivePolicy", "No dead-letter queue: this queue is an example.")
    # ... and the app, outside any stack, one for a bucket it does not have
    acknowledge(app, "AwsSolutions::AwsSolutions-S1", "Acknowledged for every bucket, and there is none.")
    # WHEN it is synthesized and the acknowledgements are compared with the validation report
    app.synth()
    stale = unmatched_acknowledgements(app, tmp_path)
    # THEN exactly the ones that match nothing are reported
    assert [(ack.path, ack.rule) for ack in stale] == [
        ("", "AwsSolutions::AwsSolutions-S1"),
        ("Tidy/Queue", "AwsSolutions::AwsSolutions-SQS4"),
    ]


def test_an_unacknowledged_control_tower_finding_fails_synthesis_beside_acknowledged_ones(tmp_path: Path) -> None:
    # GIVEN an app with the Control Tower checks and two queues without dead-letter queues (CT.SQS.PR.1): one
    # acknowledged (so the app has an acknowledgement, after which CDK fails a report only for its findings of
    # severity "error"), the other not
    app = make_app(outdir=tmp_path)
    enable_control_tower_checks(app)
    stack = Stack(app, "Untidy")
    acknowledged = sqs.Queue(stack, "Acknowledged", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    acknowledge_control(acknowledged, "CT.SQS.PR.1", "No dead-letter queue: this queue is only an example.")
    sqs.Queue(stack, "Forgotten", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    # WHEN it is synthesized
    # THEN synthesis fails, naming the control
    with pytest.raises(Exception, match=r"ValidationFailed: ERROR \[CT.SQS.PR.1\]") as failure:
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (guard,) = [r for r in report["pluginReports"] if r["pluginName"] == PLUGIN_NAME]
    assert guard["conclusion"] == "failure"
    flagged = {c["constructPath"] for v in guard["violations"] for c in v["violatingConstructs"]}
    assert flagged == {"Untidy/Forgotten/Resource"}, failure.value


@pytest.mark.parametrize("mode", NETWORK_MODES)
def test_templates_have_the_security_properties(mode: str, request: pytest.FixtureRequest) -> None:
    # GIVEN every template of the app in each network mode
    built = _synthesized_in(mode, request)
    # THEN no managed SSM policy, a policy on every endpoint, the CreateGrant guard on every key, KMS and a year's
    # retention on every log group, no implicit log group, TLS for every topic action, retained dead-letter queues
    assert security_findings(built.templates) == []


def test_the_security_check_finds_each_missing_property() -> None:
    # GIVEN a template with one resource of each kind, none hardened
    template = Template.from_json(
        {
            "Resources": {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {"ManagedPolicyArns": ["AmazonSSMManagedInstanceCore"]},
                },
                "Endpoint": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {}},
                "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": []}}},
                "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
                "Function": {"Type": "AWS::Lambda::Function", "Properties": {}},
                "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
                "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
                "Queue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
                },
            }
        }
    )
    # WHEN it is checked
    findings = security_findings({"Careless": template})
    # THEN each missing property is reported, once
    assert findings == [
        "Careless: uses AmazonSSMManagedInstanceCore",
        "Careless: Endpoint: VPC endpoint without a policy",
        "Careless: Key: key policy does not deny kms:CreateGrant unless kms:GrantIsForAWSResource",
        "Careless: Logs: log group not encrypted with a KMS key",
        "Careless: Function: function logs to an implicit /aws/lambda group",
        "Careless: Topic: topic without a topic policy",
        "Careless: Dlq: dead-letter queue is not retained on stack deletion",
    ]


def test_control_tower_controls_fail_synthesis_on_an_unacknowledged_finding() -> None:
    # GIVEN an app with the Control Tower controls on and a log group kept for a week, not encrypted
    app = make_app()
    enable_control_tower_checks(app)
    logs.LogGroup(Stack(app, "Forgetful"), "Logs", retention=logs.RetentionDays.ONE_WEEK)
    # WHEN it is synthesized
    # THEN synthesis fails
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def _control_tower_findings(assembly: Path) -> dict[tuple[str, str, str], str]:
    """(rule, template file, logical id) -> "open" or "acknowledged", for each Control Tower finding in CDK's
    validation report."""
    report = json.loads((assembly / "validation-report.json").read_text())
    (plugin,) = (p for p in report["pluginReports"] if p["pluginName"] == PLUGIN_NAME)
    return {
        (violation["ruleName"], resource["templatePath"], resource["logicalId"]): state
        for state, key in (("open", "violations"), ("acknowledged", "suppressedViolations"))
        for violation in plugin.get(key, [])
        for resource in (construct["cloudFormationResource"] for construct in violation["violatingConstructs"])
    }


@jsii.implements(IPolicyValidationContextBeta1)
class _Templates:
    """What CDK hands a validation plugin at synthesis: the templates to check."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = [str(path) for path in paths]

    @property
    def template_paths(self) -> list[str]:
        return self._paths


def test_only_rules_about_other_resource_types_are_skipped() -> None:
    # GIVEN the Control Tower rules the plugin ships, each with the resource types it reports on
    rules = rules_by_resource_type()
    assert len(rules) > 200 and rules["ct-sqs-pr-1"] == {"AWS::SQS::Queue"}
    # WHEN the templates hold only an SQS queue
    skipped = set(rules_to_skip({"AWS::SQS::Queue"}))
    # THEN every rule about SQS queues runs, and the rules about other types only are skipped
    assert {rule for rule, types in rules.items() if "AWS::SQS::Queue" in types} & skipped == set()
    assert skipped == {rule for rule, types in rules.items() if types and "AWS::SQS::Queue" not in types}
    assert "ct-redshift-pr-1" in skipped


@pytest.mark.slow
@pytest.mark.gate
def test_the_checks_find_what_the_plugin_with_every_rule_finds(synthesized: SynthesizedApp) -> None:
    # GIVEN the default synthesis, which the project's checks (rules for absent types off) passed, and its report
    project = _control_tower_findings(synthesized.outdir)
    # WHEN the Control Tower plugin itself, every rule on, checks the same templates as CDK hands them to it
    report = CfnGuardValidator().validate(_Templates(sorted(synthesized.outdir.glob("*.template.json"))))
    every_rule = {
        (violation.rule_name, Path(resource.template_path).name, resource.resource_logical_id)
        for violation in report.violations
        for resource in violation.violating_resources
    }
    # THEN both found the same findings, and the project acknowledged every one (an acknowledgement covers a rule
    # on a construct, whichever run of the plugin finds it)
    assert every_rule == set(project)
    assert set(project.values()) == {"acknowledged"} and len(project) > 10


def test_cdk_nag_fails_synthesis_on_an_unacknowledged_finding() -> None:
    # GIVEN an app with the checks on and a queue with no DLQ and no TLS-only policy
    app = make_app()
    enable_nag_checks(app)
    sqs.Queue(Stack(app, "Careless"), "PlainQueue")
    # WHEN it is synthesized
    # THEN synthesis fails and names the rules broken
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def test_an_acknowledgement_without_a_real_reason_is_refused() -> None:
    stack = Stack(make_app(), "Lazy")
    with pytest.raises(ValueError, match="needs a specific reason"):
        acknowledge(stack, "AwsSolutions::AwsSolutions-SQS3", "ok")


@pytest.mark.slow  # cfn-lint also runs in `make synth` and over every configuration of the matrix
def test_cfn_lint_reports_no_errors_on_any_template(synthesized: SynthesizedApp) -> None:
    # GIVEN every template of the app
    templates = sorted(str(p) for p in Path(synthesized.outdir).glob("*.template.json"))
    assert templates, "no templates were synthesized"
    # WHEN cfn-lint checks them with the project's .cfnlintrc
    result = cfn_lint(templates)
    # THEN it finds nothing (exit 0; warnings would give 4, errors 2)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_template_uses_a_launch_configuration(synthesized: SynthesizedApp) -> None:
    # AWS no longer lets new accounts create launch configurations: everything uses launch templates
    for name, template in synthesized.templates.items():
        assert not template.find_resources("AWS::AutoScaling::LaunchConfiguration"), name


@pytest.mark.slow
@pytest.mark.gate
def test_the_gates_report_and_change_no_template(synthesized: SynthesizedApp, tmp_path: Path) -> None:
    # GIVEN the default synthesis with every gate of `cdk synth` (a gate test is selected: tests/conftest.py), and the
    # fleet's stack synthesized alone without Control Tower's controls and CloudFormation validation, as the
    # template tests of `make test-fast` read it
    plain = synthesize(tmp_path, stacks=["WorkerFleetStack"], control_tower_checks=False)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    assert PLUGIN_NAME in {p["pluginName"] for p in report["pluginReports"]}
    # THEN the two templates are the same, byte for byte: the gates only report
    name = "WorkerFleetStack.template.json"
    assert (plain.outdir / name).read_bytes() == (synthesized.outdir / name).read_bytes()
