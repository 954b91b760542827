"""``sqs-submit`` / ``python -m producer``: send video jobs for objects already in S3.

    python -m producer submit s3://bucket/key [s3://bucket/prefix/ ...] --queue-url URL [--max-message-bytes N]
        [--encrypt-with-key KEY_ID_OR_ARN]

With --encrypt-with-key, each body is client-side encrypted with that KMS key for the target queue (the consumers
decrypt it with BODY_KEY_ARN / --body-key-arn); the size limits apply to the encrypted body.

Exit codes: 0 all sent, 1 some jobs not sent (each one printed), 2 bad input, or the bodies could not be encrypted
(nothing sent).
Credentials and region come from the standard AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import boto3

from clientside import ClientSideEncryptionError
from producer.submit import InputError, jobs_from_s3_uris, submit_jobs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sqs-submit", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", help="send one job per S3 object")
    submit.add_argument("uris", nargs="*", metavar="S3_URI", help="s3://bucket/key, or s3://bucket/prefix/")
    submit.add_argument("--queue-url", required=True)
    submit.add_argument(
        "--max-message-bytes",
        type=int,
        help="message (and batch) size limit; default: the queue's MaximumMessageSize",
    )
    submit.add_argument(
        "--encrypt-with-key",
        metavar="KEY_ID_OR_ARN",
        help="client-side encrypt each body with this KMS key (id, ARN or alias) for the target queue",
    )
    args = parser.parse_args(argv)

    if not args.uris:
        print(
            "sqs-submit: nothing to submit: give at least one s3://bucket/key or s3://bucket/prefix/", file=sys.stderr
        )
        return 2
    try:
        jobs = jobs_from_s3_uris(boto3.client("s3"), args.uris)
        report = submit_jobs(
            boto3.client("sqs"),
            args.queue_url,
            jobs,
            max_message_bytes=args.max_message_bytes,
            encrypt_key_id=args.encrypt_with_key,
            kms_client=boto3.client("kms") if args.encrypt_with_key else None,
        )
    except InputError as error:
        print(f"sqs-submit: {error}", file=sys.stderr)
        return 2
    except ClientSideEncryptionError as error:
        print(f"sqs-submit: cannot encrypt the job bodies, nothing was sent: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    for failure in report.failures:
        print(f"not sent: {failure.reason}", file=sys.stderr)
    return 1 if report.failures else 0
