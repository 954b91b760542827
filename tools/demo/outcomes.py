"""What a consumer path did, read where the consumers record it: the output bucket (docs/video-processing.md,
"Output layout").

    processed/<key>/<version>/<profile>/metadata.json, thumbnail.jpg, [renditions,] manifest.json
    processed/<key>/<version>/<profile>/failure.json
    processed/<key>/<profile>.latest.json

A manifest is a complete output set, a ``failure.json`` a permanent failure with its reason, a ``.latest.json``
pointer a source key with a final outcome. The bucket is versioned, so the versions of an output say how often a
job's work was done: a second version of ``metadata.json`` (every run uploads it) or of ``failure.json`` is a
duplicate delivery that repeated the work instead of being recognised.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqs_decoupling.contracts.profiles import FAILURE_NAME, MANIFEST_NAME, METADATA_NAME
from sqs_decoupling.video.jobs import OUTPUT_ROOT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LATEST_SUFFIX = ".latest.json"
_RECORDS = (f"/{FAILURE_NAME}", LATEST_SUFFIX)


@dataclass
class BucketOutcomes:
    """The outcomes recorded in one output bucket."""

    decided: int = 0
    """Source keys with a final outcome (a ``<profile>.latest.json`` pointer): processed or permanently failed."""
    processed: int = 0
    """Complete output sets (manifests)."""
    outputs: int = 0
    """Objects under processed/ other than failure records and pointers."""
    failures: Counter[str] = field(default_factory=Counter)
    """``"<reason> (<source key>)"`` -> failure records."""
    repeated: int = 0
    """Extra versions of ``metadata.json`` and ``failure.json``: work a duplicate delivery did again."""


def decided_keys(s3: S3Client, bucket: str) -> int:
    """How many source keys have a final outcome (cheap: one listing, for live progress)."""
    return sum(1 for key in object_keys(s3, bucket) if key.endswith(LATEST_SUFFIX))


def read_outcomes(s3: S3Client, bucket: str, *, upload_prefix: str) -> BucketOutcomes:
    """Everything :class:`BucketOutcomes` holds, from ``bucket``'s listing, failure records and object versions.
    Source keys in failure descriptions are shown without ``upload_prefix``."""
    keys = object_keys(s3, bucket)
    outcomes = BucketOutcomes(
        decided=sum(1 for k in keys if k.endswith(LATEST_SUFFIX)),
        processed=sum(1 for k in keys if k.endswith(f"/{MANIFEST_NAME}")),
        outputs=sum(1 for k in keys if not k.endswith(_RECORDS)),
    )
    for key in keys:
        if key.endswith(f"/{FAILURE_NAME}"):
            record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            source = str(record["source"]["key"]).removeprefix(upload_prefix)
            outcomes.failures[f"{record['reason']} ({source})"] += 1
    outcomes.repeated = _repeated_work(s3, bucket)
    return outcomes


def _repeated_work(s3: S3Client, bucket: str) -> int:
    versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=OUTPUT_ROOT):
        versions.update(v["Key"] for v in page.get("Versions", []))
    return sum(n - 1 for key, n in versions.items() if key.endswith((f"/{METADATA_NAME}", f"/{FAILURE_NAME}")))


def object_keys(s3: S3Client, bucket: str, prefix: str = OUTPUT_ROOT) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys
