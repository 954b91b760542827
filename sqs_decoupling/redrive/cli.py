"""``sqs-redrive`` / ``python -m sqs_decoupling.redrive``: look at a dead-letter queue, move its messages back, follow
the move.

    sqs-redrive status --dlq-url URL
    sqs-redrive start --dlq-url URL [--to QUEUE_URL] [--max-per-second N] [--method move-task|copy] [--no-follow]
    sqs-redrive list --dlq-url URL
    sqs-redrive cancel TASK_HANDLE

Credentials come from the standard AWS chain; the region from :func:`sqs_decoupling.regions.resolve_region`. The
runbook is docs/runbook-dlq-redrive.md; the IAM policy an operator needs is each stack's ``RedriveOperatorPolicyArn``
output.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sqs_decoupling.redrive.moves import (
    MAX_MESSAGES_PER_SECOND,
    QueueStatus,
    RedriveInputError,
    cancel_move_task,
    copy_messages,
    destination_url,
    follow_move_task,
    list_move_tasks,
    parse_queue_url,
    queue_arn_from_url,
    queue_status,
    source_queue_urls,
    start_move_task,
)
from sqs_decoupling.redrive.progress import ProgressBar
from sqs_decoupling.regions.resolution import RegionNotFoundError, region_help, resolve_region

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

PROG = "sqs-redrive"
DLQ_URL_ENV = "SQS_REDRIVE_DLQ_URL"
REGION_ENV = "SQS_REDRIVE_REGION"
METHOD_ENV = "SQS_REDRIVE_METHOD"
METHODS = ("move-task", "copy")
NO_SUCH_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
FOLLOW_POLL_SECONDS = 5.0
"""How often `start` asks ListMessageMoveTasks for the task's progress."""
NO_SUCH_TASK = ("ResourceNotFoundException", "AWS.SimpleQueueService.ResourceNotFoundException")

DESCRIPTION = (
    "Move the messages of a dead-letter queue back to its source queue once the bug that sent them there is fixed "
    "(docs/runbook-dlq-redrive.md). `start` uses SQS's message move task (StartMessageMoveTask) unless told "
    "--method copy (receive, send, then delete: for endpoints without move tasks, such as moto). Credentials come "
    "from the standard AWS chain; the region from --region, then SQS_REDRIVE_REGION, AWS_REGION, "
    "AWS_DEFAULT_REGION, the AWS profile's region, then the region in the queue URL."
)
EXIT_CODES = """exit codes:
  0  done: shown, listed, cancelled, or every message moved (the move task COMPLETED)
  1  AWS refused (no credentials, access denied), the move task FAILED or was cancelled, or some messages were not
     moved (each reason printed; they stay in the dead-letter queue)
  2  bad input: no or malformed queue URL, no such queue or task, a rate outside 1..500, no destination
  130  interrupted: a move task keeps running (see `list`, `cancel`); a copy stops, nothing lost"""


def _rate(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_MESSAGES_PER_SECOND:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate SQS accepts: a whole number of messages per second, 1..{MAX_MESSAGES_PER_SECOND}"
        )
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line and exit 2, as for every other bad input
        self.exit(2, f"{PROG}: {message}\n")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description=DESCRIPTION, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=f"{help_text}. {DESCRIPTION}",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("--region", help=region_help(REGION_ENV))
        return sub

    def dlq_url(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--dlq-url",
            default=environ.get(DLQ_URL_ENV),
            help=f"URL of the dead-letter queue (required) [{DLQ_URL_ENV}]",
        )

    dlq_url(command("status", "show the dead-letter queue's depth, its oldest message's age and its source queues"))
    start = command("start", "move the dead-letter queue's messages to its source queue and follow the move")
    dlq_url(start)
    start.add_argument(
        "--to", metavar="QUEUE_URL", help="the destination queue (default: the one queue whose redrive policy names it)"
    )
    start.add_argument(
        "--max-per-second",
        type=_rate,
        metavar="N",
        help=f"move at most N messages a second (1..{MAX_MESSAGES_PER_SECOND}; default: as fast as SQS goes)",
    )
    start.add_argument(
        "--method",
        choices=METHODS,
        default=environ.get(METHOD_ENV, "move-task"),
        help=f"move-task: SQS moves the messages (AWS); copy: receive, send, delete (moto) [{METHOD_ENV}; "
        "default move-task]",
    )
    start.add_argument(
        "--no-follow", action="store_true", help="start the move task and return (follow it with `list`)"
    )
    dlq_url(command("list", "list the dead-letter queue's recent move tasks (newest first)"))
    cancel = command("cancel", "cancel a running move task (the messages moved so far stay moved)")
    cancel.add_argument("task_handle", metavar="TASK_HANDLE", help="the handle `start` or `list` printed")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = build_parser(environ).parse_args(argv)
    if args.command == "start" and args.method not in METHODS:
        return _error(f"{METHOD_ENV}={args.method!r} is not a method: use one of {', '.join(METHODS)}", 2)
    url = getattr(args, "dlq_url", None)
    if args.command != "cancel":
        if not url:
            return _error(f"the dead-letter queue URL is missing: pass --dlq-url or set {DLQ_URL_ENV}", 2)
        try:
            parse_queue_url(url)
        except RedriveInputError as error:
            return _error(str(error), 2)
    try:
        region = resolve_region(args.region, tool_env=REGION_ENV, environ=environ, queue_url=url)
    except RegionNotFoundError as error:
        return _error(str(error), 2)
    try:
        sqs = boto3.client("sqs", region_name=region)
        return _run(args, sqs, region)
    except RedriveInputError as error:
        return _error(str(error), 2)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in NO_SUCH_QUEUE:
            return _error(f"no such queue: {_one_line(error)}", 2)
        if code in NO_SUCH_TASK:
            return _error(f"no such running move task: {_one_line(error)}", 2)
        if args.command == "start" and args.method == "move-task" and code in ("500", "InternalFailure"):
            return _error(
                f"the endpoint did not run StartMessageMoveTask ({_one_line(error)[:120]}); an endpoint without "
                "message move tasks (moto) needs --method copy",
                1,
            )
        return _error(f"AWS refused: {_one_line(error)}", 1)
    except BotoCoreError as error:
        return _error(f"AWS refused: {_one_line(error)}", 1)
    except KeyboardInterrupt:
        follow_up = "the move task keeps running: `sqs-redrive list` shows it, `sqs-redrive cancel` stops it"
        copy = "the copy stopped: every message is in the dead-letter queue or the destination (perhaps both)"
        print(f"\n{PROG}: interrupted; {copy if getattr(args, 'method', '') == 'copy' else follow_up}", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, sqs: SQSClient, region: str | None) -> int:
    if args.command == "cancel":
        moved = cancel_move_task(sqs, args.task_handle)
        print(f"cancelling; {moved} message(s) were moved and stay moved")
        return 0
    status = queue_status(sqs, boto3.client("cloudwatch", region_name=region), args.dlq_url)
    if args.command == "status":
        age = _age(status.oldest_age_seconds)
        print(f"dead-letter queue: {status.url}")
        print(f"messages: {status.visible} visible, {status.in_flight} in flight")
        print(f"oldest message: {age}")
        sources = source_queue_urls(sqs, status.url)
        print(f"source queues: {', '.join(sources) or 'none (no redrive policy names this queue)'}")
        return 0
    if args.command == "list":
        tasks = list_move_tasks(sqs, status.arn)
        for task in tasks:
            total = "?" if task.to_move is None else task.to_move
            line = f"{task.status:<10} {task.moved}/{total} moved -> {task.destination_arn or 'the source queues'}"
            line += f"  handle: {task.task_handle}" if task.task_handle else ""
            line += f"  reason: {task.failure_reason}" if task.failure_reason else ""
            print(line)
        if not tasks:
            print("no move tasks")
        return 0
    return _start(args, sqs, status)


def _start(args: argparse.Namespace, sqs: SQSClient, status: QueueStatus) -> int:
    destination = destination_url(sqs, status.url, args.to)
    if status.visible == 0:
        print(f"nothing to move: {status.url} has no visible messages ({status.in_flight} in flight)")
        return 0
    print(f"moving {status.visible} message(s) from {status.url} to {destination} ({args.method})")
    bar = ProgressBar(sys.stdout)
    if args.method == "copy":
        report = copy_messages(
            sqs,
            status.url,
            destination,
            limit=status.visible,
            batch_bytes=status.max_message_size_bytes,
            on_progress=bar.update,
            max_per_second=args.max_per_second,
        )
        bar.finish()
        for reason in report.not_sent:
            print(f"not moved (stays in the dead-letter queue): {reason}", file=sys.stderr)
        if report.not_deleted:
            print(
                f"{report.not_deleted} message(s) were sent but not deleted: a later redrive sends them again",
                file=sys.stderr,
            )
        print(f"moved {report.moved} of {status.visible} message(s)")
        return 0 if report.moved == status.visible else 1
    handle = start_move_task(sqs, status.arn, queue_arn_from_url(destination, status.arn), args.max_per_second)
    print(f"move task started: {handle}")
    if args.no_follow:
        return 0
    task = follow_move_task(sqs, status.arn, handle, bar.update, poll_seconds=FOLLOW_POLL_SECONDS)
    bar.finish()
    reason = f": {task.failure_reason}" if task.failure_reason else ""
    print(f"move task {task.status}{reason}: {task.moved} message(s) moved")
    return 0 if task.status == "COMPLETED" else 1


def _age(seconds_old: float | None) -> str:
    if seconds_old is None:
        return "no CloudWatch datapoint in 15 minutes"
    seconds = int(seconds_old)
    return f"{seconds} s ({seconds / 3600:.1f} h) since it was first sent"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _error(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code
