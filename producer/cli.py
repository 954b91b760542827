"""``sqs-submit`` / ``python -m producer``: send video jobs for objects already in S3.

    python -m producer submit s3://bucket/key [s3://bucket/prefix/ ...] --queue-url URL [--max-message-bytes N]
        [--encrypt-with-key KEY_ID_OR_ARN]

With --encrypt-with-key, each body is client-side encrypted with that KMS key for the target queue (the consumers
decrypt it with BODY_KEY_ARN / --body-key-arn); the size limits apply to the encrypted body.
Credentials and region come from the standard AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from clientside import ClientSideEncryptionError
from producer.submit import InputError, QueueError, jobs_from_s3_uris, submit_jobs

QUEUE_URL_ENV = "SQS_SUBMIT_QUEUE_URL"

DESCRIPTION = (
    "Send one video job per S3 object to an SQS queue, in the shape of S3's own ObjectCreated notifications "
    "(SendMessageBatch, at most 10 messages and the queue's maximum message size per call). Credentials and region "
    "come from the standard AWS chain (AWS_PROFILE, AWS_REGION, instance role, ...)."
)
EXIT_CODES = """exit codes:
  0  every job was sent
  1  some jobs were not sent (each one is named, with the reason), or AWS refused: no credentials, unknown queue
  2  bad input (no S3 URI, nothing matched, an object missing), or the bodies could not be encrypted (nothing sent)"""


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqs-submit", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser(
        "submit",
        help="send one job per S3 object",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("uris", nargs="*", metavar="S3_URI", help="s3://bucket/key, or s3://bucket/prefix/")
    submit.add_argument(
        "--queue-url", default=environ.get(QUEUE_URL_ENV), help=f"URL of the jobs queue (required) [{QUEUE_URL_ENV}]"
    )
    submit.add_argument(
        "--max-message-bytes",
        type=int,
        help="a lower message (and batch) size limit than the queue's MaximumMessageSize, which is always read and "
        "never exceeded",
    )
    submit.add_argument(
        "--encrypt-with-key",
        metavar="KEY_ID_OR_ARN",
        help="client-side encrypt each body with this KMS key (id, ARN or alias) for the target queue",
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = build_parser(environ).parse_args(argv)
    if not args.queue_url:
        return _error(f"the queue URL is missing: pass --queue-url or set {QUEUE_URL_ENV}", 2)
    if not args.uris:
        return _error("nothing to submit: give at least one s3://bucket/key or s3://bucket/prefix/", 2)
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
        return _error(str(error), 2)
    except ClientSideEncryptionError as error:
        return _error(f"cannot encrypt the job bodies, nothing was sent: {error}", 2)
    except QueueError as error:
        return _error(str(error), 1)
    except (BotoCoreError, ClientError) as error:  # no credentials or region, S3 refused a listing or a HEAD
        return _error(f"AWS refused, nothing was sent: {' '.join(str(error).split())}", 1)
    for job in report.sent:
        print(f"sent: s3://{job.bucket}/{job.key}")
    for failure in report.failures:
        print(f"not sent: {failure.reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failures else 0


def _error(message: str, code: int) -> int:
    print(f"sqs-submit: {message}", file=sys.stderr)
    return code
