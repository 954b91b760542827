"""Deploy rehearsal: the pinned CDK CLI bootstraps, deploys and destroys every stack in a moto server.

The app is synthesized once (with asset bundling, as `cdk deploy` does) and the CLI deploys that cloud assembly
(``--app <cdk.out>``), so the templates and assets are exactly what a real deploy would upload. moto's gaps are
handled in :mod:`tools.localcloud.moto_compat` (bugs that broke the deploy) and checked here (what moto skips must be
only what we know it skips).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.localcloud.cdk import (
    MOTO_SKIPS,
    NOT_EXECUTED,
    STACKS,
    cdk_env,
    check_outputs,
    deployed_stacks,
    run_cdk,
    skipped_resources,
)
from tools.localcloud.server import ACCOUNT, REGION, client, moto_server

pytestmark = pytest.mark.slow

EXPECTED_OUTPUTS = {
    "SecureQueueStack": {
        "QueueUrl",
        "QueueArn",
        "DeadLetterQueueUrl",
        "RedriveOperatorPolicyArn",
        "KeyArn",
        "BodyKeyArn",
        "ProducerRoleArn",
        "ConsumerRoleArn",
    },
    "VideoPipelineStack": {
        "UploadsBucketName",
        "ProcessedBucketName",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "RedriveOperatorPolicyArn",
        "FunctionName",
    },
    "WorkerFleetStack": {
        "UploadsBucketName",
        "ProcessedBucketName",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "RedriveOperatorPolicyArn",
        "AutoScalingGroupName",
        "LaunchTemplateId",
    },
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    # moto_server applies tools.localcloud.moto_compat (fixes to moto's CloudFormation parsing) while the server runs.
    with moto_server() as endpoint_url:
        yield endpoint_url


def test_cdk_bootstrap_deploy_and_destroy_every_stack_on_moto(endpoint: str, tmp_path: Path) -> None:
    started = time.monotonic()
    env = cdk_env(endpoint)
    log = tmp_path / "cdk.log"
    assembly = tmp_path / "cdk.out"

    # GIVEN the app synthesized by the pinned CLI (bundled assets, cdk-nag and Control Tower on) and a bootstrapped
    # moto account. Without aws-cdk-lib's built-in template validation (CDK_VALIDATION=false), as the other tests that
    # synthesize in a process of their own: 2.4 s of CPU that changes no template (the gate's tests show it, and run
    # it on this app); what is asked here is whether the CLI deploys what synthesis makes.
    synthesis = run_cdk(["synth", "--quiet", "--output", str(assembly)], env=env | {"CDK_VALIDATION": "false"}, log=log)
    # (and that synthesis is quiet: no deprecation warning, aws-cdk-lib's or the project's)
    assert "deprecated" not in synthesis.lower(), synthesis
    run_cdk(["bootstrap", f"aws://{ACCOUNT}/{REGION}", "--app", str(assembly)], env=env, log=log)

    # WHEN every stack is deployed
    run_cdk(["deploy", "--all", "--require-approval", "never", "--app", str(assembly)], env=env, log=log)

    # THEN every stack is CREATE_COMPLETE with all its outputs ...
    stacks = deployed_stacks(endpoint)
    assert {name: s.status for name, s in stacks.items()} == dict.fromkeys(STACKS, "CREATE_COMPLETE")
    assert {name: set(s.outputs) for name, s in stacks.items()} == EXPECTED_OUTPUTS
    # ... every output names a resource that exists (queue, bucket, key, role, launch template, group, function)
    checks = check_outputs(endpoint, stacks)
    assert len(checks) == sum(map(len, EXPECTED_OUTPUTS.values()))
    assert [c for c in checks if not c.ok] == []
    # ... the launch template's AMI came from the SSM parameter CDK uses for Amazon Linux 2023
    ec2 = client("ec2", endpoint)
    template_id = stacks["WorkerFleetStack"].outputs["LaunchTemplateId"]
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"][0]
    assert data["LaunchTemplateData"]["ImageId"].startswith("ami-")
    assert data["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    # ... the queues carry the redrive policy and the customer-managed key
    sqs = client("sqs", endpoint)
    attributes = sqs.get_queue_attributes(
        QueueUrl=stacks["VideoPipelineStack"].outputs["QueueUrl"], AttributeNames=["RedrivePolicy", "KmsMasterKeyId"]
    )["Attributes"]
    assert '"maxReceiveCount": 3' in attributes["RedrivePolicy"]
    assert attributes["KmsMasterKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    # ... and what moto did not do is only what we know it cannot do (a new gap fails here, never silently)
    skipped = skipped_resources(assembly, stacks)
    assert {s.resource_type for s in skipped} <= set(MOTO_SKIPS) | set(NOT_EXECUTED)
    assert {s.resource_type for s in skipped} >= {"AWS::SQS::QueuePolicy", "Custom::S3BucketNotifications"}

    # WHEN every stack is destroyed
    run_cdk(["destroy", "--all", "--force", "--app", str(assembly)], env=env, log=log)

    # THEN no stack of the app is left (the bootstrap stack stays, as it does in a real account)
    assert deployed_stacks(endpoint) == {}
    live = [
        s["StackName"]
        for s in client("cloudformation", endpoint).list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert live == ["CDKToolkit"]
    print(f"deploy rehearsal: {time.monotonic() - started:.1f} s")
