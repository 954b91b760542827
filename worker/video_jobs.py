"""The worker's job: transcode the videos an SQS message points to, with the shared video processing library."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from video_processing import PermanentJobError, jobs_from_sqs_body, process_video, record_failure
from worker.job import JobHandler, JobOutcome, Message

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


def make_video_handler(
    *, s3_client: S3Client, output_bucket: str, max_bytes: int, workdir: Path | None = None
) -> JobHandler:
    """A :data:`~worker.job.JobHandler` that runs the ``transcode`` profile for each video in the message.

    - Every video done (or already done by an earlier delivery) -> DONE / DUPLICATE: the message is deleted.
    - A video that can never be processed (not a video, too large, gone) -> its failure is recorded under
      ``failed/`` in the output bucket and the message is deleted (PERMANENT_FAILURE).
    - A malformed body (``MalformedMessageError``) or any other error propagates: the message stays on the queue
      and reaches the dead-letter queue after maxReceiveCount deliveries, intact for inspection and redrive.
    """

    def handle(message: Message) -> JobOutcome:
        outcomes: list[JobOutcome] = []
        for job in jobs_from_sqs_body(message.body):  # [] for the s3:TestEvent S3 sends on set-up
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
