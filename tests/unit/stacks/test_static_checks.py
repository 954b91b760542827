"""Static checks over the whole app: cdk-nag (AwsSolutions + Serverless) and cfn-lint on every template."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sqs as sqs

from stacks.nag import NagAcknowledgement, acknowledgements, enable_nag_checks
from tests.conftest import REPO_ROOT, SynthesizedApp, make_app

# Every cdk-nag finding the project acknowledges instead of fixing, with its reason. Adding one is a reviewed
# change to this list; the test below prints the actual list when they differ.
EXPECTED_ACKNOWLEDGEMENTS = [
    NagAcknowledgement(
        "SecureQueueStack/Jobs/DeadLetterQueue",
        "Serverless::Serverless-SQSRedrivePolicy",
        "This queue is itself the dead-letter queue; giving it one more would only move failed messages again.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/AccessLogs",
        "AwsSolutions::AwsSolutions-S1",
        "This is the access-log bucket itself; logging its own access into itself would loop.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's bucket-notifications handler uses AWSLambdaBasicExecutionRole; CDK owns this function and role.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "CDK's bucket-notifications handler needs s3:PutBucketNotification on * to configure the notification.",
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
        "VideoPipelineStack/VideoProcessor/Role/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions.",
    ),
    NagAcknowledgement(
        "VideoPipelineStack/VideoProcessor/Role/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<ProcessedBucketDE59930C.Arn>/failed/*]",
        "Objects under failed/* only: the keys of a job are not known before the upload arrives.",
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
        "AwsSolutions::AwsSolutions-S1",
        "This is the access-log bucket itself; logging its own access into itself would loop.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's bucket-notifications handler uses AWSLambdaBasicExecutionRole; CDK owns this function and role.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "CDK's bucket-notifications handler needs s3:PutBucketNotification on * to configure the notification.",
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
        "WorkerFleetStack/TranscodeJobs/DeadLetterQueue",
        "Serverless::Serverless-SQSRedrivePolicy",
        "This queue is itself the dead-letter queue; giving it one more would only move failed messages again.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/GroupActions",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup/*:autoScalingGroupName/<WorkersGroupASG4E50A46C>]",
        "This group only: the * stands for the group's id, which the ARN needs and CloudFormation does not expose.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
        "AmazonSSMManagedInstanceCore is AWS's maintained minimum for Session Manager, our replacement for SSH.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "autoscaling:DescribeAutoScalingInstances has no resource-level permissions; it only reads.",
    ),
    NagAcknowledgement(
        "WorkerFleetStack/Workers/InstanceRole/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<ProcessedBucketDE59930C.Arn>/failed/*]",
        "Objects under failed/* only: the keys of a job are not known before the upload arrives.",
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


def test_every_stack_synthesizes_with_cdk_nag_and_only_the_reviewed_acknowledgements(
    synthesized: SynthesizedApp,
) -> None:
    # GIVEN the whole app synthesized with cdk-nag's AwsSolutions and Serverless packs
    # (the fixture raises ValidationFailed on any unacknowledged finding)
    found = acknowledgements(synthesized.app)
    # THEN the acknowledgements are exactly the reviewed list
    print("\n".join(f"{a.rule}  {a.path}  -- {a.reason}" for a in found))
    assert found == sorted(EXPECTED_ACKNOWLEDGEMENTS)


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
    from stacks.nag import acknowledge

    stack = Stack(make_app(), "Lazy")
    with pytest.raises(ValueError, match="needs a specific reason"):
        acknowledge(stack, "AwsSolutions::AwsSolutions-SQS3", "ok")


def test_cfn_lint_reports_no_errors_on_any_template(synthesized: SynthesizedApp) -> None:
    # GIVEN every template of the app
    templates = sorted(str(p) for p in Path(synthesized.outdir).glob("*.template.json"))
    assert templates, "no templates were synthesized"
    # WHEN cfn-lint checks them with the project's .cfnlintrc
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *templates],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN it finds nothing (exit 0; warnings would give 4, errors 2)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_template_uses_a_launch_configuration(synthesized: SynthesizedApp) -> None:
    # AWS no longer lets new accounts create launch configurations: everything uses launch templates
    for name, template in synthesized.templates.items():
        assert not template.find_resources("AWS::AutoScaling::LaunchConfiguration"), name
