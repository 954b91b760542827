"""The permissions a video job consumer needs, shared by the Lambda consumer and the EC2 worker fleet.

Written out instead of CDK's bucket grants, which add actions a consumer never uses (s3:List*, s3:Abort*,
s3:DeleteObject*, kms:ReEncrypt*, ...): read the uploads; write outputs and failure records (both under
``processed/``, keyed by profile); read outputs back, because the idempotency check looks for a finished job's
manifest.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from sqs_decoupling.common.acknowledgements import acknowledge, object_wildcard_finding
from sqs_decoupling.intake.upload_intake import UploadIntake

OUTPUT_PREFIX = "processed/"


def grant_video_job_access(
    role: iam.IRole, *, intake: UploadIntake, processed: s3.IBucket, processed_key: kms.IKey
) -> None:
    """Let ``role`` read uploads, read and write ``processed/*``, and nothing more."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[intake.bucket.arn_for_objects(f"{intake.prefix}*")],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[processed.arn_for_objects(f"{OUTPUT_PREFIX}*")])
    )
    # Without s3:ListBucket, S3 answers 403 instead of 404 for a key that does not exist, and the
    # idempotency check could not tell "not done yet" from "forbidden".
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[processed.bucket_arn]))
    # boto3 uploads an output over 8 MB in parts (s3:PutObject covers each part) and aborts the upload when a part
    # fails, so no parts are left billed (the bucket's lifecycle rule removes those an abort could not).
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[processed.arn_for_objects(f"{OUTPUT_PREFIX}*")],
        )
    )
    # The processed bucket is encrypted with the stack's key: Decrypt to read, GenerateDataKey to write, for this
    # bucket only (with an S3 Bucket Key, S3 calls KMS under the context aws:s3:arn = the bucket's ARN).
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[processed_key.key_arn],
            conditions={"StringEquals": {"kms:EncryptionContext:aws:s3:arn": processed.bucket_arn}},
        )
    )

    policy = role.node.find_child("DefaultPolicy")
    for bucket, pattern in ((intake.bucket, f"{intake.prefix}*"), (processed, f"{OUTPUT_PREFIX}*")):
        acknowledge(
            policy,
            object_wildcard_finding(bucket, pattern),
            f"Objects under {pattern} only: the keys of a job are not known before the upload arrives.",
        )
