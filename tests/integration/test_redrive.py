"""sqs-redrive on a moto server over HTTP: both ways of moving a dead-letter queue's messages back (SQS's move task,
through tools.localcloud's emulation of it, and the receive/send/delete copy), KMS-encrypted queues, the progress bar,
no message lost, and bad input (exit 2, one line)."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from sqs_decoupling.redrive import cli
from sqs_decoupling.redrive.cli import main
from sqs_decoupling.redrive.moves import copy_messages
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tools.localcloud import moto_compat
from tools.localcloud.server import queue_depth, wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class QueuePair:
    source_url: str
    dlq_url: str


@pytest.fixture
def redrive_env(moto_endpoint: str, dummy_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment: the moto server through AWS_ENDPOINT_URL (boto3 reads it itself), dummy credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(cli, "FOLLOW_POLL_SECONDS", 0.01)
    return {k: v for k, v in os.environ.items() if not k.startswith("SQS_REDRIVE_")}


@pytest.fixture
def make_pair(sqs: SQSClient, client: Callable[[str], Any]) -> Callable[..., QueuePair]:
    """``make_pair(encrypted=True, max_message_size_bytes=None)``: a source queue and its dead-letter queue, both under
    one customer-managed KMS key (as EncryptedQueue makes them) unless told otherwise."""

    def make(*, encrypted: bool = True, max_message_size_bytes: int | None = None) -> QueuePair:
        name = f"jobs-{uuid.uuid4().hex[:10]}"
        attributes: dict[str, str] = {}
        if encrypted:
            attributes["KmsMasterKeyId"] = client("kms").create_key(Description=f"key of {name}")["KeyMetadata"]["Arn"]
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes=attributes)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        source = attributes | {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})}
        if max_message_size_bytes:
            source["MaximumMessageSize"] = str(max_message_size_bytes)
        return QueuePair(sqs.create_queue(QueueName=name, Attributes=source)["QueueUrl"], dlq_url)

    return make


def dead_letters(sqs: SQSClient, queue_url: str, count: int, *, body_bytes: int = 0) -> dict[str, dict[str, Any]]:
    """Put ``count`` messages with attributes (a string, a number, binary) into ``queue_url``; body -> attributes."""
    sent: dict[str, dict[str, Any]] = {}
    for start in range(0, count, 10):
        entries = []
        for index in range(start, min(count, start + 10)):
            body = json.dumps({"job": index, "pad": "x" * body_bytes})
            attributes = {
                "tenant": {"DataType": "String", "StringValue": f"tenant-{index % 3}"},
                "attempt": {"DataType": "Number", "StringValue": str(index)},
                "digest": {"DataType": "Binary", "BinaryValue": index.to_bytes(4, "big")},
            }
            entries.append({"Id": str(index), "MessageBody": body, "MessageAttributes": attributes})
            sent[body] = attributes
        assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")  # type: ignore[arg-type]
    return sent


def drain(sqs: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue (received with its attributes, and deleted)."""
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", []):
        for message in messages:
            found.append(dict(message))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def depth(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def attributes_of(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
    }


def progress_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("[")]


@pytest.fixture
def operator(call_recorder: CallRecorder) -> Callable[[QueuePair], CallRecorder]:
    """``operator(pair)``: the recorder, with the pair's queues named as the permission catalogue names them."""

    def name(pair: QueuePair) -> CallRecorder:
        call_recorder.symbols |= {pair.dlq_url: "<dead_letter_queue>", pair.source_url: "<jobs_queue>"}
        return call_recorder

    return name


@pytest.fixture
def move_tasks() -> Iterator[None]:
    """moto with message move tasks (tools.localcloud's emulation), for this test only."""
    with moto_compat.sqs_message_move_tasks():
        yield


# Moving the messages back --------------------------------------------------------------------------------------


def test_the_copy_moves_every_dead_letter_back_with_its_attributes(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    redrive_env: dict[str, str],
    operator: Callable[[QueuePair], CallRecorder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN 25 dead letters with attributes in a KMS-encrypted dead-letter queue
    pair = make_pair()
    sent = dead_letters(sqs, pair.dlq_url, 25)
    recorder = operator(pair)
    # WHEN an operator redrives them by copy (stock moto has no move tasks)
    with recorder.as_principal("operator"):
        code = main(["start", "--dlq-url", pair.dlq_url, "--method", "copy"], redrive_env)
    out = capsys.readouterr().out
    # THEN it succeeds, the dead-letter queue is empty, and the source queue holds each message once, as it was
    assert code == 0
    assert depth(sqs, pair.dlq_url) == 0
    moved = drain(sqs, pair.source_url)
    assert sorted(m["Body"] for m in moved) == sorted(sent)
    assert all(attributes_of(m) == sent[m["Body"]] for m in moved)
    # AND a progress bar went from 0 to 25, one line per step (the output is not a terminal)
    bars = progress_lines(out)
    assert bars[0].endswith("0/25 moved (0%)") and bars[-1].endswith("25/25 moved (100%)")
    assert len(bars) == 4
    assert "moved 25 of 25 message(s)" in out
    # AND every call it made is one the permission rehearsal checks against the redrive operator policy
    assert_catalogued(
        recorder.calls(),
        needs=[("operator", "sqs", "ReceiveMessage"), ("operator", "sqs", "SendMessageBatch")],
    )


def test_the_move_task_moves_every_dead_letter_back_at_the_rate_asked(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    redrive_env: dict[str, str],
    operator: Callable[[QueuePair], CallRecorder],
    move_tasks: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN 25 dead letters, and an endpoint with message move tasks
    pair = make_pair()
    sent = dead_letters(sqs, pair.dlq_url, 25)
    recorder = operator(pair)
    # WHEN an operator redrives them at 7 a second with the default method (StartMessageMoveTask)
    with recorder.as_principal("operator"):
        code = main(["start", "--dlq-url", pair.dlq_url, "--max-per-second", "7"], redrive_env)
    out = capsys.readouterr().out
    # THEN the task completed and every message is back in the source queue, once, with its attributes
    assert code == 0
    assert "move task COMPLETED: 25 message(s) moved" in out
    assert depth(sqs, pair.dlq_url) == 0
    moved = drain(sqs, pair.source_url)
    assert sorted(m["Body"] for m in moved) == sorted(sent)
    assert all(attributes_of(m) == sent[m["Body"]] for m in moved)
    # AND the progress bar followed the task's own count, 7 messages a step
    assert [line.split("] ")[1].split(" ")[0] for line in progress_lines(out)] == ["7/25", "14/25", "21/25", "25/25"]
    assert_catalogued(
        recorder.calls(),
        needs=[("operator", "sqs", "StartMessageMoveTask"), ("operator", "sqs", "ListMessageMoveTasks")],
    )


def test_a_crash_between_send_and_delete_duplicates_and_loses_nothing(
    sqs: SQSClient, make_pair: Callable[..., QueuePair], client: Callable[[str], Any]
) -> None:
    # GIVEN 25 dead letters, and a copy whose first DeleteMessageBatch never happens (the process dies there)
    pair = make_pair()
    sent = dead_letters(sqs, pair.dlq_url, 25)
    crashing: SQSClient = client("sqs")

    def crash(**_: Any) -> None:
        raise KeyboardInterrupt("the operator's laptop went to sleep")

    crashing.meta.events.register("before-call.sqs.DeleteMessageBatch", crash)
    with pytest.raises(KeyboardInterrupt):
        copy_messages(
            crashing,
            pair.dlq_url,
            pair.source_url,
            limit=25,
            batch_bytes=256 * 1024,
            on_progress=lambda *_: None,
            visibility_seconds=1,
        )
    # THEN the first ten are in the source queue already, and back in the dead-letter queue after the visibility
    assert depth(sqs, pair.source_url) == 10
    wait_until(lambda: depth(sqs, pair.dlq_url) == 25, timeout=15, what="the unsent deletes' messages to reappear")
    # WHEN the redrive runs again
    report = copy_messages(
        sqs, pair.dlq_url, pair.source_url, limit=25, batch_bytes=256 * 1024, on_progress=lambda *_: None
    )
    # THEN every message is in the source queue: ten of them twice (duplicates), none missing
    assert report.moved == 25
    bodies = [m["Body"] for m in drain(sqs, pair.source_url)]
    assert len(bodies) == 35
    assert set(bodies) == set(sent)
    assert depth(sqs, pair.dlq_url) == 0


def test_a_message_the_destination_refuses_stays_in_the_dead_letter_queue(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    redrive_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN dead letters of 2 KiB, and a source queue whose limit is now 1 KiB (its settings changed since)
    pair = make_pair(max_message_size_bytes=1024)
    sent = dead_letters(sqs, pair.dlq_url, 3, body_bytes=2048)
    # WHEN they are redriven by copy
    code = main(["start", "--dlq-url", pair.dlq_url, "--method", "copy"], redrive_env)
    err = capsys.readouterr().err
    # THEN the redrive fails, saying why, and every message is still in the dead-letter queue (received, so in
    # flight until the copy's visibility timeout ends; never deleted)
    assert code == 1
    refused = [line for line in err.splitlines() if line.startswith("not moved (stays in the dead-letter queue): ")]
    assert len(refused) == len(sent) and all("1024 bytes" in line for line in refused)
    assert depth(sqs, pair.source_url) == 0
    assert queue_depth(sqs, pair.dlq_url) == (0, len(sent))


# Looking at the dead-letter queue, listing and cancelling tasks ------------------------------------------------


def test_status_shows_the_depth_the_oldest_age_and_the_source_queue(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    client: Callable[[str], Any],
    redrive_env: dict[str, str],
    operator: Callable[[QueuePair], CallRecorder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN 3 dead letters, and CloudWatch's age metric for the dead-letter queue saying 2 hours (SQS publishes it;
    # moto does not, so the test does)
    pair = make_pair()
    dead_letters(sqs, pair.dlq_url, 3)
    client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": pair.dlq_url.rsplit("/", 1)[1]}],
                "Value": 7200,
                "Unit": "Seconds",
            }
        ],
    )
    recorder = operator(pair)
    # WHEN the operator asks for its status, the queue named by SQS_REDRIVE_DLQ_URL
    with recorder.as_principal("operator"):
        code = main(["status"], redrive_env | {"SQS_REDRIVE_DLQ_URL": pair.dlq_url})
    out = capsys.readouterr().out
    # THEN it shows the depth, the age, and where a redrive would send the messages; nothing moved
    assert code == 0
    assert "messages: 3 visible, 0 in flight" in out
    assert "oldest message: 7200 s (2.0 h) since it was first sent" in out
    assert f"source queues: {pair.source_url}" in out
    assert depth(sqs, pair.dlq_url) == 3
    assert_catalogued(recorder.calls(), needs=[("operator", "cloudwatch", "GetMetricData")])


def test_a_running_task_can_be_listed_and_cancelled(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    redrive_env: dict[str, str],
    operator: Callable[[QueuePair], CallRecorder],
    move_tasks: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a move task started without following it
    pair = make_pair()
    dead_letters(sqs, pair.dlq_url, 5)
    recorder = operator(pair)
    with recorder.as_principal("operator"):
        assert main(["start", "--dlq-url", pair.dlq_url, "--max-per-second", "1", "--no-follow"], redrive_env) == 0
        handle = capsys.readouterr().out.split("move task started: ")[1].split()[0]
        recorder.symbols[handle] = "<task_handle>"
        assert json.loads(base64.b64decode(handle))["sourceArn"].endswith(pair.dlq_url.rsplit("/", 1)[1])
        # WHEN it is listed, then cancelled
        assert main(["list", "--dlq-url", pair.dlq_url], redrive_env) == 0
        listed = capsys.readouterr().out
        assert main(["cancel", handle], redrive_env) == 0
        cancelled = capsys.readouterr().out
        assert main(["list", "--dlq-url", pair.dlq_url], redrive_env) == 0
        after = capsys.readouterr().out
    # THEN the list showed it running with its handle; after the cancel it is CANCELLED, what moved stays moved
    assert listed.startswith("RUNNING    1/5 moved") and f"handle: {handle}" in listed
    assert cancelled.startswith("cancelling; 1 message(s) were moved")
    assert after.startswith("CANCELLED  1/5 moved") and "handle" not in after
    assert (depth(sqs, pair.source_url), depth(sqs, pair.dlq_url)) == (1, 4)
    assert_catalogued(recorder.calls(), needs=[("operator", "sqs", "CancelMessageMoveTask")])


# Bad input ------------------------------------------------------------------------------------------------------


def test_a_move_task_on_an_endpoint_without_them_says_to_copy(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    redrive_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN stock moto (no message move tasks) and dead letters
    pair = make_pair()
    dead_letters(sqs, pair.dlq_url, 2)
    # WHEN a redrive asks for the move task
    code = main(["start", "--dlq-url", pair.dlq_url], redrive_env)
    err = capsys.readouterr().err
    # THEN it fails with one line that names the way that works, and nothing moved
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "--method copy" in err
    assert depth(sqs, pair.dlq_url) == 2


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["status"], "the dead-letter queue URL is missing"),
        (["start", "--dlq-url", "jobs-dlq"], "is not a queue URL"),
        (["start", "--dlq-url", "{dlq}", "--max-per-second", "0"], "1..500"),
        (["start", "--dlq-url", "{dlq}", "--max-per-second", "501"], "1..500"),
        (["start", "--dlq-url", "{dlq}", "--max-per-second", "fast"], "1..500"),
        (["start", "--dlq-url", "{dlq}", "--method", "teleport"], "invalid choice"),
        (["start", "--dlq-url", "{source}"], "is not the dead-letter queue of any queue"),
        (["status", "--dlq-url", "{missing}"], "no such queue"),
        (["cancel", "bm90IGEgaGFuZGxl"], "no such running move task"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(
    sqs: SQSClient,
    make_pair: Callable[..., QueuePair],
    redrive_env: dict[str, str],
    move_tasks: None,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    says: str,
) -> None:
    # GIVEN a queue pair with dead letters
    pair = make_pair()
    dead_letters(sqs, pair.dlq_url, 2)
    missing = pair.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    argv = [a.format(dlq=pair.dlq_url, source=pair.source_url, missing=missing) for a in argv]
    # WHEN the CLI is given bad input
    code = exit_code(argv, redrive_env)
    err = capsys.readouterr().err
    # THEN exit 2, one line on stderr naming what was wrong, no traceback, and nothing moved
    assert code == 2
    assert err.startswith("sqs-redrive: ") and len(err.strip().splitlines()) == 1, err
    assert says in err and "Traceback" not in err
    assert depth(sqs, pair.dlq_url) == 2


def exit_code(argv: list[str], environ: dict[str, str]) -> int:
    """The CLI's exit code, whether main returns it or argparse exits with it (its own errors)."""
    try:
        return main(argv, environ)
    except SystemExit as exited:
        return int(exited.code or 0)


def test_help_lists_the_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN --help is asked for THEN it exits 0 after printing the commands and the exit codes, and does nothing else
    with pytest.raises(SystemExit) as exited:
        main(["--help"], {})
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "{status,start,list,cancel}" in out and "exit codes:" in out and "130" in out


def test_the_copy_keeps_to_the_rate_asked(sqs: SQSClient, make_pair: Callable[..., QueuePair]) -> None:
    # GIVEN 20 dead letters WHEN copied at 40 a second
    pair = make_pair(encrypted=False)
    dead_letters(sqs, pair.dlq_url, 20)
    started = time.monotonic()
    report = copy_messages(
        sqs,
        pair.dlq_url,
        pair.source_url,
        limit=20,
        batch_bytes=256 * 1024,
        on_progress=lambda *_: None,
        max_per_second=40,
    )
    # THEN the second batch of ten waited for the first's quarter second
    assert report.moved == 20
    assert time.monotonic() - started >= 0.25
