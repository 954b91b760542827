"""What the runtime calls: one entry per (principal, service, operation), with the shape of its parameters.

A recorded call (``Call``) is *covered* when an entry has the same principal, service and operation and each of
the entry's parameter patterns (``fnmatch``) matches the call's parameter. The permission rehearsal evaluates every
entry; the moto-server runs record every call the runtime makes and fail on one no entry covers, so a new call
cannot be left out of the rehearsal.

Parameter values are symbolic: a resource the test created for a role is recorded under that role's name in angle
brackets (``<jobs_queue>``, ``<uploads_bucket>``, ``<processed_bucket>``), never under its generated name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Call:
    """One AWS API call as the runtime made it."""

    principal: str  # "worker", "lambda", "producer", ...
    service: str  # botocore's service name: "sqs", "s3", "kms", "autoscaling", "cloudwatch", "logs"
    operation: str  # botocore's operation name: "ReceiveMessage"
    params: Mapping[str, str] = field(default_factory=dict)  # symbolized top-level string parameters


@dataclass(frozen=True)
class CatalogueEntry:
    """A kind of call the runtime makes; ``params`` holds fnmatch patterns for the parameters that name resources."""

    principal: str
    service: str
    operation: str
    params: Mapping[str, str] = field(default_factory=dict)

    def covers(self, call: Call) -> bool:
        if (self.principal, self.service, self.operation) != (call.principal, call.service, call.operation):
            return False
        return all(
            name in call.params and fnmatch.fnmatchcase(call.params[name], pattern)
            for name, pattern in self.params.items()
        )


# Filled from the recorded runs (see recorder.py); each entry is turned into IAM requests by requests.py.
CATALOGUE: tuple[CatalogueEntry, ...] = ()


def uncovered(calls: Iterable[Call], catalogue: Iterable[CatalogueEntry] = CATALOGUE) -> list[Call]:
    """The calls no catalogue entry covers, in the order seen, each once."""
    entries = tuple(catalogue)
    missing: list[Call] = []
    for call in calls:
        if call not in missing and not any(entry.covers(call) for entry in entries):
            missing.append(call)
    return missing
