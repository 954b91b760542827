"""End to end with injected trouble, on a moto server: 30+ jobs through both consumer paths.

The queues and buckets are created with boto3, mirroring the stacks (S3 notifications to a queue with a DLQ,
maxReceiveCount 3, versioned buckets), with short visibility timeouts so retries happen within seconds. The Lambda
path is the real handler behind tools.localcloud.poller (the event-source-mapping stand-in); the fleet path is the real
worker, ``python -m sqs_decoupling.worker_fleet.worker``, as subprocesses.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from sqs_decoupling.video.jobs import VideoJob, sqs_body_for
from sqs_decoupling.worker_fleet.worker.spot import INTERRUPTION_PATH, RELEASE_MARGIN_SECONDS
from tests.support.aws import notify_queue_of_uploads
from tests.support.held_ffmpeg import HeldFfmpeg
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tests.support.spot import interruption_notice
from tests.support.videos import cached_video_bytes
from tools.localcloud import moto_compat
from tools.localcloud.lambda_local import HandlerLog, load_handler
from tools.localcloud.poller import EventSourcePoller
from tools.localcloud.server import DUMMY_ENV, client, moto_server, queue_depth, wait_until
from tools.localcloud.worker_process import WorkerProcess

pytestmark = pytest.mark.slow

MAX_RECEIVE_COUNT = 3
MALFORMED_BODY = '{"Records": "this is not an S3 event"}'


@dataclass(frozen=True)
class Path_:
    uploads: str
    processed: str
    queue_url: str
    dlq_url: str
    profile: str  # the consumer's video profile: its outputs go under processed/<key>/<version>/<profile>/


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    saved = dict(os.environ)
    # S3 events with versionId, as real S3 sends them for versioned buckets, and S3's key length limit: the moto
    # work-arounds this test's S3 and SQS calls need. The others fix moto's CloudFormation, which nothing here uses.
    with moto_compat.s3_events_with_version_ids(), moto_server(all_work_arounds=False) as endpoint_url:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in DUMMY_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)  # the in-process handler's boto3 client uses it
        yield endpoint_url
    os.environ.clear()
    os.environ.update(saved)  # load_handler sets the function's environment variables in os.environ


def make_path(endpoint: str, name: str, *, visibility_timeout: int, profile: str) -> Path_:
    """Uploads bucket -(ObjectCreated uploads/)-> queue (DLQ after 3 receives); versioned output bucket."""
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uploads, processed = f"{name}-uploads", f"{name}-processed"
    for bucket in (uploads, processed):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    notify_queue_of_uploads(s3, uploads, queue_arn)
    return Path_(uploads, processed, queue_url, dlq_url, profile)


def upload(endpoint: str, path: Path_, key: str, data: bytes) -> VideoJob:
    response = client("s3", endpoint).put_object(Bucket=path.uploads, Key=key, Body=data)
    return VideoJob(path.uploads, key, response["VersionId"], response["ETag"].strip('"'), len(data))


def depth(endpoint: str, queue_url: str) -> int:
    return sum(queue_depth(client("sqs", endpoint), queue_url))


def keys(endpoint: str, bucket: str, prefix: str) -> list[str]:
    response = client("s3", endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in response.get("Contents", [])]


def assert_outputs(endpoint: str, path: Path_, valid: list[VideoJob], failures: dict[str, str]) -> None:
    """Exactly one complete output set per valid video, no partial set, one failure record per permanent failure."""
    s3 = client("s3", endpoint)
    processed = keys(endpoint, path.processed, "processed/")
    manifests = sorted(k for k in processed if k.endswith("/manifest.json"))
    assert manifests == sorted(job.profile_prefix(path.profile) + "manifest.json" for job in valid)
    for manifest_key in manifests:
        # Completed exactly once: the manifest (written last, conditionally) has a single version.
        versions = s3.list_object_versions(Bucket=path.processed, Prefix=manifest_key).get("Versions", [])
        assert len(versions) == 1, f"{manifest_key} was written {len(versions)} times"
        manifest = json.loads(s3.get_object(Bucket=path.processed, Key=manifest_key)["Body"].read())
        assert set(manifest["outputs"]) <= set(processed)
    # No partial set: every output belongs to a prefix whose manifest exists (failure records and the
    # per-key latest-outcome pointers aside).
    prefixes = {m.removesuffix("manifest.json") for m in manifests}
    outputs = [k for k in processed if not k.endswith(("/failure.json", ".latest.json"))]
    assert [k for k in outputs if not any(k.startswith(p) for p in prefixes)] == []
    records = {}
    for key in processed:
        if key.endswith("/failure.json"):
            record = json.loads(s3.get_object(Bucket=path.processed, Key=key)["Body"].read())
            records[record["source"]["key"]] = record["reason"]
    assert records == failures


def symbols_of(path: Path_) -> dict[str, str]:
    """The path's resources by the symbols the permission catalogue uses for its stack's queue and buckets."""
    return {path.queue_url: "<jobs_queue>", path.uploads: "<uploads_bucket>", path.processed: "<processed_bucket>"}


def test_both_paths_survive_duplicates_reordering_bad_inputs_and_killed_workers(
    endpoint: str, tmp_path: Path, call_recorder: CallRecorder, fake_imds: Any
) -> None:
    started = time.monotonic()
    sqs = client("sqs", endpoint)
    small, longer = cached_video_bytes(), cached_video_bytes(seconds=3, size="640x480")

    # GIVEN a Lambda path: 12 videos, 4 of them announced twice, 3 whose first delete is lost (redelivered),
    # one malformed message, one text file, one video deleted before it is processed
    lam = make_path(endpoint, "lambda-jobs", visibility_timeout=2, profile="preview")
    lam_valid = [upload(endpoint, lam, f"uploads/lambda video {i:02}.mp4", small) for i in range(12)]
    sqs.send_message(QueueUrl=lam.queue_url, MessageBody=MALFORMED_BODY)
    upload(endpoint, lam, "uploads/readme.txt", b"not a video\n" * 10)
    gone = upload(endpoint, lam, "uploads/gone.mp4", small)
    client("s3", endpoint).delete_object(Bucket=lam.uploads, Key=gone.key, VersionId=gone.version_id)
    for job in lam_valid[:4]:
        sqs.send_message(QueueUrl=lam.queue_url, MessageBody=sqs_body_for(job))
    lost_once = {job.key for job in lam_valid[4:7]}
    lost: set[str] = set()

    def lose_delete(message_id: str, receive_count: int) -> bool:
        # The first delivery of each message carrying a "lost" key: pretend DeleteMessageBatch never arrived.
        return receive_count == 1 and message_id in first_delivery_of_lost

    first_delivery_of_lost: set[str] = set()
    handler_log = HandlerLog(tmp_path / "handler.log")
    real_handler = load_handler(output_bucket=lam.processed, max_video_bytes=50 * 1024 * 1024, log=handler_log)

    def handler(event: dict[str, Any], context: Any) -> Any:
        for record in event["Records"]:
            for key in lost_once - lost:
                if quote_plus(key.rsplit("/", 1)[-1]) in record["body"]:  # keys are URL-encoded in S3 events
                    lost.add(key)
                    first_delivery_of_lost.add(record["messageId"])
        return real_handler(event, context)

    # The event source mapping polls with the function's role: the poller's calls are the "lambda" principal's too.
    with call_recorder.as_principal("lambda"):
        poller = EventSourcePoller(
            client("sqs", endpoint),
            lam.queue_url,
            handler,
            batch_size=10,
            lose_delete=lose_delete,
            shuffle=random.Random(7),
        )

    # ... and a fleet path: 14 videos (4 longer ones, 4 announced twice), one text file, one deleted video
    fleet = make_path(endpoint, "fleet-jobs", visibility_timeout=4, profile="transcode")
    fleet_valid = [upload(endpoint, fleet, f"uploads/long {i}.mp4", longer) for i in range(4)]
    fleet_valid += [upload(endpoint, fleet, f"uploads/fleet video {i:02}.mp4", small) for i in range(10)]
    upload(endpoint, fleet, "uploads/notes.txt", b"plain text\n" * 10)
    fleet_gone = upload(endpoint, fleet, "uploads/gone.mp4", small)
    client("s3", endpoint).delete_object(Bucket=fleet.uploads, Key=fleet_gone.key, VersionId=fleet_gone.version_id)
    for job in fleet_valid[:4]:
        sqs.send_message(QueueUrl=fleet.queue_url, MessageBody=sqs_body_for(job))
    assert len(lam_valid) + len(fleet_valid) + 5 >= 30

    env = dict(os.environ)
    env |= call_recorder.subprocess_env("worker", env)
    fake_imds.metadata["instance-id"] = "i-0123456789abcdef0"  # a Spot Instance outside any group
    call_recorder.principal_symbols |= {
        "lambda": symbols_of(lam),
        "worker": symbols_of(fleet) | {fake_imds.metadata["instance-id"]: "<instance_id>"},
    }

    def start_worker(name: str, imds_url: str | None = None, held: HeldFfmpeg | None = None) -> WorkerProcess:
        return WorkerProcess(
            queue_url=fleet.queue_url,
            output_bucket=fleet.processed,
            env=env if held is None else env | held.env,
            log_path=tmp_path / f"{name}.log",
            concurrency=2,
            # Spot notices read every 0.2 s, not 5 s: the test does not wait out the poll.
            extra_args=("--drain-seconds", "30", "--spot-poll-seconds", "0.2"),
            imds_url=imds_url,
        )

    # WHEN the poller drains the Lambda queue while workers drain the fleet queue; one worker is SIGKILLed
    # mid-job, the next is stopped with SIGTERM mid-job, a third (on a Spot Instance) gets an interruption notice
    # mid-job whose deadline has come, a fourth finishes the rest
    with _Polling(poller, call_recorder) as lambda_path:
        killed = start_worker("killed")
        # Mid-job: it has finished something (it is up and consuming) and holds messages it has not finished.
        wait_until(
            lambda: sum(killed.counts().values()) >= 1 and _in_flight(sqs, fleet.queue_url), timeout=30, what="work"
        )
        killed.kill()
        # The next two workers' jobs are held at their first ffmpeg run, so "mid-job" is certain, not a race with a
        # 0.15 s job (and the queue's in-flight count, which still holds the killed worker's messages, is no sign).
        held = HeldFfmpeg(tmp_path / "held-drained")
        drained = start_worker("drained", held=held)
        wait_until(lambda: held.started() >= 1, timeout=30, what="the second worker's first ffmpeg run")
        drained.request_stop()
        wait_until(lambda: _logged(drained, "stopping"), timeout=30, what="the second worker to take the SIGTERM")
        held.release()  # its jobs finish during the drain
        drained_code = drained.stop()
        drain_logs = _log_entries(drained.log_path)
        # It was mid-job when SIGTERM became a stop, and it finished those jobs (none was given up at the deadline).
        (stopping,) = [e for e in drain_logs if e.get("message") == "stopping"]
        assert int(stopping["in_flight"]) >= 1, stopping
        assert [e for e in drain_logs if e.get("reason") == "drain deadline passed"] == []
        assert sum(drained.counts().values()) >= 1
        spot_held = HeldFfmpeg(tmp_path / "held-spot")  # never released: the notice must give these jobs up
        interrupted = start_worker("interrupted", imds_url=fake_imds.url, held=spot_held)
        wait_until(lambda: spot_held.started() >= 1, timeout=30, what="the Spot worker's first ffmpeg run")
        # EC2 acts RELEASE_MARGIN_SECONDS from now: whatever runs when the worker reads the notice is released at once
        fake_imds.metadata[INTERRUPTION_PATH] = interruption_notice(RELEASE_MARGIN_SECONDS)
        wait_until(
            lambda: _logged(interrupted, "drained; taking no new jobs until the instance stops"),
            timeout=30,
            what="the Spot worker to drain",
        )
        assert interrupted.process.poll() is None  # it waits for the shutdown, taking no new job
        interrupted_code = interrupted.stop()
        spot_logs = _log_entries(interrupted.log_path)
        (spot_drain,) = [e for e in spot_logs if e.get("message") == "draining: taking no new jobs"]
        assert spot_drain["reason"] == "spot interruption notice", spot_drain
        # It was mid-job, and what it could not finish it handed back (the outputs below show nothing lost)
        assert int(spot_drain["in_flight"]) >= 1, spot_drain
        assert interrupted.final is not None
        spot_released = interrupted.final["jobs"].get("released", 0)
        assert spot_released >= 1, interrupted.final
        finisher = start_worker("finisher")
        wait_until(
            lambda: _logged(finisher, "worker started") and depth(endpoint, fleet.queue_url) == 0,
            timeout=60,
            interval=0.1,
            what="the fleet queue to empty",
        )
        finisher_code = finisher.stop()
        wait_until(
            lambda: lambda_path.failed() or depth(endpoint, lam.queue_url) == 0,
            timeout=90,
            what="the lambda queue to empty",
        )

    # THEN every valid video has exactly one complete output set, each permanent failure one record
    assert_outputs(endpoint, lam, lam_valid, {"uploads/readme.txt": "not_a_video", "uploads/gone.mp4": "object_gone"})
    assert_outputs(
        endpoint, fleet, fleet_valid, {"uploads/notes.txt": "not_a_video", "uploads/gone.mp4": "object_gone"}
    )
    # ... the malformed message, and nothing else, is in the Lambda path's DLQ; nothing is left anywhere else
    # (a long poll, which returns as soon as the message is there: once, in CI, a 1 s poll found the DLQ empty right
    # after the queue had emptied; with the 1 s poll the test then passed 25 runs of 25, in three and four parallel
    # loops)
    dead = sqs.receive_message(QueueUrl=lam.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=10).get("Messages", [])
    assert [m["Body"] for m in dead] == [MALFORMED_BODY], {  # what each queue of the path held then
        "queue": queue_depth(client("sqs", endpoint), lam.queue_url),
        "dlq": queue_depth(client("sqs", endpoint), lam.dlq_url),
    }
    assert depth(endpoint, lam.queue_url) == depth(endpoint, fleet.queue_url) == depth(endpoint, fleet.dlq_url) == 0
    # ... nothing completed twice: each video was "processed" once; duplicates were delivered and suppressed
    handler_log.close()
    handler_said = _log_entries(handler_log.path)
    lambda_outcomes = Counter(str(e["outcome"]) for e in handler_said if "outcome" in e)
    assert lambda_outcomes["processed"] == len(lam_valid)
    assert lambda_outcomes["duplicate"] >= 4 + len(lost_once)
    assert sum(str(e.get("message", "")).startswith("Malformed message") for e in handler_said) == MAX_RECEIVE_COUNT
    assert lost == lost_once and poller.counters.get("deletes_lost") >= len(lost_once)
    assert max(poller.batch_sizes) <= 10 and max(poller.batch_sizes) > 1
    fleet_done = Counter[str]()
    completed = Counter[str]()  # "video processed" with duplicate=False: this delivery wrote the manifest
    for worker in (killed, drained, interrupted, finisher):
        fleet_done.update(worker.counts())
        for entry in _log_entries(worker.log_path):
            if entry.get("message") == "video processed" and entry.get("duplicate") is False:
                completed[str(entry["key"])] += 1
    # (a SIGKILL between the manifest write and its log line would leave one uncounted: hence <=, the manifest
    # versions above are the exact check)
    assert all(n == 1 for n in completed.values()) and len(completed) <= len(fleet_valid)
    assert len(completed) >= len(fleet_valid) - 1
    assert fleet_done["duplicate"] >= 4
    assert drained_code == 0 and interrupted_code == 0 and finisher_code == 0 and killed.process.returncode == -9
    # ... and every AWS call either path made is in the permission catalogue
    assert_catalogued(
        call_recorder.calls(),
        needs=[
            ("lambda", "sqs", "ReceiveMessage"),
            ("lambda", "s3", "PutObject"),
            ("worker", "sqs", "ReceiveMessage"),
            ("worker", "s3", "PutObject"),
        ],
    )
    print(
        f"end-to-end fault test: {time.monotonic() - started:.1f} s; the Spot worker had {spot_drain['in_flight']} "
        f"job(s) in flight at the notice and released {spot_released}"
    )


class _Polling:
    """``with _Polling(poller, recording) as polling:`` runs ``poller.run`` in a thread of its own, as the event
    source mapping polls beside the fleet, its AWS calls recorded as the "lambda" principal's; leaving the block stops
    it and re-raises whatever escaped a poll (the handler's errors: SQS errors are counted and retried by the poller,
    as the mapping does)."""

    def __init__(self, poller: EventSourcePoller, recording: CallRecorder) -> None:
        self._poller = poller
        self._recording = recording
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lambda-path", daemon=True)

    def __enter__(self) -> _Polling:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if exc_info[0] is None:
            if self._error is not None:
                raise self._error
            assert not self._thread.is_alive(), "the Lambda path's poller did not stop"

    def _run(self) -> None:
        try:
            with self._recording.as_principal("lambda"):
                self._poller.run(self._stop)
        except BaseException as error:  # re-raised in the test's thread on leaving the with block
            self._error = error

    def failed(self) -> bool:
        return self._error is not None


def _logged(worker: WorkerProcess, message: str) -> bool:
    return any(entry.get("message") == message for entry in _log_entries(worker.log_path))


def _in_flight(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def _log_entries(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
