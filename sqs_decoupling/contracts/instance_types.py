"""The EC2 instance types the worker fleet supports: one catalogue, standard library only.

The fleet stack checks ``worker_instance_type`` and ``worker_instance_types`` against it at configuration time (a type
that is not here fails naming the key, with the nearest supported type as a suggestion), takes each type's architecture
from it (which wheels the worker asset bundles, which Amazon Linux 2023 image the launch template uses) and its vCPUs
(how many jobs a worker runs at once, ``sqs_decoupling.contracts.worker_sizing``); the cost model and the scaling tools
read it too. Nothing here imports the CDK, so any tool can import it.

Source: AWS's "Amazon EC2 instance types" specifications, read 2026-12:
https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html (general purpose: M families),
https://docs.aws.amazon.com/ec2/latest/instancetypes/co.html (compute optimized: C families),
https://docs.aws.amazon.com/ec2/latest/instancetypes/mo.html (memory optimized: R families).

Supported: current-generation C, M and R families that run Amazon Linux 2023 with sustained CPU. Left out on
purpose: burstable T types (CPU credits run out under transcoding), Mac types (macOS only), accelerated and
storage-optimized families (paid-for hardware the worker does not use). To add a family, add a line to
``FAMILIES`` with the sizes its page lists.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Architecture = Literal["arm64", "x86_64"]

SOURCE: Final = "https://docs.aws.amazon.com/ec2/latest/instancetypes/co.html (and gp.html, mo.html)"

# vCPUs of each size name; every family below follows it (a "metal" size is given per family).
SIZE_VCPUS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "medium": 1,
        "large": 2,
        "xlarge": 4,
        "2xlarge": 8,
        "4xlarge": 16,
        "8xlarge": 32,
        "12xlarge": 48,
        "16xlarge": 64,
        "24xlarge": 96,
        "32xlarge": 128,
        "48xlarge": 192,
        "metal-24xl": 96,
        "metal-48xl": 192,
    }
)
_UP_TO_16XL: Final = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_GRAVITON4: Final = (*_UP_TO_16XL, "24xlarge", "48xlarge", "metal-24xl", "metal-48xl")
_INTEL_6: Final = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge")
_AMD_6: Final = (*_INTEL_6, "48xlarge")
_INTEL_7: Final = (*_INTEL_6[:-1], "48xlarge", "metal-24xl", "metal-48xl")
_AMD_7: Final = ("medium", *_AMD_6, "metal-48xl")
_FLEX: Final = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")


@dataclass(frozen=True)
class Family:
    """An instance family: its processor architecture, GiB of memory per vCPU, and the sizes AWS offers
    (``metal_vcpus``: the vCPUs of its plain ``metal`` size, if it has one)."""

    name: str
    architecture: Architecture
    memory_gib_per_vcpu: int
    sizes: tuple[str, ...]
    metal_vcpus: int | None = None

    def vcpus(self, size: str) -> int | None:
        if size == "metal":
            return self.metal_vcpus
        return SIZE_VCPUS[size] if size in self.sizes else None


FAMILIES: Final[Mapping[str, Family]] = MappingProxyType(
    {
        family.name: family
        for family in (
            # Graviton (arm64)
            Family("c6g", "arm64", 2, _UP_TO_16XL, metal_vcpus=64),
            Family("c6gn", "arm64", 2, _UP_TO_16XL),
            Family("c7g", "arm64", 2, _UP_TO_16XL, metal_vcpus=64),
            Family("c7gn", "arm64", 2, _UP_TO_16XL, metal_vcpus=64),
            Family("c8g", "arm64", 2, _GRAVITON4),
            Family("m6g", "arm64", 4, _UP_TO_16XL, metal_vcpus=64),
            Family("m7g", "arm64", 4, _UP_TO_16XL, metal_vcpus=64),
            Family("m8g", "arm64", 4, _GRAVITON4),
            Family("r7g", "arm64", 8, _UP_TO_16XL, metal_vcpus=64),
            Family("r8g", "arm64", 8, _GRAVITON4),
            # Intel and AMD (x86_64)
            Family("c6i", "x86_64", 2, _INTEL_6, metal_vcpus=128),
            Family("c6a", "x86_64", 2, _AMD_6, metal_vcpus=192),
            Family("c7i", "x86_64", 2, _INTEL_7),
            Family("c7i-flex", "x86_64", 2, _FLEX),
            Family("c7a", "x86_64", 2, _AMD_7),
            Family("m6i", "x86_64", 4, _INTEL_6, metal_vcpus=128),
            Family("m6a", "x86_64", 4, _AMD_6, metal_vcpus=192),
            Family("m7i", "x86_64", 4, _INTEL_7),
            Family("m7i-flex", "x86_64", 4, _FLEX),
            Family("m7a", "x86_64", 4, _AMD_7),
            Family("r7i", "x86_64", 8, _INTEL_7),
        )
    }
)


@dataclass(frozen=True)
class InstanceType:
    """One supported instance type, e.g. ``c7g.large``: arm64, 2 vCPUs, 4 GiB."""

    name: str
    family: Family
    vcpus: int

    @property
    def architecture(self) -> Architecture:
        return self.family.architecture

    @property
    def memory_gib(self) -> int:
        return self.vcpus * self.family.memory_gib_per_vcpu


class UnsupportedInstanceType(ValueError):
    """A name that is not a supported instance type; the message says why and suggests the nearest one."""


def supported_names() -> list[str]:
    """Every supported instance type name, sorted."""
    return sorted(
        f"{family.name}.{size}"
        for family in FAMILIES.values()
        for size in (*family.sizes, *(("metal",) if family.metal_vcpus else ()))
    )


def lookup(name: str) -> InstanceType:
    """The catalogue's entry for ``name``, or :class:`UnsupportedInstanceType` with the nearest supported name."""
    family_name, _, size = name.partition(".")
    family = FAMILIES.get(family_name)
    vcpus = family.vcpus(size) if family is not None and size else None
    if family is None or vcpus is None:
        raise UnsupportedInstanceType(f"{name!r} is not an instance type the worker fleet supports{_hint(name)}")
    return InstanceType(name=name, family=family, vcpus=vcpus)


def smallest_vcpus(names: Iterable[str]) -> int:
    """The fewest vCPUs among ``names`` (what every instance of a group that mixes them has at least)."""
    return min(lookup(name).vcpus for name in names)


def _hint(name: str) -> str:
    family = name.partition(".")[0].lower()
    if family.startswith("mac"):
        return ": Mac types run macOS only, the worker runs on Amazon Linux 2023"
    if family[:1] == "t" and family[1:2].isdigit():
        return ": burstable T types run out of CPU credits under sustained transcoding; use a C or M type"
    close = difflib.get_close_matches(name.lower(), supported_names(), n=1, cutoff=0.6)
    if close:
        return f": did you mean {close[0]!r}?"
    return f" (families: {', '.join(FAMILIES)}; sizes as listed on {SOURCE})"
