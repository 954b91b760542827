"""``sqs-submit`` / ``python -m sqs_decoupling.producer``: send video jobs for objects already in S3.

    python -m sqs_decoupling.producer submit s3://bucket/key [s3://bucket/prefix/ ...] --queue-url URL
    [--max-message-size-bytes N]
        [--encrypt-with-key KEY_ID_OR_ARN]

With --encrypt-with-key, each body is client-side encrypted with that KMS key for the target queue (the consumers
decrypt it with BODY_KEY_ARN / --body-key-arn); the size limits apply to the encrypted body.
Credentials come from the standard AWS chain (environment, profile, instance role); the region as
:mod:`sqs_decoupling.regions` finds it (--region, SQS_SUBMIT_REGION, AWS_REGION, AWS_DEFAULT_REGION, the profile, the
queue URL). Every flag is checked before any AWS call: a bad one is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from sqs_decoupling.contracts.sqs import MAX_MESSAGE_SIZE_BYTES, MIN_MESSAGE_SIZE_BYTES
from sqs_decoupling.regions.resolution import RegionNotFoundError, region_help, resolve_region

QUEUE_URL_ENV = "SQS_SUBMIT_QUEUE_URL"
REGION_ENV = "SQS_SUBMIT_REGION"

DESCRIPTION = (
    "Send one video job per S3 object to an SQS queue, in the shape of S3's own ObjectCreated notifications "
    "(SendMessageBatch, at most 10 messages and the queue's maximum message size per call). Credentials come from "
    "the standard AWS chain (AWS_PROFILE, instance role, ...); the region as --region says."
)
EXIT_CODES = """exit codes:
  0  every job was sent
  1  some jobs were not sent (each one is named, with the reason), or AWS refused: no credentials, unknown queue
  2  bad input (a flag out of range, no S3 URI, nothing matched, an object missing, no region), or the bodies
     could not be encrypted (nothing sent)"""


class _OneLineParser(argparse.ArgumentParser):
    """A bad flag is one line on stderr (what was wrong and the allowed range), exit code 2, before any AWS call."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sqs-submit: error: {message}\n")


def _message_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if not MIN_MESSAGE_SIZE_BYTES <= value <= MAX_MESSAGE_SIZE_BYTES:
        raise argparse.ArgumentTypeError(
            f"{value} is outside {MIN_MESSAGE_SIZE_BYTES:,}..{MAX_MESSAGE_SIZE_BYTES:,} bytes (SQS's message sizes)"
        )
    return value


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="sqs-submit", description=DESCRIPTION)
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
        "--max-message-size-bytes",
        type=_message_bytes,
        metavar="N",
        help=f"a lower message (and batch) size limit than the queue's MaximumMessageSize, which is always read and "
        f"never exceeded ({MIN_MESSAGE_SIZE_BYTES:,}..{MAX_MESSAGE_SIZE_BYTES:,})",
    )
    submit.add_argument("--region", help=f"{region_help(REGION_ENV)} [{REGION_ENV}]")
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
        region = resolve_region(args.region, tool_env=REGION_ENV, environ=environ, queue_url=args.queue_url)
    except RegionNotFoundError as error:
        return _error(str(error), 2)
    return _submit(args, region)


def _submit(args: argparse.Namespace, region: str) -> int:
    """Send the jobs the checked flags name. boto3, the S3 event models and the envelope are imported here, after
    the flags are checked, so that a bad flag is reported without loading them (about 0.2 s of CPU, nine tenths of
    the time a bad flag took)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from sqs_decoupling.producer.submit import InputError, QueueError, jobs_from_s3_uris, submit_jobs
    from sqs_decoupling.queue.envelope.envelope import ClientSideEncryptionError
    from sqs_decoupling.queue.envelope.logs import SDK_LOGGER_NAME

    # The Encryption SDK logs a failed key lookup at WARNING; with no handler configured, Python would print it to
    # stderr ahead of this tool's own one-line error. The tool reports every failure itself.
    logging.getLogger(SDK_LOGGER_NAME).addHandler(logging.NullHandler())
    try:
        jobs = jobs_from_s3_uris(boto3.client("s3", region_name=region), args.uris)
        report = submit_jobs(
            boto3.client("sqs", region_name=region),
            args.queue_url,
            jobs,
            max_message_size_bytes=args.max_message_size_bytes,
            encrypt_key_id=args.encrypt_with_key,
            kms_client=boto3.client("kms", region_name=region) if args.encrypt_with_key else None,
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
