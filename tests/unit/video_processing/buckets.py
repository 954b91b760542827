"""Source and output buckets on in-process moto, shared by the process_video tests."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from sqs_decoupling.video.jobs import VideoJob

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

SOURCE = "video-uploads"
OUTPUT = "video-processed"
LIMIT = 50 * 1024 * 1024


@pytest.fixture
def buckets(s3: S3Client) -> S3Client:
    """A versioned source bucket and an output bucket."""
    s3.create_bucket(Bucket=SOURCE)
    s3.put_bucket_versioning(Bucket=SOURCE, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=OUTPUT)
    return s3


def upload(s3: S3Client, key: str, body: bytes) -> VideoJob:
    """Put ``body`` and return the job its S3 event would describe."""
    response = s3.put_object(Bucket=SOURCE, Key=key, Body=body)
    return VideoJob(
        bucket=SOURCE, key=key, version_id=response["VersionId"], etag=response["ETag"].strip('"'), size=len(body)
    )


def output_keys(s3: S3Client, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=OUTPUT, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def read_json(s3: S3Client, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read())
