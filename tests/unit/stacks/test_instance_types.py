"""The instance-type catalogue (sqs_decoupling/contracts/instance_types.py): supported types, their architecture and
vCPUs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from aws_cdk import aws_ec2 as ec2

from sqs_decoupling.contracts.instance_types import (
    FAMILIES,
    UnsupportedInstanceType,
    lookup,
    smallest_vcpus,
    supported_names,
)
from sqs_decoupling.worker_fleet.worker_fleet import architecture_of

REPO = Path(__file__).resolve().parents[3]


def test_every_supported_type_has_the_architecture_cdk_gives_it() -> None:
    # GIVEN every type of the catalogue
    # WHEN CDK classifies it (what the launch template's machine image follows)
    disagree = {
        name: (lookup(name).architecture, architecture_of(ec2.InstanceType(name)))
        for name in supported_names()
        if lookup(name).architecture != architecture_of(ec2.InstanceType(name))
    }
    # THEN both say the same, so the worker asset's wheels match the image's
    assert disagree == {}


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib"),
    [
        # As AWS's instance-type specification pages list them (co.html, gp.html, mo.html)
        ("c7g.medium", 1, 2),
        ("c7g.large", 2, 4),
        ("c7g.16xlarge", 64, 128),
        ("c7g.metal", 64, 128),
        ("m7g.xlarge", 4, 16),
        ("r7g.2xlarge", 8, 64),
        ("c8g.48xlarge", 192, 384),
        ("c7i.48xlarge", 192, 384),
        ("c7i.metal-24xl", 96, 192),
        ("c7a.medium", 1, 2),
        ("c6i.metal", 128, 256),
        ("m7i-flex.8xlarge", 32, 128),
    ],
)
def test_vcpus_and_memory_follow_the_size(name: str, vcpus: int, memory_gib: int) -> None:
    assert (lookup(name).vcpus, lookup(name).memory_gib) == (vcpus, memory_gib)


@pytest.mark.parametrize("name", ["c7i.medium", "c6gn.metal", "c7g.24xlarge", "m7i-flex.metal", "c7g", "c7g.", ""])
def test_a_size_a_family_does_not_have_is_refused(name: str) -> None:
    with pytest.raises(UnsupportedInstanceType, match="is not an instance type the worker fleet supports"):
        lookup(name)


def test_a_mixed_group_is_sized_for_its_smallest_type() -> None:
    assert smallest_vcpus(["c7g.xlarge", "c7g.large", "m7g.2xlarge"]) == 2


def test_the_catalogue_is_standard_library_only_and_names_its_source() -> None:
    # GIVEN the module's source
    source = (REPO / "sqs_decoupling" / "contracts" / "instance_types.py").read_text()
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    # THEN the tools can import it without the CDK, and a reader finds where the figures come from
    assert imported <= {"__future__", "collections", "dataclasses", "difflib", "types", "typing"}
    assert "https://docs.aws.amazon.com/ec2/latest/instancetypes/" in source
    assert {family.architecture for family in FAMILIES.values()} == {"arm64", "x86_64"}


def test_the_cost_model_prices_only_types_the_catalogue_supports_with_its_vcpus() -> None:
    from tools.cost.prices import EC2_ON_DEMAND_PER_HOUR, instance_vcpus

    # GIVEN every instance type the cost model has a price for
    # THEN each is supported, and the cost model's vCPUs are the catalogue's
    assert {name: instance_vcpus(name) for name in EC2_ON_DEMAND_PER_HOUR} == {
        name: lookup(name).vcpus for name in EC2_ON_DEMAND_PER_HOUR
    }
