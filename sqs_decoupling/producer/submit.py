"""Turn S3 URIs into jobs and send them with SendMessageBatch: at most 10 entries and at most the queue's
maximum message size per call (SQS caps a batch's total payload at the same size as one message).

Optionally each body is client-side encrypted (``sqs_decoupling.queue.envelope``) for the target queue before it is
sized, so the limits apply to what is really sent: base64 of the Encryption SDK message, a few times larger than the
JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sqs_decoupling.queue.envelope.envelope import (
    MessageTooLargeError,
    encrypt_body,
    kms_key_provider,
    queue_name_from_url,
)
from sqs_decoupling.video.jobs import VideoJob, sqs_body_for

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10


class InputError(ValueError):
    """The input names nothing to submit, or something that is not there."""


class QueueError(RuntimeError):
    """The queue cannot be used at all (unknown queue, no credentials, no permission): nothing was sent."""


@dataclass(frozen=True)
class SubmitFailure:
    job: VideoJob
    reason: str


@dataclass(frozen=True)
class SubmitReport:
    sent: tuple[VideoJob, ...]
    failures: tuple[SubmitFailure, ...]
    batch_calls: int
    encrypted_with: str | None = None
    """The KMS key the bodies were client-side encrypted with; None: sent in plain text."""

    def summary(self) -> str:
        summary = f"sent {len(self.sent)} job(s) in {self.batch_calls} SendMessageBatch call(s)"
        if self.failures:
            summary += f"; {len(self.failures)} job(s) NOT sent"
        if self.encrypted_with is not None:
            summary += f"; bodies client-side encrypted with KMS key {self.encrypted_with}"
        return summary


def jobs_from_s3_uris(s3_client: S3Client, uris: Iterable[str]) -> list[VideoJob]:
    """Expand ``s3://bucket/key`` and ``s3://bucket/prefix/`` (trailing slash) into jobs, one per object.

    Each object is HEADed so its job names the exact version (or ETag) that exists now.
    """
    jobs: list[VideoJob] = []
    for uri in uris:
        bucket, key = _parse_s3_uri(uri)
        keys = list(_keys_under(s3_client, bucket, key)) if key.endswith("/") or not key else [key]
        if not keys:
            raise InputError(f"{uri} matched no objects")
        jobs.extend(_head_job(s3_client, bucket, object_key) for object_key in keys)
    return jobs


def submit_jobs(
    sqs_client: SQSClient,
    queue_url: str,
    jobs: Iterable[VideoJob],
    *,
    max_message_size_bytes: int | None = None,
    encrypt_key_id: str | None = None,
    kms_client: Any = None,
) -> SubmitReport:
    """Send one message per job, under the queue's MaximumMessageSize (read once); ``max_message_size_bytes`` can only
    lower that limit. Raises QueueError when the queue cannot be read (unknown, no credentials): nothing is sent.

    With ``encrypt_key_id`` (a KMS key id, ARN or alias), every body is client-side encrypted for this queue
    (encryption context: the queue URL's last segment) with :func:`sqs_decoupling.queue.envelope.encrypt_body`,
    through ``kms_client`` (default: a new ``boto3.client("kms")``), before its size is checked. Every body is
    encrypted before the first send, so if KMS refuses (unknown key, no permission) ClientSideEncryptionError is
    raised and nothing is sent.

    A job whose message (encrypted, if asked) is over the limit is reported and not sent. Entries SQS rejects in a
    batch are retried once (unless SQS says the request itself is at fault), then reported. A batch call that fails
    as a whole (an AWS error) reports each of its jobs as not sent, with the error, and the next batch is tried.
    """
    pending = list(jobs)
    if not pending:
        raise InputError("nothing to submit: no jobs given")
    queue_limit = _queue_message_limit(sqs_client, queue_url)
    limit = min(max_message_size_bytes, queue_limit) if max_message_size_bytes is not None else queue_limit
    encrypt = _encryptor(queue_url, encrypt_key_id, kms_client, limit) if encrypt_key_id else None
    sendable, too_large = _bodies(pending, limit, encrypt)
    sent, failures, calls = _send_all(sqs_client, queue_url, sendable, limit)
    return SubmitReport(
        sent=tuple(sent), failures=(*too_large, *failures), batch_calls=calls, encrypted_with=encrypt_key_id or None
    )


def _bodies(
    jobs: list[VideoJob], limit: int, encrypt: Callable[[str], str] | None
) -> tuple[list[tuple[VideoJob, str]], list[SubmitFailure]]:
    """Each job's body (encrypted, if asked) when it fits under ``limit``; a failure for each one that does not."""
    sendable: list[tuple[VideoJob, str]] = []
    failures: list[SubmitFailure] = []
    for job in jobs:
        body = sqs_body_for(job)
        size = len(body.encode())
        where = f"message for s3://{job.bucket}/{job.key}"
        if size > limit:
            failures.append(SubmitFailure(job, f"{where} is {size} bytes, above the limit of {limit} bytes; not sent"))
            continue
        if encrypt is not None:
            try:
                body = encrypt(body)
            except MessageTooLargeError as error:
                reason = (
                    f"{where} is {error.encrypted_bytes} bytes after client-side encryption ({error.plaintext_bytes} "
                    f"bytes in plain text), above the limit of {limit} bytes; not sent"
                )
                failures.append(SubmitFailure(job, reason))
                continue
        sendable.append((job, body))
    return sendable, failures


def _send_all(
    sqs_client: SQSClient, queue_url: str, sendable: list[tuple[VideoJob, str]], limit: int
) -> tuple[list[VideoJob], list[SubmitFailure], int]:
    """Send in batches under ``limit``, retrying rejected entries once: (sent, failures, SendMessageBatch calls)."""
    sent: list[VideoJob] = []
    failures: list[SubmitFailure] = []
    calls = 0
    for batch in _batches(sendable, limit):
        calls += 1
        retry, rejected = _send_batch(sqs_client, queue_url, batch, sent)
        failures.extend(rejected)
        if retry:
            calls += 1
            still_failing, rejected = _send_batch(sqs_client, queue_url, [(job, body) for job, body, _ in retry], sent)
            failures.extend(rejected)
            failures.extend(SubmitFailure(job, f"{reason} (after one retry)") for job, _, reason in still_failing)
    return sent, failures, calls


def _encryptor(queue_url: str, key_id: str, kms_client: Any, limit: int) -> Callable[[str], str]:
    """``encrypt(body)`` for this queue and key; the key is resolved (DescribeKey, for an id or alias) once."""
    if kms_client is None:
        import boto3

        kms_client = boto3.client("kms")
    provider = kms_key_provider(kms_client, key_id)
    queue_name = queue_name_from_url(queue_url)

    def encrypt(body: str) -> str:
        return encrypt_body(provider, key_id, queue_name, body, max_message_size_bytes=limit)

    return encrypt


def _send_batch(
    sqs_client: SQSClient, queue_url: str, batch: list[tuple[VideoJob, str]], sent: list[VideoJob]
) -> tuple[list[tuple[VideoJob, str, str]], list[SubmitFailure]]:
    """Send one batch and add what SQS accepted to ``sent``.

    Returns the rejected entries worth a retry as (job, body, reason), and those that are not (SQS says the
    entry itself is at fault) as failures.
    """
    entries: list[SendMessageBatchRequestEntryTypeDef] = [
        {"Id": str(index), "MessageBody": body} for index, (_, body) in enumerate(batch)
    ]
    try:
        response = sqs_client.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except (BotoCoreError, ClientError) as error:
        # botocore has already retried what is worth retrying; the earlier batches stay sent.
        reason = f"SendMessageBatch failed: {_one_line(error)}"
        return [], [SubmitFailure(job, f"s3://{job.bucket}/{job.key}: {reason}") for job, _ in batch]
    sent.extend(batch[int(entry["Id"])][0] for entry in response.get("Successful", []))
    retry: list[tuple[VideoJob, str, str]] = []
    rejected: list[SubmitFailure] = []
    for entry in response.get("Failed", []):
        job, body = batch[int(entry["Id"])]
        reason = f"SendMessageBatch rejected s3://{job.bucket}/{job.key}: {entry['Code']} {entry.get('Message', '')}"
        if entry["SenderFault"]:
            rejected.append(SubmitFailure(job, reason))
        else:
            retry.append((job, body, reason))
    return retry, rejected


def _batches(items: list[tuple[VideoJob, str]], limit: int) -> Iterator[list[tuple[VideoJob, str]]]:
    batch: list[tuple[VideoJob, str]] = []
    total = 0
    for job, body in items:
        size = len(body.encode())
        if batch and (len(batch) == MAX_BATCH_ENTRIES or total + size > limit):
            yield batch
            batch, total = [], 0
        batch.append((job, body))
        total += size
    if batch:
        yield batch


def _queue_message_limit(sqs_client: SQSClient, queue_url: str) -> int:
    try:
        attributes = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])
    except (BotoCoreError, ClientError) as error:
        raise QueueError(f"cannot read queue {queue_url}, nothing was sent: {_one_line(error)}") from error
    return int(attributes["Attributes"]["MaximumMessageSize"])


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise InputError(f"{uri!r} is not an S3 URI: use s3://bucket/key or s3://bucket/prefix/")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _keys_under(s3_client: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):  # "folder" placeholders made by the console
                yield obj["Key"]


def _head_job(s3_client: S3Client, bucket: str, key: str) -> VideoJob:
    try:
        head = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
            raise InputError(f"s3://{bucket}/{key} does not exist") from error
        raise
    return VideoJob(
        bucket=bucket,
        key=key,
        # Unversioned buckets answer "null" (or nothing); the ETag then identifies the content.
        version_id=head.get("VersionId") if head.get("VersionId") not in (None, "null") else None,
        etag=head["ETag"].strip('"'),
        size=head["ContentLength"],
    )
