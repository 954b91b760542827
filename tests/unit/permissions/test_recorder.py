"""The call recorder (tests/support/permissions/recorder.py): what it records, under which principal, and how a
call no catalogue entry covers fails a test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.permissions.calls import CATALOGUE, Call, CatalogueEntry, stale, uncovered
from tests.support.permissions.recorder import CALLS_OUT_ENV, CallRecorder, assert_catalogued
from tests.support.permissions.table import key_shape, render

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient


@pytest.fixture(autouse=True)
def _not_in_the_calls_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # These recordings are the recorder's own examples, not the runtime's calls: kept out of PERMISSION_CALLS_OUT.
    monkeypatch.delenv(CALLS_OUT_ENV, raising=False)


@pytest.fixture
def queue_url(sqs: SQSClient) -> str:
    return sqs.create_queue(QueueName="jobs-1a2b")["QueueUrl"]


def test_a_call_inside_as_principal_is_recorded_with_symbolized_params_and_one_outside_is_not(
    tmp_path: Path, sqs: SQSClient, queue_url: str
) -> None:
    # GIVEN a recorder that knows the queue as <jobs_queue>
    with CallRecorder(tmp_path, symbols={"jobs-1a2b": "<jobs_queue>"}) as recording:
        # WHEN the test inspects the queue, then a worker receives from it and sends to it
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
        with recording.as_principal("worker"):
            sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
            sqs.send_message(QueueUrl=queue_url, MessageBody="secret payload")
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])

    # THEN only the worker's calls are recorded, the queue URL by its symbol, the message body not at all
    assert recording.calls() == [
        Call("worker", "sqs", "ReceiveMessage", {"QueueUrl": "<jobs_queue>"}),
        Call("worker", "sqs", "SendMessage", {"QueueUrl": "<jobs_queue>"}),
    ]


def test_threads_started_by_a_principal_are_its_own_and_others_are_not(
    tmp_path: Path, sqs: SQSClient, queue_url: str
) -> None:
    # GIVEN a thread the test starts, and one the "lambda" principal starts (as a poller or s3transfer would)
    def look() -> None:
        sqs.get_queue_url(QueueName="jobs-1a2b")

    with CallRecorder(tmp_path, symbols={"jobs-1a2b": "<jobs_queue>"}) as recording:
        outside = threading.Thread(target=look)
        with recording.as_principal("lambda"):
            inside = threading.Thread(target=look)
            inside.start()
        # WHEN both call AWS (the principal's block has ended before either call is made)
        outside.start()
        for thread in (inside, outside):
            thread.join()

    # THEN only the principal's thread's call is recorded
    assert recording.calls() == [Call("lambda", "sqs", "GetQueueUrl", {"QueueName": "<jobs_queue>"})]
    # AND threading is back to normal
    assert threading.Thread.start.__qualname__ == "Thread.start"


def test_generated_values_are_placeholders_and_conditions_are_kept(tmp_path: Path, s3: S3Client) -> None:
    # GIVEN a versioned bucket with an object
    s3.create_bucket(Bucket="processed-9f")
    s3.put_bucket_versioning(Bucket="processed-9f", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="processed-9f", Key="processed/a.json", Body=b"{}")["VersionId"]

    # WHEN a principal reads a version and writes conditionally
    with (
        CallRecorder(tmp_path, symbols={"processed-9f": "<processed_bucket>"}) as recording,
        recording.as_principal("worker"),
    ):
        s3.head_object(Bucket="processed-9f", Key="processed/a.json", VersionId=version)
        s3.put_object(Bucket="processed-9f", Key="processed/b.json", Body=b"{}", IfNoneMatch="*")

    # THEN the version id is a placeholder, the condition is kept, the body is not recorded
    assert recording.calls() == [
        Call(
            "worker",
            "s3",
            "HeadObject",
            {"Bucket": "<processed_bucket>", "Key": "processed/a.json", "VersionId": "<version_id>"},
        ),
        Call(
            "worker", "s3", "PutObject", {"Bucket": "<processed_bucket>", "Key": "processed/b.json", "IfNoneMatch": "*"}
        ),
    ]


def test_a_queue_known_by_its_url_is_known_by_its_name_and_arn_and_per_principal_symbols_come_first(
    tmp_path: Path,
) -> None:
    # GIVEN the Lambda path's queue by URL for everyone, and the fleet's queue by URL for the worker only
    recording = CallRecorder(tmp_path, symbols={"http://localhost:5000/123456789012/lambda-jobs": "<jobs_queue>"})
    recording.principal_symbols["worker"] = {"http://localhost:5000/123456789012/fleet-jobs": "<jobs_queue>"}

    # WHEN names, ARNs and URLs of both are symbolized THEN each principal knows only its own queue
    assert recording.symbolize("lambda-jobs", "lambda") == "<jobs_queue>"  # an encryption context names the queue
    assert recording.symbolize("arn:aws:sqs:us-east-1:123456789012:lambda-jobs", "lambda") == "<jobs_queue>"
    assert recording.symbolize("http://localhost:5000/123456789012/fleet-jobs", "lambda").endswith("/fleet-jobs")
    assert recording.symbolize("fleet-jobs", "worker") == "<jobs_queue>"
    assert recording.symbolize("uploads/clip.mp4", "worker") == "uploads/clip.mp4"


def test_a_subprocess_records_its_calls_through_sitecustomize_and_still_runs_the_one_it_hides(
    tmp_path: Path,
) -> None:
    # GIVEN a sitecustomize of the interpreter's own, which the recorder's hides
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import os\nos.environ['HIDDEN_SITECUSTOMIZE_RAN'] = 'yes'\n")
    # AND a program that calls SQS (nothing listens: the call is recorded before it is sent)
    program = textwrap.dedent(
        """
        import os, boto3, botocore.config
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                           config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1))
        try:
            sqs.receive_message(QueueUrl="http://127.0.0.1:9/123456789012/jobs-1a2b")
        except Exception:
            pass
        print(os.environ.get("HIDDEN_SITECUSTOMIZE_RAN"))
        """
    )
    recording = CallRecorder(tmp_path, symbols={"jobs-1a2b": "<jobs_queue>"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": str(hidden),
    }

    # WHEN it runs as a subprocess with the recorder's environment for "worker"
    result = subprocess.run(
        [sys.executable, "-c", program],
        env=env | recording.subprocess_env("worker", env),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    # THEN its call is recorded as the worker's, symbolized, and the hidden sitecustomize ran too
    assert recording.calls() == [Call("worker", "sqs", "ReceiveMessage", {"QueueUrl": "<jobs_queue>"})]
    assert result.stdout.strip() == "yes", result.stderr


def test_uncovered_reports_a_call_without_an_entry_and_one_whose_parameter_does_not_match() -> None:
    # GIVEN a catalogue with one entry: the worker writes under processed/ in the processed bucket
    catalogue = [CatalogueEntry("worker", "s3", "PutObject", {"Bucket": "<processed_bucket>", "Key": "processed/*"})]
    covered = Call("worker", "s3", "PutObject", {"Bucket": "<processed_bucket>", "Key": "processed/x/manifest.json"})
    elsewhere = Call("worker", "s3", "PutObject", {"Bucket": "<processed_bucket>", "Key": "uploads/x.mp4"})
    unknown = Call("worker", "s3", "DeleteObject", {"Bucket": "<processed_bucket>", "Key": "processed/x"})
    other_principal = Call("lambda", "s3", "PutObject", dict(covered.params))

    # WHEN the calls are checked against it
    missing = uncovered([covered, elsewhere, unknown, other_principal, elsewhere], catalogue)

    # THEN each call the entry does not cover is reported once, in order
    assert missing == [elsewhere, unknown, other_principal]
    # AND a wired test's check fails naming the call and where to add its entry
    with pytest.raises(AssertionError) as failure:
        assert_catalogued([covered, unknown], needs=[], catalogue=catalogue)
    assert "worker: s3.DeleteObject(Bucket='<processed_bucket>', Key='processed/x')" in str(failure.value)
    assert "tests/support/permissions/calls.py" in str(failure.value)


def test_an_entry_no_recorded_call_covers_is_stale_unless_its_reason_is_given() -> None:
    # GIVEN a catalogue of three entries, and a run whose calls cover only the first
    send = CatalogueEntry("worker", "sqs", "SendMessage", {"QueueUrl": "<jobs_queue>"})
    gone = CatalogueEntry("worker", "sqs", "PurgeQueue", {"QueueUrl": "<jobs_queue>"})
    explained = CatalogueEntry("worker", "s3", "UploadPart", {"Bucket": "<processed_bucket>"})
    calls = [Call("worker", "sqs", "SendMessage", {"QueueUrl": "<jobs_queue>"})]

    # WHEN the stale entries are sought, with a reason given for the third
    found = stale(calls, (send, gone, explained), {("worker", "s3", "UploadPart"): "not reached by the test clips"})

    # THEN the second is stale (the code that called it is gone), and a call to another queue would not cover it
    assert found == [gone]
    assert stale([Call("worker", "sqs", "PurgeQueue", {"QueueUrl": "other"})], (gone,), {}) == [gone]


def test_a_recorder_that_saw_nothing_the_test_needs_fails_the_check() -> None:
    # GIVEN no recorded calls WHEN the check needs the worker's ReceiveMessage THEN it fails naming it
    with pytest.raises(AssertionError, match="did not see \\[\\('worker', 'sqs', 'ReceiveMessage'\\)\\]"):
        assert_catalogued([], needs=[("worker", "sqs", "ReceiveMessage")], catalogue=[])


def test_the_table_shows_one_row_per_kind_of_call_with_keys_by_shape() -> None:
    # GIVEN two manifest writes for different clips and versions
    calls = [
        Call("worker", "s3", "PutObject", {"Bucket": "<processed_bucket>", "Key": key})
        for key in (
            "processed/uploads/clip 1.mp4/0b6f3a1e-7c4d-4a8e-9f10-1234567890ab/preview/manifest.json",
            "processed/uploads/other.mp4/d41d8cd98f00b204e9800998ecf8427e/preview/manifest.json",
        )
    ]

    # WHEN they are rendered THEN they share one row, the key by its shape
    assert render(calls).splitlines()[2:] == [
        "| worker | s3 | PutObject | Bucket=<processed_bucket>, Key=processed/<source key>/<version>/preview/"
        "manifest.json | 2 |"
    ]
    assert key_shape("uploads/My clip.mp4") == "uploads/<file>"


def test_the_catalogue_names_resources_by_symbol_and_lists_each_kind_of_call_once() -> None:
    # GIVEN the catalogue WHEN its entries are read THEN each is unique, for a known principal, and every parameter
    # that names a resource is a symbol (a concrete name from one test run would cover nothing in the next)
    entries = [(e.principal, e.service, e.operation, sorted(e.params.items())) for e in CATALOGUE]
    assert len(entries) == len(set(map(repr, entries)))
    assert {e.principal for e in CATALOGUE} == {"worker", "lambda", "producer", "operator"}
    named = [(e, name, value) for e in CATALOGUE for name, value in e.params.items() if name not in ("Key", "Prefix")]
    assert [(e.operation, name, v) for e, name, v in named if name != "IfNoneMatch" and not v.startswith("<")] == []
