"""Synthesized templates as CloudFormation would deploy them: every intrinsic resolved to a concrete value.

A deployment gives each resource the physical id CloudFormation would (an explicit name where the template sets
one, otherwise ``<stack>-<logical id>-<suffix>``, lower-cased where the service wants it) and answers ``Ref`` and
``Fn::GetAtt`` in each service's documented form: a queue's URL and ARN, a bucket's name and ARN, a key's id and
ARN, an Auto Scaling group's name (its ARN carries a UUID, see ``group_arn``). Policies are then plain JSON with
real ARNs, which the evaluation compares as AWS does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

PARTITION = "aws"

# A placeholder for AWS::NoValue: properties holding it are dropped, as CloudFormation does.
_NO_VALUE = object()


@functools.cache  # the same few hundred names, asked for a million times in a run
def _digest(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class Stack:
    """One template of a deployment, with its values resolved on demand."""

    name: str
    template: Mapping[str, Any]
    account: str
    region: str
    deployment: Deployment | None = field(default=None, repr=False)
    # Each resource's properties, resolved once: a rehearsal asks for the same policies for every call it checks.
    # Read-only to callers; a stack with other templates is a new Stack.
    _properties: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        return self.template.get("Resources", {})  # type: ignore[no-any-return]

    def of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's properties, every intrinsic resolved (the same object each time: do not change it)."""
        if logical_id not in self._properties:
            self._properties[logical_id] = self.resolve(self.resources[logical_id].get("Properties", {}))
        return self._properties[logical_id]

    # Physical ids -------------------------------------------------------------------------------------------------

    def physical_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        props = resource.get("Properties", {})
        explicit = {
            "AWS::SQS::Queue": "QueueName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::CloudWatch::Alarm": "AlarmName",
        }.get(resource["Type"])
        if explicit and explicit in props:
            return str(self.resolve(props[explicit]))
        generated = f"{self.name}-{logical_id[:40]}-{_digest(self.name, logical_id).upper()}"
        if resource["Type"] == "AWS::S3::Bucket":
            return generated.lower()[:63]
        if resource["Type"] == "AWS::Logs::LogGroup":
            return f"/aws/generated/{generated}"
        return generated

    def ref(self, logical_id: str) -> str:
        if logical_id.startswith("AWS::"):
            return self._pseudo(logical_id)
        if logical_id in self.template.get("Parameters", {}):
            return str(self.template["Parameters"][logical_id].get("Default", logical_id))
        resource_type = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        short = _digest(self.name, logical_id, length=17)
        return {
            "AWS::SQS::Queue": f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{self.region}:{self.account}:{name}",
            "AWS::KMS::Key": self.key_id(logical_id),
            "AWS::EC2::VPC": f"vpc-{short}",
            "AWS::EC2::VPCEndpoint": f"vpce-{short}",
            "AWS::EC2::Subnet": f"subnet-{short}",
            "AWS::EC2::SecurityGroup": f"sg-{short}",
            "AWS::EC2::LaunchTemplate": f"lt-{short}",
            "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{self.account}:policy/{name}",
        }.get(resource_type, name)

    def key_id(self, logical_id: str) -> str:
        d = _digest(self.name, logical_id, length=32)
        return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource_type = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        region, account = self.region, self.account
        table: dict[tuple[str, str], Any] = {
            ("AWS::SQS::Queue", "Arn"): f"arn:{PARTITION}:sqs:{region}:{account}:{name}",
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): self.ref(logical_id),
            ("AWS::S3::Bucket", "Arn"): f"arn:{PARTITION}:s3:::{name}",
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{region}.amazonaws.com",
            ("AWS::KMS::Key", "Arn"): f"arn:{PARTITION}:kms:{region}:{account}:key/{self.key_id(logical_id)}",
            ("AWS::KMS::Key", "KeyId"): self.key_id(logical_id),
            ("AWS::SNS::Topic", "TopicArn"): self.ref(logical_id),
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::IAM::Role", "Arn"): f"arn:{PARTITION}:iam::{account}:role/{name}",
            ("AWS::IAM::Role", "RoleId"): f"AROA{_digest(self.name, logical_id, length=16).upper()}",
            ("AWS::IAM::InstanceProfile", "Arn"): f"arn:{PARTITION}:iam::{account}:instance-profile/{name}",
            ("AWS::Logs::LogGroup", "Arn"): f"arn:{PARTITION}:logs:{region}:{account}:log-group:{name}:*",
            ("AWS::Lambda::Function", "Arn"): f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}",
            ("AWS::CloudWatch::Alarm", "Arn"): f"arn:{PARTITION}:cloudwatch:{region}:{account}:alarm:{name}",
            ("AWS::EC2::VPC", "DefaultSecurityGroup"): f"sg-{_digest(self.name, logical_id, 'default', length=17)}",
            ("AWS::EC2::SecurityGroup", "GroupId"): self.ref(logical_id),
            ("AWS::EC2::LaunchTemplate", "LatestVersionNumber"): "1",
            ("AWS::EC2::LaunchTemplate", "DefaultVersionNumber"): "1",
            ("AWS::Lambda::LayerVersion", "LayerVersionArn"): (
                f"arn:{PARTITION}:lambda:{region}:{account}:layer:{name}:1"
            ),
        }
        if (resource_type, attribute) in table:
            return table[(resource_type, attribute)]
        if attribute.endswith("Ids") or attribute.endswith("Entries"):
            return [f"{name}-{attribute}"]
        return f"{name}.{attribute}"

    def group_arn(self, logical_id: str) -> str:
        """An Auto Scaling group's ARN: ``autoScalingGroup:<uuid>:autoScalingGroupName/<name>`` (the service
        authorization reference's format; the UUID is only known once the group exists)."""
        d = _digest(self.name, logical_id, "uuid", length=32)
        uuid = f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"
        return (
            f"arn:{PARTITION}:autoscaling:{self.region}:{self.account}:autoScalingGroup:{uuid}"
            f":autoScalingGroupName/{self.ref(logical_id)}"
        )

    def _pseudo(self, name: str) -> str:
        return {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{self.account}:stack/{self.name}/id",
        }[name]

    # Intrinsics ---------------------------------------------------------------------------------------------------

    @cached_property
    def _conditions(self) -> dict[str, bool]:
        return {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), *_ = value.items()
            if fn == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical_id, attribute)
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(str(p) for p in self.resolve(parts))
            if fn == "Fn::Sub":
                return self._sub(*(arg if isinstance(arg, list) else [arg, {}]))
            if fn == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if fn == "Fn::Split":
                separator, text = self.resolve(arg)
                return text.split(separator)
            if fn == "Fn::Base64":
                return self.resolve(arg)
            if fn == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if fn == "Fn::Equals":
                left, right = self.resolve(arg)
                return left == right
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::And":
                return all(self.resolve(arg))
            if fn == "Fn::Or":
                return any(self.resolve(arg))
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::GetAZs":
                return [f"{self.region}a", f"{self.region}b", f"{self.region}c"]
            if fn == "Fn::ImportValue":
                raise ValueError(f"{self.name}: Fn::ImportValue {arg!r}: stacks of this project import nothing")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


@dataclass
class Deployment:
    """The stacks of one configuration, deployed into one account and region."""

    stacks: dict[str, Stack]
    account: str
    region: str

    @classmethod
    def from_assembly(cls, outdir: Path, **where: str) -> Deployment:
        """Every stack template in a cloud assembly (see ``from_assemblies``)."""
        manifest = json.loads((outdir / "manifest.json").read_text())
        names = [n for n, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"]
        return cls.from_assemblies(dict.fromkeys(names, outdir), **where)

    @classmethod
    def from_assemblies(
        cls, assemblies: Mapping[str, Path], *, account: str = "111122223333", region: str = "eu-west-1"
    ) -> Deployment:
        """Each named stack from its cloud assembly folder. An environment-agnostic stack is deployed into
        ``account`` and ``region``; a stack with a concrete environment (in the manifest) into its own."""
        stacks: dict[str, Stack] = {}
        for name, outdir in assemblies.items():
            artifact = json.loads((outdir / "manifest.json").read_text())["artifacts"][name]
            env = artifact["environment"].removeprefix("aws://").split("/")
            stack_account = account if env[0].startswith("unknown") else env[0]
            stack_region = region if env[1].startswith("unknown") else env[1]
            template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
            stacks[name] = Stack(name, template, stack_account, stack_region)
        deployment = cls(stacks, account, region)
        for stack in stacks.values():
            stack.deployment = deployment
        return deployment
