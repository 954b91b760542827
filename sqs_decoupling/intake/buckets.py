"""Hardened S3 buckets: the access-log bucket of a stack and its data buckets."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from sqs_decoupling.common.acknowledgements import acknowledge_control

OBJECT_LOCK_REASON = (
    "No Object Lock: it would make objects undeletable for a retention period, but these buckets hold working data "
    "(uploads, outputs, logs) that lifecycle rules expire; versioning keeps overwritten and deleted objects."
)


def access_logs_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    """A bucket that receives the S3 server access logs (and VPC flow logs) of the stack, kept for 90 days.

    Versioned, so a log cannot be overwritten or deleted unnoticed; old versions expire after 30 days.
    S3 server access logging can only deliver to buckets encrypted with S3-managed keys (SSE-S3).
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(90),
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
    )
    acknowledge_control(
        bucket, "CT.S3.PR.2", "This is the access-log bucket itself; logging its own access into itself would loop."
    )
    acknowledge_control(
        bucket, "CT.S3.PR.10", "S3 server access logs can only be delivered to a bucket encrypted with SSE-S3."
    )
    acknowledge_control(bucket, "CT.S3.PR.4", "Nothing consumes events of the access-log bucket.")
    acknowledge_control(bucket, "CT.S3.PR.9", OBJECT_LOCK_REASON)
    return bucket


def data_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket,
    encryption_key: kms.IKey | None = None,
    noncurrent_version_days: int = 30,
    sends_events: bool = False,
) -> s3.Bucket:
    """A private, versioned, encrypted, TLS-only bucket with access logs and a lifecycle.

    Encrypted with ``encryption_key`` (S3 bucket key on) when given, else with S3-managed keys (SSE-S3).
    Old versions expire after ``noncurrent_version_days``; unfinished multipart uploads after 7 days.
    ``sends_events``: the caller configures event notifications (and acknowledges CT.S3.PR.4 itself).
    """
    bucket = s3.Bucket(
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
    acknowledge_control(bucket, "CT.S3.PR.9", OBJECT_LOCK_REASON)
    if encryption_key is None:
        acknowledge_control(
            bucket,
            "CT.S3.PR.10",
            "SSE-S3 by choice (the uploads bucket): uploaders need no KMS permission, and the queue key's policy can "
            "name the bucket (the same key on the bucket would make a circular dependency).",
        )
    if not sends_events:
        acknowledge_control(bucket, "CT.S3.PR.4", "Nothing consumes events of this bucket: its objects are outputs.")
    return bucket
