"""The worker's job: transcode the videos an SQS message points to, with the shared video processing library."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clientside import ClientSideEncryptionError, open_body, queue_name_from_url
from video_processing import PermanentJobError, jobs_from_sqs_body, process_video, record_failure
from worker.job import JobHandler, JobOutcome, Message

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


def make_video_handler(
    *,
    s3_client: S3Client,
    output_bucket: str,
    max_bytes: int,
    workdir: Path | None = None,
    queue_url: str = "",
    body_key_arn: str | None = None,
    kms_client: Any | Callable[[], Any] | None = None,
) -> JobHandler:
    """A :data:`~worker.job.JobHandler` that runs the ``transcode`` profile for each video in the message.

    The body is first opened with :func:`clientside.open_body`: plain bodies pass through; client-side encrypted
    ones are decrypted with ``body_key_arn`` for the queue named by ``queue_url``'s last path segment.
    ``kms_client`` is a KMS client or a zero-argument factory, called on the first encrypted body only (default:
    ``boto3.client("kms")``). A body that cannot be opened (encrypted for another queue, tampered, or no key
    configured) raises, like a malformed body.

    - Every video done (or already done by an earlier delivery) -> DONE / DUPLICATE: the message is deleted.
    - A video that can never be processed (not a video, too large, gone) -> its failure is recorded under
      ``failed/`` in the output bucket and the message is deleted (PERMANENT_FAILURE).
    - A malformed body (``MalformedMessageError``) or any other error propagates: the message stays on the queue
      and reaches the dead-letter queue after maxReceiveCount deliveries, intact for inspection and redrive.
    """

    queue_name = queue_name_from_url(queue_url) if queue_url else ""
    kms = kms_client if kms_client is not None else _lazy_kms_client()

    def handle(message: Message) -> JobOutcome:
        try:
            body = open_body(message.body, queue_name=queue_name, key_id=body_key_arn, kms_client=kms)
        except ClientSideEncryptionError as error:
            # The reason names contexts and keys, never the plaintext. Raising leaves the message on the queue.
            log.error(
                "client-side encrypted body cannot be opened; the message stays on the queue and reaches the DLQ",
                extra={"message_id": message.message_id, "reason": str(error), "error_type": type(error).__name__},
            )
            raise
        outcomes: list[JobOutcome] = []
        for job in jobs_from_sqs_body(body):  # [] for the s3:TestEvent S3 sends on set-up
            try:
                result = process_video(
                    job,
                    s3_client=s3_client,
                    output_bucket=output_bucket,
                    profile="transcode",
                    max_bytes=max_bytes,
                    workdir=workdir,
                )
            except PermanentJobError as error:
                where = record_failure(
                    job, error, message_id=message.message_id, s3_client=s3_client, output_bucket=output_bucket
                )
                log.warning(
                    "video cannot be processed; failure recorded",
                    extra={"message_id": message.message_id, "key": job.key, "reason": error.reason, "record": where},
                )
                outcomes.append(JobOutcome.PERMANENT_FAILURE)
            else:
                log.info(
                    "video processed",
                    extra={
                        "message_id": message.message_id,
                        "key": job.key,
                        "outputs": list(result.outputs),
                        "duplicate": result.duplicate,
                        "seconds": round(result.seconds, 3),
                    },
                )
                outcomes.append(JobOutcome.DUPLICATE if result.duplicate else JobOutcome.DONE)
        if JobOutcome.PERMANENT_FAILURE in outcomes:
            return JobOutcome.PERMANENT_FAILURE
        if outcomes and all(o is JobOutcome.DUPLICATE for o in outcomes):
            return JobOutcome.DUPLICATE
        return JobOutcome.DONE

    return handle


def _lazy_kms_client() -> Callable[[], Any]:
    """A factory creating one KMS client on first use; jobs run in threads, and creating clients is not."""
    lock = threading.Lock()
    created: list[Any] = []

    def get() -> Any:
        with lock:
            if not created:
                import boto3

                created.append(boto3.client("kms"))
            return created[0]

    return get
