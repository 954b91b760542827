"""Send video jobs for objects already in S3 to a queue, in the same shape S3's own notifications have."""

from sqs_decoupling.producer.submit import (
    InputError,
    SubmitFailure,
    SubmitReport,
    jobs_from_s3_uris,
    submit_jobs,
)

__all__ = ["InputError", "SubmitFailure", "SubmitReport", "jobs_from_s3_uris", "submit_jobs"]
