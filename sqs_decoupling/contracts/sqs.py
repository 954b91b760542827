"""Amazon SQS's limits that the worker and the stacks both hold to, in one place (no dependencies: the stacks import
it at synthesis).

``MAX_VISIBILITY_TIMEOUT_SECONDS``: a message stays hidden at most 12 hours. A receive, the queue's setting and
every ChangeMessageVisibility are held to it, and so is their sum: past 12 hours from the message's first receive,
ChangeMessageVisibility is refused and the message is delivered again, beside the job still running. So a worker
job's time budget ends ``JOB_CAP_MARGIN_SECONDS`` before :func:`visibility_cap` (see
``sqs_decoupling.worker_fleet.worker.video_jobs``).
"""

from __future__ import annotations

from typing import Final

MAX_VISIBILITY_TIMEOUT_SECONDS: Final = 43_200
"""12 hours: SQS's ceiling for a message's visibility timeout, counted from its first receive."""
JOB_CAP_MARGIN_SECONDS: Final = 600
"""What a job's budget keeps back from the cap: time to upload the outputs, write the manifest and delete the
message (10 minutes, ample for the 200 MiB default upload limit)."""


def visibility_cap(first_receive_epoch_seconds: float) -> float:
    """When (epoch seconds) the message's visibility can no longer be extended."""
    return first_receive_epoch_seconds + MAX_VISIBILITY_TIMEOUT_SECONDS


MIN_MESSAGE_SIZE_BYTES: Final = 1024
"""The smallest MaximumMessageSize a queue can have (1 KiB)."""
MAX_MESSAGE_SIZE_BYTES: Final = 1024 * 1024
"""The largest message SQS accepts, and a queue's largest MaximumMessageSize: 1 MiB since August 2025."""
DEFAULT_MAX_MESSAGE_SIZE_BYTES: Final = 256 * 1024
"""This project's queues' MaximumMessageSize unless configured (the seed's 256 KiB): EncryptedQueue, the stacks'
``max_message_size_bytes`` and the envelope's size check take it from here; cdk.json states it for users."""
