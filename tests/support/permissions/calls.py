"""What the runtime calls: one entry per (principal, service, operation), with the shape of its parameters.

A recorded call (``Call``) is *covered* when an entry has the same principal, service and operation and each of
the entry's parameter patterns (``fnmatch``) matches the call's parameter. The permission rehearsal evaluates every
entry; the moto-server runs record every call the runtime makes and fail on one no entry covers, so a new call
cannot be left out of the rehearsal.

Parameter values are symbolic: a resource the test created for a role is recorded under that role's name in angle
brackets (``<jobs_queue>``, ``<uploads_bucket>``, ``<processed_bucket>``), never under its generated name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Call:
    """One AWS API call as the runtime made it."""

    principal: str  # "worker", "lambda", "producer", ...
    service: str  # botocore's service name: "sqs", "s3", "kms", "autoscaling", "cloudwatch", "logs"
    operation: str  # botocore's operation name: "ReceiveMessage"
    params: Mapping[str, str] = field(default_factory=dict)  # symbolized top-level string parameters


@dataclass(frozen=True)
class CatalogueEntry:
    """A kind of call the runtime makes; ``params`` holds fnmatch patterns for the parameters that name resources."""

    principal: str
    service: str
    operation: str
    params: Mapping[str, str] = field(default_factory=dict)

    def covers(self, call: Call) -> bool:
        if (self.principal, self.service, self.operation) != (call.principal, call.service, call.operation):
            return False
        return all(
            name in call.params and fnmatch.fnmatchcase(call.params[name], pattern)
            for name, pattern in self.params.items()
        )


_WORKER = "worker"  # the EC2 instance role of WorkerFleetStack's fleet
_LAMBDA = "lambda"  # the video processor function's role (its SQS event source mapping polls with it too)
_PRODUCER = "producer"  # whoever runs the sqs-submit CLI (SecureQueueStack's producer role)
_OPERATOR = "operator"  # whoever runs the sqs-redrive CLI, with a stack's redrive operator policy attached

JOBS_QUEUE = {"QueueUrl": "<jobs_queue>"}
UPLOADS = {"Bucket": "<uploads_bucket>", "Key": "uploads/*"}
UPLOAD_VERSION = UPLOADS | {"VersionId": "<version_id>"}  # s3:GetObjectVersion, not s3:GetObject
PROCESSED = {"Bucket": "<processed_bucket>", "Key": "processed/*"}
PROCESSED_IF_ABSENT = PROCESSED | {"IfNoneMatch": "*"}  # the manifest, written once (conditional write)
MULTIPART = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload")
DEAD_LETTER_QUEUE = {"QueueUrl": "<dead_letter_queue>"}
MOVE_TASK_SOURCE = {"SourceArn": "<dead_letter_queue>"}
BODY_KEY_FOR_QUEUE = {"KeyId": "<body_key>", "EncryptionContext.sqs_queue": "<jobs_queue>"}

# What the recorder saw in the wired runs (recorder.py's module docstring lists them), one entry per kind of
# call; the symbols name each principal's own stack's resources. Each entry is turned into IAM requests by
# requests.py. A call that appears here but no longer in any run is stale: remove it with the code that made it.
CATALOGUE: tuple[CatalogueEntry, ...] = (
    # The worker (python -m sqs_decoupling.worker_fleet.worker): start-up checks, the queue loop, the video job, Auto
    # Scaling.
    CatalogueEntry(_WORKER, "sqs", "GetQueueAttributes", JOBS_QUEUE),
    CatalogueEntry(_WORKER, "sqs", "ReceiveMessage", JOBS_QUEUE),
    CatalogueEntry(_WORKER, "sqs", "DeleteMessageBatch", JOBS_QUEUE),
    CatalogueEntry(_WORKER, "sqs", "ChangeMessageVisibilityBatch", JOBS_QUEUE),  # heartbeats and releases
    CatalogueEntry(_WORKER, "s3", "HeadBucket", {"Bucket": "<processed_bucket>"}),
    CatalogueEntry(_WORKER, "s3", "HeadObject", UPLOADS),
    CatalogueEntry(_WORKER, "s3", "HeadObject", UPLOAD_VERSION),
    CatalogueEntry(_WORKER, "s3", "GetObject", UPLOADS),
    CatalogueEntry(_WORKER, "s3", "GetObject", UPLOAD_VERSION),
    CatalogueEntry(_WORKER, "s3", "GetObject", PROCESSED),
    CatalogueEntry(_WORKER, "s3", "PutObject", PROCESSED),
    CatalogueEntry(_WORKER, "s3", "PutObject", PROCESSED_IF_ABSENT),
    # Outputs over boto3's 8 MB multipart threshold, and the abort after a failed part: recorded through the
    # handler (test_video_processor_multipart.py); the worker uploads with the same function
    # (sqs_decoupling.video.processing), whose test clips' outputs never reach the threshold.
    *(CatalogueEntry(_WORKER, "s3", operation, PROCESSED) for operation in MULTIPART),
    CatalogueEntry(_WORKER, "kms", "Decrypt", BODY_KEY_FOR_QUEUE),
    CatalogueEntry(_WORKER, "autoscaling", "DescribeAutoScalingInstances", {"InstanceIds": "<instance_id>"}),
    CatalogueEntry(
        _WORKER,
        "autoscaling",
        "SetInstanceProtection",
        {"AutoScalingGroupName": "<worker_group>", "InstanceIds": "<instance_id>"},
    ),
    *(
        CatalogueEntry(
            _WORKER,
            "autoscaling",
            operation,
            {
                "AutoScalingGroupName": "<worker_group>",
                "LifecycleHookName": "<lifecycle_hook>",
                "InstanceId": "<instance_id>",
            },
        )
        for operation in ("RecordLifecycleActionHeartbeat", "CompleteLifecycleAction")
    ),
    # A warm pool's launch hook, completed once the worker has started (only configurations with a warm pool).
    CatalogueEntry(
        _WORKER,
        "autoscaling",
        "CompleteLifecycleAction",
        {"AutoScalingGroupName": "<worker_group>", "LifecycleHookName": "<launch_hook>", "InstanceId": "<instance_id>"},
    ),
    # The video processor function, and its event source mapping's polling (tools.localcloud.poller stands in for it).
    CatalogueEntry(_LAMBDA, "sqs", "GetQueueAttributes", JOBS_QUEUE),
    CatalogueEntry(_LAMBDA, "sqs", "ReceiveMessage", JOBS_QUEUE),
    CatalogueEntry(_LAMBDA, "sqs", "DeleteMessageBatch", JOBS_QUEUE),
    CatalogueEntry(_LAMBDA, "s3", "HeadObject", UPLOADS),
    CatalogueEntry(_LAMBDA, "s3", "HeadObject", UPLOAD_VERSION),
    CatalogueEntry(_LAMBDA, "s3", "GetObject", UPLOADS),
    CatalogueEntry(_LAMBDA, "s3", "GetObject", UPLOAD_VERSION),
    CatalogueEntry(_LAMBDA, "s3", "GetObject", PROCESSED),
    CatalogueEntry(_LAMBDA, "s3", "PutObject", PROCESSED),
    CatalogueEntry(_LAMBDA, "s3", "PutObject", PROCESSED_IF_ABSENT),
    *(CatalogueEntry(_LAMBDA, "s3", operation, PROCESSED) for operation in MULTIPART),
    CatalogueEntry(_LAMBDA, "kms", "Decrypt", BODY_KEY_FOR_QUEUE),
    # The producer CLI (sqs-submit): expands s3:// URIs, checks the queue's size limit, encrypts, sends.
    CatalogueEntry(_PRODUCER, "s3", "ListObjectsV2", {"Bucket": "<uploads_bucket>", "Prefix": "uploads/*"}),
    CatalogueEntry(_PRODUCER, "s3", "HeadObject", UPLOADS),
    CatalogueEntry(_PRODUCER, "sqs", "GetQueueAttributes", JOBS_QUEUE),
    CatalogueEntry(_PRODUCER, "sqs", "SendMessageBatch", JOBS_QUEUE),
    CatalogueEntry(_PRODUCER, "kms", "DescribeKey", {"KeyId": "<body_key_alias>"}),
    CatalogueEntry(_PRODUCER, "kms", "GenerateDataKey", BODY_KEY_FOR_QUEUE),
    # The redrive CLI (sqs-redrive): the dead-letter queue's status, then SQS's move task, or the copy (moto).
    CatalogueEntry(_OPERATOR, "sqs", "GetQueueAttributes", DEAD_LETTER_QUEUE),
    CatalogueEntry(_OPERATOR, "sqs", "ListDeadLetterSourceQueues", DEAD_LETTER_QUEUE),
    CatalogueEntry(_OPERATOR, "cloudwatch", "GetMetricData"),
    CatalogueEntry(_OPERATOR, "sqs", "StartMessageMoveTask", MOVE_TASK_SOURCE | {"DestinationArn": "<jobs_queue>"}),
    CatalogueEntry(_OPERATOR, "sqs", "ListMessageMoveTasks", MOVE_TASK_SOURCE),
    # The handle names the dead-letter queue inside (SQS authorizes the cancel on it): any handle start printed.
    CatalogueEntry(_OPERATOR, "sqs", "CancelMessageMoveTask", {"TaskHandle": "<task_handle>"}),
    CatalogueEntry(_OPERATOR, "sqs", "ReceiveMessage", DEAD_LETTER_QUEUE),
    CatalogueEntry(_OPERATOR, "sqs", "SendMessageBatch", JOBS_QUEUE),
    CatalogueEntry(_OPERATOR, "sqs", "DeleteMessageBatch", DEAD_LETTER_QUEUE),
)


def uncovered(calls: Iterable[Call], catalogue: Iterable[CatalogueEntry] = CATALOGUE) -> list[Call]:
    """The calls no catalogue entry covers, in the order seen, each once."""
    entries = tuple(catalogue)
    missing: list[Call] = []
    for call in calls:
        if call not in missing and not any(entry.covers(call) for entry in entries):
            missing.append(call)
    return missing


# Entries no run records, each with the reason; the rehearsal evaluates them all the same.
NOT_RECORDED: Mapping[tuple[str, str, str], str] = {
    (_WORKER, "s3", operation): "the worker's test clips' outputs stay under boto3's 8 MB multipart threshold; the "
    "same upload function's calls are recorded through the handler"
    for operation in MULTIPART
}


def stale(
    calls: Iterable[Call],
    catalogue: Iterable[CatalogueEntry] = CATALOGUE,
    not_recorded: Mapping[tuple[str, str, str], str] = NOT_RECORDED,
) -> list[CatalogueEntry]:
    """The entries no recorded call covers (other than those ``not_recorded`` explains): after a run of every
    recording test, code that no longer makes the call has left its entry behind."""
    seen = list(calls)
    return [
        entry
        for entry in catalogue
        if (entry.principal, entry.service, entry.operation) not in not_recorded
        and not any(entry.covers(call) for call in seen)
    ]
