"""The pinned CDK CLI pointed at the local moto server (:mod:`tools.localcloud.server`), and what it deployed there.

Used by ``python -m tools.demo`` and by the deploy rehearsal test. Nothing here talks to real AWS: every client and the
CDK CLI get ``AWS_ENDPOINT_URL=http://localhost:<port>`` and dummy credentials. Nothing here imports the CDK: the
CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sqs_decoupling.stacks.names import STACK_NAMES
from tools.localcloud.paths import REPO_ROOT
from tools.localcloud.server import DUMMY_CREDENTIALS, REGION, client

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

STACKS = STACK_NAMES

# Resource types moto's CloudFormation does not create (it warns and carries on) and what that means here.
MOTO_SKIPS = {
    "AWS::SQS::QueuePolicy": "not created (moto does not evaluate queue policies anyway)",
    "AWS::S3::BucketPolicy": "not created (moto does not evaluate bucket policies anyway)",
    "AWS::SNS::TopicPolicy": "not created",
    "AWS::CloudWatch::Alarm": "not created: no alarms, so no alarm-driven scaling here",
    "AWS::AutoScaling::ScalingPolicy": (
        "not created: the demo evaluates it (tools.scaling.policy); make scaling simulates it"
    ),
    "AWS::AutoScaling::LifecycleHook": "not created",
    "AWS::CDK::Metadata": "CDK's version metadata, never a real resource",
    "AWS::EC2::SecurityGroupEgress": "not created: the workers' HTTPS egress rules (to the endpoints and S3)",
}
# Created as records only: they need to run Lambda code, which moto cannot do without Docker.
NOT_EXECUTED = {
    "Custom::S3BucketNotifications": "its handler never ran: no bucket notification was configured",
    "Custom::VpcRestrictDefaultSG": "its handler never ran: the default security group keeps its rules",
    "Custom::AWS": "its handler never ran: S3's prefix list id for the workers' egress rule was not looked up",
}


class StepFailed(RuntimeError):
    """A step of the local cloud failed; the message says which and why."""


@dataclass(frozen=True)
class Skipped:
    stack: str
    logical_id: str
    resource_type: str
    why: str


@dataclass
class DeployedStack:
    name: str
    status: str
    outputs: dict[str, str]
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)
    """logical id -> (resource type, physical id)"""


def cdk_env(endpoint_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the CDK CLI and any AWS SDK: moto's endpoint, dummy credentials, us-east-1, the venv and
    node_modules/.bin first on PATH (cdk.json runs ``python3 app.py``; ``make setup`` puts Node.js 22+ in the venv
    where the machine's is older)."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("AWS_")}
    path = os.pathsep.join([str(Path(sys.executable).parent), str(REPO_ROOT / "node_modules" / ".bin")])
    return (
        env
        | DUMMY_CREDENTIALS
        | {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PATH": path + os.pathsep + env.get("PATH", ""),
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
    )


def run_cdk(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 600,
) -> str:
    """Run the pinned CDK CLI (node_modules/.bin/cdk) from the repository root; return its output.

    Output goes to ``log`` (and line by line to ``on_line``). A non-zero exit raises :class:`StepFailed` with
    the tail of the output.
    """
    cdk = REPO_ROOT / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise StepFailed(f"{cdk} is missing: run `make setup` (npm ci installs the pinned CDK CLI)")
    command = [str(cdk), *args]
    lines: list[str] = []
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"$ cdk {' '.join(args)}\n")
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us, not the CLI mid-write; we decide how to stop it
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sink.write(line)
                lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            code = process.wait(timeout=timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
    output = "".join(lines)
    if code != 0:
        tail = "".join(lines[-15:])
        raise StepFailed(f"`cdk {' '.join(args)}` exited with {code} (full log: {log}):\n{tail}")
    return output


def deployed_stacks(endpoint_url: str, names: Sequence[str] = STACKS) -> dict[str, DeployedStack]:
    """Status, outputs and resources of ``names`` as moto's CloudFormation describes them (missing: absent)."""
    cloudformation: CloudFormationClient = client("cloudformation", endpoint_url)
    stacks: dict[str, DeployedStack] = {}
    for name in names:
        try:
            described = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                continue
            raise
        if not described:
            continue
        stack = described[0]
        resources = {
            r["LogicalResourceId"]: (r["ResourceType"], r.get("PhysicalResourceId", ""))
            for r in cloudformation.describe_stack_resources(StackName=name)["StackResources"]
            # moto lists the resources it skipped as empty entries (no id, no type)
            if r.get("LogicalResourceId") and r.get("ResourceType")
        }
        stacks[name] = DeployedStack(
            name=name,
            status=stack["StackStatus"],
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            resources=resources,
        )
    return stacks


def template_resources(cloud_assembly: Path, stack: str) -> dict[str, str]:
    """logical id -> type, from the synthesized template in ``cloud_assembly``."""
    template = json.loads((cloud_assembly / f"{stack}.template.json").read_text())
    return {logical_id: resource["Type"] for logical_id, resource in template["Resources"].items()}


def skipped_resources(cloud_assembly: Path, stacks: Mapping[str, DeployedStack]) -> list[Skipped]:
    """Every resource of the templates that moto did not create, or created without running it."""
    skipped: list[Skipped] = []
    for name, stack in stacks.items():
        for logical_id, resource_type in template_resources(cloud_assembly, name).items():
            if logical_id not in stack.resources:
                why = MOTO_SKIPS.get(resource_type, "not created by moto's CloudFormation")
                skipped.append(Skipped(name, logical_id, resource_type, why))
            elif resource_type in NOT_EXECUTED:
                skipped.append(Skipped(name, logical_id, resource_type, NOT_EXECUTED[resource_type]))
    return skipped


@dataclass(frozen=True)
class Check:
    stack: str
    output: str
    value: str
    what: str
    ok: bool
    detail: str = ""


def check_outputs(endpoint_url: str, stacks: Mapping[str, DeployedStack]) -> list[Check]:
    """Resolve every stack output to the resource it names, with the API that proves it exists."""
    sqs, s3, kms = client("sqs", endpoint_url), client("s3", endpoint_url), client("kms", endpoint_url)
    iam, ec2 = client("iam", endpoint_url), client("ec2", endpoint_url)
    autoscaling, lambda_ = client("autoscaling", endpoint_url), client("lambda", endpoint_url)

    def probe(output: str, value: str) -> tuple[str, Callable[[], object]]:
        if output.endswith("QueueUrl"):
            return "queue", lambda: sqs.get_queue_attributes(QueueUrl=value, AttributeNames=["QueueArn"])
        if output.endswith("QueueArn"):
            return "queue", lambda: sqs.get_queue_url(QueueName=value.rsplit(":", 1)[-1])
        if output.endswith("BucketName"):
            return "bucket", lambda: s3.head_bucket(Bucket=value)
        if output.endswith("KeyArn"):
            return "KMS key", lambda: kms.describe_key(KeyId=value)
        if output.endswith("RoleArn"):
            return "IAM role", lambda: iam.get_role(RoleName=value.rsplit("/", 1)[-1])
        if output.endswith("PolicyArn"):
            return "IAM managed policy", lambda: iam.get_policy(PolicyArn=value)
        if output == "LaunchTemplateId":
            return "launch template", lambda: _one(
                ec2.describe_launch_templates(LaunchTemplateIds=[value]), "LaunchTemplates"
            )
        if output == "AutoScalingGroupName":
            return "Auto Scaling group", lambda: _one(
                autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[value]), "AutoScalingGroups"
            )
        if output == "FunctionName":
            return "Lambda function", lambda: lambda_.get_function(FunctionName=value)
        raise KeyError(output)

    checks: list[Check] = []
    for name, stack in stacks.items():
        for output, value in sorted(stack.outputs.items()):
            try:
                what, call = probe(output, value)
            except KeyError:
                checks.append(Check(name, output, value, "?", False, "no check known for this output"))
                continue
            try:
                call()
                checks.append(Check(name, output, value, what, True))
            except (ClientError, LookupError) as error:
                checks.append(Check(name, output, value, what, False, str(error)))
    return checks


def _one(response: Mapping[str, Any], key: str) -> object:
    items = response[key]
    if len(items) != 1:
        raise LookupError(f"expected exactly one in {key}, found {len(items)}")
    return items[0]
