"""Hardened S3 buckets: the access-log bucket of a stack and its data buckets."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.nag import acknowledge


def access_logs_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    """A bucket that receives the S3 server access logs of the stack's other buckets, kept for 90 days.

    S3 server access logging can only deliver to buckets encrypted with S3-managed keys (SSE-S3).
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=False,
        lifecycle_rules=[
            s3.LifecycleRule(expiration=Duration.days(90), abort_incomplete_multipart_upload_after=Duration.days(1))
        ],
    )
    acknowledge(
        bucket,
        "AwsSolutions::AwsSolutions-S1",
        "This is the access-log bucket itself; logging its own access into itself would loop.",
    )
    return bucket


def data_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket,
    encryption_key: kms.IKey | None = None,
    noncurrent_version_days: int = 30,
) -> s3.Bucket:
    """A private, versioned, encrypted, TLS-only bucket with access logs and a lifecycle.

    Encrypted with ``encryption_key`` (S3 bucket key on) when given, else with S3-managed keys (SSE-S3).
    Old versions expire after ``noncurrent_version_days``; unfinished multipart uploads after 7 days.
    """
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        # With KMS: one data key per bucket instead of one KMS request per object (KMS bills per request).
        bucket_key_enabled=True if encryption_key else None,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{construct_id}/",
        lifecycle_rules=[
            s3.LifecycleRule(
                noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
    )
