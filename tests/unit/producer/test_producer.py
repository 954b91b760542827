"""The producer CLI and submit_jobs, on moto: batching, size limits, retries, input errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
import pytest

from sqs_decoupling.producer.cli import main
from sqs_decoupling.producer.submit import InputError, jobs_from_s3_uris, submit_jobs
from sqs_decoupling.queue.envelope.envelope import decrypt_body, encrypt_body, is_encrypted
from sqs_decoupling.video.jobs import VideoJob, jobs_from_sqs_body, sqs_body_for
from tests.support.aws import count_calls
from tests.support.permissions.recorder import CallRecorder, assert_catalogued

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

BUCKET = "video-uploads"


@pytest.fixture
def bucket(s3: S3Client) -> S3Client:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


@pytest.fixture
def queue_url(sqs: SQSClient) -> str:
    return sqs.create_queue(QueueName="transcode-jobs")["QueueUrl"]


@pytest.fixture
def cli_batch_calls(monkeypatch: pytest.MonkeyPatch, aws: None) -> list[dict[str, Any]]:
    """Parameters of every SendMessageBatch call made by SQS clients the CLI creates."""
    calls: list[dict[str, Any]] = []
    real_client = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        created = real_client(service, *args, **kwargs)
        if service == "sqs":
            created.meta.events.register(
                "provide-client-params.sqs.SendMessageBatch", lambda params, **_: calls.append(dict(params))
            )
        return created

    monkeypatch.setattr(boto3, "client", client)
    return calls


def received_jobs(sqs: SQSClient, queue_url: str) -> list[VideoJob]:
    """Everything on the queue, parsed the way the consumers parse it."""
    jobs: list[VideoJob] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            jobs.extend(jobs_from_sqs_body(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return jobs


def make_job(key: str) -> VideoJob:
    return VideoJob(bucket=BUCKET, key=key, version_id=None, etag="0123456789abcdef", size=10)


PRODUCER_SYMBOLS = {BUCKET: "<uploads_bucket>", "transcode-jobs": "<jobs_queue>"}


def test_twenty_five_objects_go_in_three_batch_calls(
    bucket: S3Client,
    sqs: SQSClient,
    queue_url: str,
    cli_batch_calls: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    call_recorder: CallRecorder,
) -> None:
    # GIVEN 25 videos under a prefix
    keys = [f"uploads/clip-{index:02}.mp4" for index in range(25)]
    for key in keys:
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"video bytes")

    # WHEN the CLI submits the prefix
    call_recorder.symbols |= PRODUCER_SYMBOLS
    with call_recorder.as_principal("producer"):
        exit_code = main(["submit", f"s3://{BUCKET}/uploads/", "--queue-url", queue_url])

    # THEN it made exactly 3 SendMessageBatch calls, of 10, 10 and 5 entries, and said so
    assert exit_code == 0
    assert [len(call["Entries"]) for call in cli_batch_calls] == [10, 10, 5]
    *sent, summary = capsys.readouterr().out.strip().splitlines()
    assert summary == "sent 25 job(s) in 3 SendMessageBatch call(s)"
    assert sorted(sent) == [f"sent: s3://{BUCKET}/{key}" for key in keys]
    # AND the queue holds one S3-event-shaped job per object, naming the version that exists
    jobs = received_jobs(sqs, queue_url)
    assert sorted(job.key for job in jobs) == keys
    assert all(job.version_id and job.etag and job.size == len(b"video bytes") for job in jobs)
    # AND every call the CLI made is in the permission catalogue
    assert_catalogued(call_recorder.calls(), needs=[("producer", "sqs", "SendMessageBatch")])


def test_a_batch_never_exceeds_the_size_limit(sqs: SQSClient, queue_url: str) -> None:
    # GIVEN jobs whose messages are each a bit over a third of the limit
    jobs = [make_job(f"uploads/{index}-{'x' * 200}.mp4") for index in range(7)]
    size = len(sqs_body_for(jobs[0]).encode())
    limit = size * 3 - 1
    calls = count_calls(sqs, "SendMessageBatch")

    # WHEN they are submitted with that limit
    report = submit_jobs(sqs, queue_url, jobs, max_message_size_bytes=limit)

    # THEN no call carries more than the limit in total, so two messages go per call
    assert [len(call["Entries"]) for call in calls] == [2, 2, 2, 1]
    assert all(sum(len(e["MessageBody"].encode()) for e in call["Entries"]) <= limit for call in calls)
    assert (len(report.sent), report.failures, report.batch_calls) == (7, (), 4)


def test_a_message_over_the_queue_limit_is_not_sent_and_is_named(
    bucket: S3Client, sqs: SQSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a queue whose maximum message size is 1 KiB, and one object whose key makes its message larger
    queue_url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    long_key = f"uploads/{'a-very-long-name-' * 50}.mp4"
    for key in ("uploads/short.mp4", long_key):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"video bytes")

    # WHEN the CLI submits both (the limit is read from the queue)
    exit_code = main(["submit", f"s3://{BUCKET}/uploads/", "--queue-url", queue_url])

    # THEN the short one is sent, the long one is not, and the error names the object, its size and the limit
    assert exit_code == 1
    out, err = capsys.readouterr()
    assert out.strip().splitlines() == [
        f"sent: s3://{BUCKET}/uploads/short.mp4",
        "sent 1 job(s) in 1 SendMessageBatch call(s); 1 job(s) NOT sent",
    ]
    assert f"s3://{BUCKET}/{long_key} is " in err
    assert "above the limit of 1024 bytes; not sent" in err
    assert [job.key for job in received_jobs(sqs, queue_url)] == ["uploads/short.mp4"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to submit"),
        ([f"s3://{BUCKET}/empty-prefix/"], "matched no objects"),
        ([f"s3://{BUCKET}/uploads/missing.mp4"], "does not exist"),
        (["/local/file.mp4"], "is not an S3 URI"),
    ],
    ids=["no-uris", "empty-prefix", "missing-object", "not-s3"],
)
def test_input_that_names_nothing_to_send_exits_2(
    bucket: S3Client, queue_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    # GIVEN input that names no object, WHEN the CLI runs, THEN it says why and exits 2 without sending
    assert main(["submit", *argv, "--queue-url", queue_url]) == 2
    assert message in capsys.readouterr().err


def test_submit_jobs_refuses_an_empty_list(sqs: SQSClient, queue_url: str) -> None:
    with pytest.raises(InputError, match="nothing to submit"):
        submit_jobs(sqs, queue_url, [])


def test_prefix_expansion_takes_every_object_under_the_prefix_only(bucket: S3Client) -> None:
    # GIVEN objects under the prefix (nested too), a console "folder" marker, and objects elsewhere
    for key in ("uploads/a.mp4", "uploads/2026/b.mp4", "uploads/2026/", "other/c.mp4", "uploads-old/d.mp4"):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"x" if not key.endswith("/") else b"")
    single = bucket.put_object(Bucket=BUCKET, Key="other/c.mp4", Body=b"new content")

    # WHEN the prefix and one single key are expanded
    jobs = jobs_from_s3_uris(bucket, [f"s3://{BUCKET}/uploads/", f"s3://{BUCKET}/other/c.mp4"])

    # THEN there is one job per object, each naming the current version
    assert [job.key for job in jobs] == ["uploads/2026/b.mp4", "uploads/a.mp4", "other/c.mp4"]
    assert jobs[-1].version_id == single["VersionId"]
    assert jobs[-1].etag == single["ETag"].strip('"')


class FlakySQS:
    """A real (moto) SQS client whose first SendMessageBatch reports the chosen entries as failed."""

    def __init__(self, sqs: SQSClient, fail_ids: set[str], *, sender_fault: bool) -> None:
        self._sqs = sqs
        self._fail_ids = fail_ids
        self._sender_fault = sender_fault
        self.calls: list[list[str]] = []

    def get_queue_attributes(self, **kwargs: Any) -> Any:
        return self._sqs.get_queue_attributes(**kwargs)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["Id"] for entry in Entries])
        failing = [e for e in Entries if e["Id"] in self._fail_ids] if len(self.calls) == 1 else []
        passing = [e for e in Entries if e not in failing]
        response: dict[str, Any] = dict(self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=passing))
        response["Failed"] = [
            {"Id": e["Id"], "SenderFault": self._sender_fault, "Code": "InternalError", "Message": "try again"}
            for e in failing
        ]
        return response


def test_failed_batch_entries_are_retried_once(sqs: SQSClient, queue_url: str) -> None:
    # GIVEN SQS failing two entries of the first batch with a server-side error
    flaky = FlakySQS(sqs, {"1", "3"}, sender_fault=False)
    jobs = [make_job(f"uploads/{index}.mp4") for index in range(5)]

    # WHEN the jobs are submitted
    report = submit_jobs(flaky, queue_url, jobs, max_message_size_bytes=262_144)

    # THEN the two are sent again in a second call, and every job arrives once
    assert flaky.calls == [["0", "1", "2", "3", "4"], ["0", "1"]]
    assert (len(report.sent), report.failures, report.batch_calls) == (5, (), 2)
    assert sorted(job.key for job in received_jobs(sqs, queue_url)) == [job.key for job in jobs]


def test_entries_rejected_as_the_senders_fault_are_reported_not_retried(sqs: SQSClient, queue_url: str) -> None:
    flaky = FlakySQS(sqs, {"0"}, sender_fault=True)
    jobs = [make_job("uploads/a.mp4"), make_job("uploads/b.mp4")]

    report = submit_jobs(flaky, queue_url, jobs, max_message_size_bytes=262_144)

    assert flaky.calls == [["0", "1"]]
    assert report.sent == (jobs[1],)
    assert [failure.job for failure in report.failures] == [jobs[0]]
    assert "InternalError try again" in report.failures[0].reason


@pytest.fixture
def kms(aws: None, kms_keys_made_cheaply: None) -> KMSClient:
    return boto3.client("kms", region_name="us-east-1")


@pytest.fixture
def body_key(kms: KMSClient) -> str:
    """The ARN of a KMS key, also reachable as alias/video-jobs-bodies."""
    arn = kms.create_key(Description="video jobs body key")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/video-jobs-bodies", TargetKeyId=arn)
    return arn


def received_bodies(sqs: SQSClient, queue_url: str) -> list[str]:
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_encrypt_with_key_sends_bodies_that_decrypt_to_the_s3_event(
    bucket: S3Client,
    sqs: SQSClient,
    queue_url: str,
    kms: KMSClient,
    body_key: str,
    capsys: pytest.CaptureFixture[str],
    call_recorder: CallRecorder,
) -> None:
    # GIVEN three videos
    keys = [f"uploads/clip-{index}.mp4" for index in range(3)]
    for key in keys:
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"video bytes")
    expected = jobs_from_s3_uris(bucket, [f"s3://{BUCKET}/uploads/"])

    # WHEN the CLI submits them with --encrypt-with-key (an alias)
    call_recorder.symbols |= PRODUCER_SYMBOLS | {"alias/video-jobs-bodies": "<body_key_alias>", body_key: "<body_key>"}
    with call_recorder.as_principal("producer"):
        exit_code = main(
            [
                "submit",
                f"s3://{BUCKET}/uploads/",
                "--queue-url",
                queue_url,
                "--encrypt-with-key",
                "alias/video-jobs-bodies",
            ]
        )

    # THEN every body on the queue is client-side encrypted, opaque, and decrypts (for this queue, with the
    # key's ARN as a consumer is configured) to the S3-event JSON the consumers parse
    assert exit_code == 0
    bodies = received_bodies(sqs, queue_url)
    assert len(bodies) == 3
    assert all(is_encrypted(body) and "clip-" not in body for body in bodies)
    decrypted = [json.loads(decrypt_body(kms, body_key, "transcode-jobs", body)) for body in bodies]
    assert all(event["Records"][0]["eventSource"] == "aws:s3" for event in decrypted)
    jobs = [job for event in decrypted for job in jobs_from_sqs_body(json.dumps(event))]
    assert sorted(jobs, key=lambda job: job.key) == expected
    # AND the summary says the bodies were encrypted
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("sent 3 job(s) in 1 SendMessageBatch call(s)")
    assert "client-side encrypted with KMS key alias/video-jobs-bodies" in out
    # AND every call the CLI made (KMS's included) is in the permission catalogue
    assert_catalogued(
        call_recorder.calls(), needs=[("producer", "kms", "GenerateDataKey"), ("producer", "sqs", "SendMessageBatch")]
    )


def test_the_size_check_counts_the_encrypted_size(
    sqs: SQSClient, queue_url: str, kms: KMSClient, body_key: str
) -> None:
    # GIVEN a job and a limit its plain message fits in with room to spare, but its encrypted one does not
    job = make_job("uploads/clip.mp4")
    plain_size = len(sqs_body_for(job).encode())
    limit = plain_size + 200
    assert len(encrypt_body(kms, body_key, "transcode-jobs", sqs_body_for(job)).encode()) > limit

    # WHEN it is submitted in plain text, then encrypted, with that limit
    plain = submit_jobs(sqs, queue_url, [job], max_message_size_bytes=limit)
    encrypted = submit_jobs(
        sqs, queue_url, [job], max_message_size_bytes=limit, encrypt_key_id=body_key, kms_client=kms
    )

    # THEN the plain one is sent, the encrypted one is refused with both sizes and the limit, and not sent
    assert (len(plain.sent), plain.failures) == (1, ())
    assert encrypted.sent == ()
    (failure,) = encrypted.failures
    assert failure.job == job
    assert "after client-side encryption" in failure.reason
    assert f"({plain_size} bytes in plain text), above the limit of {limit} bytes; not sent" in failure.reason
    assert encrypted.batch_calls == 0
    (received,) = received_bodies(sqs, queue_url)  # only the plain one
    assert not is_encrypted(received)
    assert jobs_from_sqs_body(received) == [job]


def test_encrypted_batches_stay_under_the_limit(sqs: SQSClient, queue_url: str, kms: KMSClient, body_key: str) -> None:
    # GIVEN jobs whose encrypted messages are each about 40% of the limit (two fit in a batch, three do not)
    jobs = [make_job(f"uploads/{index}.mp4") for index in range(5)]
    encrypted_size = len(encrypt_body(kms, body_key, "transcode-jobs", sqs_body_for(jobs[0])).encode())
    limit = encrypted_size * 5 // 2
    calls = count_calls(sqs, "SendMessageBatch")

    # WHEN they are submitted encrypted
    report = submit_jobs(sqs, queue_url, jobs, max_message_size_bytes=limit, encrypt_key_id=body_key, kms_client=kms)

    # THEN batches are cut by the encrypted sizes
    assert [len(call["Entries"]) for call in calls] == [2, 2, 1]
    assert all(sum(len(e["MessageBody"].encode()) for e in call["Entries"]) <= limit for call in calls)
    assert (len(report.sent), report.failures) == (5, ())


def test_an_unknown_encryption_key_sends_nothing_and_exits_2(
    bucket: S3Client, sqs: SQSClient, queue_url: str, kms: KMSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a video, WHEN the CLI is asked to encrypt with a key that does not exist
    bucket.put_object(Bucket=BUCKET, Key="uploads/a.mp4", Body=b"video bytes")
    exit_code = main(
        ["submit", f"s3://{BUCKET}/uploads/a.mp4", "--queue-url", queue_url, "--encrypt-with-key", "alias/missing"]
    )

    # THEN it says so and sends nothing
    assert exit_code == 2
    assert "cannot encrypt the job bodies, nothing was sent" in capsys.readouterr().err
    assert received_bodies(sqs, queue_url) == []


def test_a_flag_above_the_queues_maximum_cannot_raise_the_limit(
    bucket: S3Client, sqs: SQSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a queue whose MaximumMessageSize is 1 KiB, and an object whose message is larger than that
    queue_url = sqs.create_queue(QueueName="small-queue", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    long_key = f"uploads/{'a-very-long-name-' * 50}.mp4"  # 862 bytes: a valid S3 key (<= 1,024), a 1.2 KB message
    bucket.put_object(Bucket=BUCKET, Key=long_key, Body=b"video bytes")

    # WHEN the CLI is told a limit above the queue's
    exit_code = main(
        ["submit", f"s3://{BUCKET}/{long_key}", "--queue-url", queue_url, "--max-message-size-bytes", "262144"]
    )

    # THEN the queue's own limit applies: the job is named as too large, not sent, and nothing crashes
    assert exit_code == 1
    out, err = capsys.readouterr()
    assert "above the limit of 1024 bytes; not sent" in err
    assert "Traceback" not in err
    assert out.strip().splitlines()[-1] == "sent 0 job(s) in 0 SendMessageBatch call(s); 1 job(s) NOT sent"


def test_a_batch_call_that_fails_is_reported_per_job_and_later_batches_still_go(
    bucket: S3Client,
    sqs: SQSClient,
    queue_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN 15 videos (two batches), and SQS refusing the first SendMessageBatch call as a whole
    keys = [f"uploads/clip-{index:02}.mp4" for index in range(15)]
    for key in keys:
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"video bytes")
    real_client = boto3.client
    calls: list[int] = []

    def refuse_first_batch(**_: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AWS.SimpleQueueService.BatchRequestTooLong", "Message": "too long"}},
                "SendMessageBatch",
            )

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        created = real_client(service, *args, **kwargs)
        if service == "sqs":
            created.meta.events.register("before-call.sqs.SendMessageBatch", refuse_first_batch)
        return created

    monkeypatch.setattr(boto3, "client", client)

    # WHEN the CLI submits them
    exit_code = main(["submit", f"s3://{BUCKET}/uploads/", "--queue-url", queue_url])

    # THEN it exits 1 without a traceback; each of the first ten is named as not sent, with the error
    assert exit_code == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    not_sent = [line for line in err.splitlines() if line.startswith("not sent: ")]
    assert len(not_sent) == 10
    assert all("BatchRequestTooLong" in line for line in not_sent)
    # AND the second batch was still sent, each job is named, and the summary is printed
    *sent, summary = out.strip().splitlines()
    assert len(sent) == 5
    assert summary == "sent 5 job(s) in 2 SendMessageBatch call(s); 10 job(s) NOT sent"
    assert len(received_jobs(sqs, queue_url)) == 5


def test_missing_credentials_give_one_line_and_exit_1(
    bucket: S3Client, queue_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # GIVEN no credentials anywhere in the AWS chain
    bucket.put_object(Bucket=BUCKET, Key="uploads/a.mp4", Body=b"video bytes")
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it found earlier

    # WHEN the CLI runs
    exit_code = main(["submit", f"s3://{BUCKET}/uploads/a.mp4", "--queue-url", queue_url])

    # THEN one line on stderr says what is wrong, and it exits 1
    assert exit_code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("sqs-submit: ") and "Unable to locate credentials" in err


def test_an_unknown_queue_gives_one_line_and_exit_1(
    bucket: S3Client, sqs: SQSClient, queue_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a video, and a queue URL that names no queue
    bucket.put_object(Bucket=BUCKET, Key="uploads/a.mp4", Body=b"video bytes")
    missing = queue_url.rsplit("/", 1)[0] + "/no-such-queue"

    # WHEN the CLI runs THEN one line names the queue and says nothing was sent, exit 1
    assert main(["submit", f"s3://{BUCKET}/uploads/a.mp4", "--queue-url", missing]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot read queue {missing}, nothing was sent" in err


def test_the_queue_url_can_come_from_the_environment_and_help_shows_the_variable_and_exit_codes(
    bucket: S3Client, sqs: SQSClient, queue_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the queue URL only in SQS_SUBMIT_QUEUE_URL
    bucket.put_object(Bucket=BUCKET, Key="uploads/a.mp4", Body=b"video bytes")

    # WHEN the CLI runs without --queue-url THEN the job is sent to that queue
    assert main(["submit", f"s3://{BUCKET}/uploads/a.mp4"], environ={"SQS_SUBMIT_QUEUE_URL": queue_url}) == 0
    assert [job.key for job in received_jobs(sqs, queue_url)] == ["uploads/a.mp4"]

    # AND --help names the variable, lists the exit codes, and has no reST markup
    with pytest.raises(SystemExit):
        main(["submit", "--help"], environ={})
    help_text = capsys.readouterr().out
    assert "[SQS_SUBMIT_QUEUE_URL]" in help_text
    assert "exit codes:" in help_text and "  1  some jobs were not sent" in help_text
    one_line = " ".join(help_text.split())
    assert "default: SQS_SUBMIT_REGION, then AWS_REGION, then AWS_DEFAULT_REGION, then the AWS profile's" in one_line
    assert "(1,024..1,048,576)" in one_line
    assert "``" not in help_text
