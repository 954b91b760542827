"""``sqs-submit`` / ``python -m producer``: send video jobs for objects already in S3.

    python -m producer submit s3://bucket/key [s3://bucket/prefix/ ...] --queue-url URL [--max-message-bytes N]

Exit codes: 0 all sent, 1 some jobs not sent (each one printed), 2 bad input.
Credentials and region come from the standard AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import boto3

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
    args = parser.parse_args(argv)

    if not args.uris:
        print(
            "sqs-submit: nothing to submit: give at least one s3://bucket/key or s3://bucket/prefix/", file=sys.stderr
        )
        return 2
    try:
        jobs = jobs_from_s3_uris(boto3.client("s3"), args.uris)
        report = submit_jobs(boto3.client("sqs"), args.queue_url, jobs, max_message_bytes=args.max_message_bytes)
    except InputError as error:
        print(f"sqs-submit: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    for failure in report.failures:
        print(f"not sent: {failure.reason}", file=sys.stderr)
    return 1 if report.failures else 0
