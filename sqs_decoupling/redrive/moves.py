"""Move a dead-letter queue's messages back to a queue, two ways, with the same progress reports.

- **The move task** (``StartMessageMoveTask``): SQS moves the messages itself, server-side, at most
  ``MAX_MESSAGES_PER_SECOND`` a second, and reports its progress through ``ListMessageMoveTasks``. What AWS runs.
- **The copy** (:func:`copy_messages`): receive from the dead-letter queue, send to the destination, and delete
  from the dead-letter queue only what the destination accepted. For endpoints without message move tasks (moto).
  Nothing is lost: a message leaves the dead-letter queue only after the destination has it. A crash between the
  send and the delete leaves the message in both queues; it becomes visible in the dead-letter queue again after
  ``visibility_seconds`` and the next redrive sends it again: a duplicate, which the consumers tolerate (delivery is
  at least once), never a loss.

Both keep the body and the message attributes as they are (a client-side encrypted body stays encrypted for the
queue it was sent to); both give the moved messages new message ids and a new retention period.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

MAX_MESSAGES_PER_SECOND = 500
"""StartMessageMoveTask's ``MaxNumberOfMessagesPerSecond`` range is 1..500 (the console's "custom max velocity")."""
MAX_BATCH_ENTRIES = 10
TASK_FINISHED = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
AGE_LOOKBACK = datetime.timedelta(minutes=15)
"""How far back :func:`queue_status` looks for the CloudWatch age metric (SQS publishes it every minute)."""

ProgressCallback = Callable[[int, int | None], None]
"""``on_progress(moved, total)``: called after each step; ``total`` None while the move task has not counted yet."""


class RedriveInputError(ValueError):
    """The command names a queue or task that cannot be redriven as asked (the CLI's exit code 2)."""


@dataclass(frozen=True)
class QueueStatus:
    """A queue's depth, and the age of its oldest message from CloudWatch (None: no datapoint in 15 minutes)."""

    url: str
    arn: str
    visible: int
    in_flight: int
    max_message_size_bytes: int
    oldest_age_seconds: float | None


@dataclass(frozen=True)
class MoveTask:
    """One ``ListMessageMoveTasks`` result. ``task_handle`` is only given while the task runs."""

    status: str
    moved: int
    to_move: int | None
    source_arn: str
    destination_arn: str | None
    task_handle: str | None
    max_per_second: int | None
    failure_reason: str | None

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> MoveTask:
        return cls(
            status=str(result["Status"]),
            moved=int(result.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=int(result["ApproximateNumberOfMessagesToMove"])
            if "ApproximateNumberOfMessagesToMove" in result
            else None,
            source_arn=str(result.get("SourceArn", "")),
            destination_arn=result.get("DestinationArn"),
            task_handle=result.get("TaskHandle"),
            max_per_second=result.get("MaxNumberOfMessagesPerSecond"),
            failure_reason=result.get("FailureReason"),
        )


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_messages` did: ``moved`` are in the destination and gone from the dead-letter queue."""

    moved: int
    not_sent: tuple[str, ...] = ()
    """One reason per message the destination refused: it stays in the dead-letter queue."""
    not_deleted: int = 0
    """Sent, but still in the dead-letter queue (the delete failed): a later redrive sends them again."""


# Looking ----------------------------------------------------------------------------------------------------------


def queue_status(sqs: SQSClient, cloudwatch: Any, queue_url: str) -> QueueStatus:
    """The queue's attributes (GetQueueAttributes) and its ``ApproximateAgeOfOldestMessage`` (an SQS metric in
    CloudWatch, not a queue attribute: a dead-letter queue keeps a message's first enqueue time, so this is how
    long ago the job was first sent)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "QueueArn",
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "MaximumMessageSize",
        ],
    )["Attributes"]
    arn = attributes["QueueArn"]
    return QueueStatus(
        url=queue_url,
        arn=arn,
        visible=int(attributes["ApproximateNumberOfMessages"]),
        in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        max_message_size_bytes=int(attributes["MaximumMessageSize"]),
        oldest_age_seconds=_oldest_age(cloudwatch, arn.rsplit(":", 1)[-1]),
    )


def _oldest_age(cloudwatch: Any, queue_name: str) -> float | None:
    # cloudwatch: Any: the boto3-stubs extras the project installs have no CloudWatch stubs.
    now = datetime.datetime.now(datetime.UTC)
    results = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "age",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - AGE_LOOKBACK,
        EndTime=now + datetime.timedelta(minutes=1),  # the end is exclusive: the current minute's datapoint too
        ScanBy="TimestampDescending",
    )["MetricDataResults"]
    values = results[0].get("Values", []) if results else []
    return float(values[0]) if values else None


def source_queue_urls(sqs: SQSClient, dead_letter_queue_url: str) -> list[str]:
    """The queues whose redrive policy names this dead-letter queue (ListDeadLetterSourceQueues, paginated)."""
    paginator = sqs.get_paginator("list_dead_letter_source_queues")
    return [url for page in paginator.paginate(QueueUrl=dead_letter_queue_url) for url in page.get("queueUrls", [])]


def destination_url(sqs: SQSClient, dead_letter_queue_url: str, to: str | None) -> str:
    """``to`` if given, else the dead-letter queue's one source queue; refuse when that is not one queue."""
    if to:
        return to
    sources = source_queue_urls(sqs, dead_letter_queue_url)
    if len(sources) == 1:
        return sources[0]
    if not sources:
        raise RedriveInputError(
            f"{dead_letter_queue_url} is not the dead-letter queue of any queue (no redrive policy names it): "
            "name the destination with --to QUEUE_URL"
        )
    raise RedriveInputError(
        f"{dead_letter_queue_url} is the dead-letter queue of {len(sources)} queues ({', '.join(sources)}): "
        "name the destination with --to QUEUE_URL"
    )


QUEUE_URL = re.compile(r"^https?://[^/\s]+/(\d{12})/([\w-]{1,80}(?:\.fifo)?)/?$")


def parse_queue_url(queue_url: str) -> tuple[str, str]:
    """(account, queue name) of a queue URL; :class:`RedriveInputError` for anything else."""
    match = QUEUE_URL.match(queue_url)
    if match is None:
        raise RedriveInputError(
            f"{queue_url!r} is not a queue URL like https://sqs.<region>.amazonaws.com/<12-digit account>/<name>"
        )
    return match.group(1), match.group(2)


def queue_arn_from_url(queue_url: str, like_arn: str) -> str:
    """A queue's ARN from its URL (account and name), in the partition and region of ``like_arn``: a move task's
    destination is named by ARN, and reading it from the queue would need sqs:GetQueueAttributes there too."""
    account, name = parse_queue_url(queue_url)
    partition, _, region = like_arn.split(":")[1:4]
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


# The move task ----------------------------------------------------------------------------------------------------


def start_move_task(sqs: SQSClient, source_arn: str, destination_arn: str, max_per_second: int | None) -> str:
    """Start SQS's move task from ``source_arn`` (the dead-letter queue) to ``destination_arn``; its task handle."""
    if max_per_second is None:
        return sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)["TaskHandle"]
    return sqs.start_message_move_task(
        SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=max_per_second
    )["TaskHandle"]


def list_move_tasks(sqs: SQSClient, source_arn: str) -> list[MoveTask]:
    """The dead-letter queue's most recent move tasks (at most 10, newest first; the API has no paginator)."""
    results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
    return [MoveTask.from_result(result) for result in results]


def follow_move_task(
    sqs: SQSClient,
    source_arn: str,
    task_handle: str,
    on_progress: ProgressCallback,
    *,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> MoveTask:
    """Poll ``ListMessageMoveTasks`` until the task has finished (SQS has no waiter for it); its last state.

    A running task is found by its handle; a finished one has none, and is the newest (one task runs at a time per
    queue)."""
    while True:
        tasks = list_move_tasks(sqs, source_arn)
        task = next((t for t in tasks if t.task_handle == task_handle), None) or (tasks[0] if tasks else None)
        if task is None:
            raise RedriveInputError(f"no move task of {source_arn} is listed: was it started on another endpoint?")
        on_progress(task.moved, task.to_move)
        if task.status in TASK_FINISHED:
            return task
        sleep(poll_seconds)


def cancel_move_task(sqs: SQSClient, task_handle: str) -> int:
    """Cancel a running move task; the messages it moved so far stay moved. Returns how many that is."""
    return int(sqs.cancel_message_move_task(TaskHandle=task_handle).get("ApproximateNumberOfMessagesMoved", 0))


# The copy ---------------------------------------------------------------------------------------------------------


def copy_messages(
    sqs: SQSClient,
    dead_letter_queue_url: str,
    destination_queue_url: str,
    *,
    limit: int,
    batch_bytes: int,
    on_progress: ProgressCallback,
    max_per_second: int | None = None,
    wait_seconds: int = 1,
    visibility_seconds: int = 60,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CopyReport:
    """Move up to ``limit`` messages (the depth when the redrive starts, as the move task does) by receive, send,
    then delete of what was sent; stop early when the dead-letter queue has nothing visible (a long poll of
    ``wait_seconds``, which asks every SQS server) or a send is refused.

    ``batch_bytes``: the most one SendMessageBatch may carry (SQS caps a batch's total at the queue's maximum message
    size). ``max_per_second`` paces the sends like the move task's rate.
    """
    moved, not_deleted, started = 0, 0, clock()
    not_sent: list[str] = []
    on_progress(0, limit)
    while moved + not_deleted < limit and not not_sent:
        messages = sqs.receive_message(
            QueueUrl=dead_letter_queue_url,
            MaxNumberOfMessages=min(MAX_BATCH_ENTRIES, limit - moved - not_deleted),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["AWSTraceHeader"],
        ).get("Messages", [])
        if not messages:
            break
        for batch in _batches(messages, batch_bytes):
            if max_per_second:
                sleep(max(0.0, started + (moved + not_deleted) / max_per_second - clock()))
            sent, refused = _send(sqs, destination_queue_url, batch)
            not_sent.extend(refused)
            deleted = _delete(sqs, dead_letter_queue_url, sent)
            moved += deleted
            not_deleted += len(sent) - deleted
            on_progress(moved, limit)
    return CopyReport(moved=moved, not_sent=tuple(not_sent), not_deleted=not_deleted)


def _send(sqs: SQSClient, queue_url: str, batch: Sequence[MessageTypeDef]) -> tuple[list[MessageTypeDef], list[str]]:
    """Send one batch; (the messages the destination accepted, a reason per message it refused)."""
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for index, message in enumerate(batch):
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": message["Body"]}
        attributes = message_attributes(message)
        if attributes:
            entry["MessageAttributes"] = attributes  # type: ignore[typeddict-item]  # the same shape, received
        trace = message.get("Attributes", {}).get("AWSTraceHeader")
        if trace:
            entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
        entries.append(entry)
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except ClientError as error:  # the whole batch refused (moto: one message over the destination's limit)
        reason = " ".join(str(error).split())
        return [], [f"message {message['MessageId']}: {reason}" for message in batch]
    sent = [batch[int(entry["Id"])] for entry in response.get("Successful", [])]
    refused = [
        f"message {batch[int(entry['Id'])]['MessageId']}: {entry['Code']} {entry.get('Message', '')}".strip()
        for entry in response.get("Failed", [])
    ]
    return sent, refused


def _delete(sqs: SQSClient, queue_url: str, messages: Sequence[MessageTypeDef]) -> int:
    if not messages:
        return 0
    response = sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(messages)],
    )
    return len(response.get("Successful", []))


def message_attributes(message: MessageTypeDef) -> dict[str, dict[str, Any]]:
    """A received message's attributes in the shape SendMessage takes (the list fields SQS reserves dropped)."""
    return {
        name: {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        for name, value in message.get("MessageAttributes", {}).items()
    }


def message_bytes(message: MessageTypeDef) -> int:
    """What SQS counts against the size limit: the body, and each attribute's name, type and value."""
    size = len(message["Body"].encode())
    for name, value in message_attributes(message).items():
        data = value.get("BinaryValue") or str(value.get("StringValue", "")).encode()
        size += len(name.encode()) + len(str(value["DataType"]).encode()) + len(data)
    return size


def _batches(messages: Sequence[MessageTypeDef], limit: int) -> Iterator[list[MessageTypeDef]]:
    batch: list[MessageTypeDef] = []
    total = 0
    for message in messages:
        size = message_bytes(message)
        if batch and total + size > limit:
            yield batch
            batch, total = [], 0
        batch.append(message)
        total += size
    if batch:
        yield batch
