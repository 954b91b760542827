"""UploadIntake: a hardened uploads bucket whose new objects under a prefix become jobs on an EncryptedQueue."""

from __future__ import annotations

import jsii
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.interfaces.aws_s3 import IBucketRef
from constructs import Construct, IDependable

from sqs_decoupling.common.acknowledgements import acknowledge, acknowledge_control
from sqs_decoupling.common.ranges import Problems
from sqs_decoupling.intake.buckets import data_bucket
from sqs_decoupling.queue.encrypted_queue import PRODUCER_KMS_ACTIONS, PRODUCER_SQS_ACTIONS, EncryptedQueue

DEFAULT_PREFIX = "uploads/"
PREFIX_RULE = "a key prefix like 'uploads/' (not empty, no leading '/', ending in '/')"


def is_valid_prefix(prefix: str) -> bool:
    """True for a key prefix S3 notifications can filter on as this intake means it: a folder."""
    return bool(prefix) and not prefix.startswith("/") and prefix.endswith("/")


def validate_intake_props(problems: Problems, *, prefix: str) -> None:
    """The one check of UploadIntake's ``prefix`` (and of the ``upload_prefix`` setting, through it)."""
    if not is_valid_prefix(prefix):
        problems.add(f"{problems.subject('prefix')} = {prefix!r} must be {PREFIX_RULE}.{problems.fix('prefix')}")


class UploadIntake(Construct):
    """An uploads bucket that sends ObjectCreated events under ``prefix`` to ``jobs``. S3 may send to the
    queue, and use the queue's key, only for this bucket in this account.

    The bucket is encrypted with S3-managed keys: uploaders need no KMS permission, and the queue key's policy
    can name the bucket (a bucket encrypted with that same key would make a circular dependency).

    Attributes: ``bucket``, ``jobs``, ``prefix``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: EncryptedQueue,
        access_logs: s3.IBucket | None = None,
        prefix: str = DEFAULT_PREFIX,
        existing_bucket: s3.IBucket | None = None,
    ) -> None:
        """:param access_logs: where the new bucket's server access logs go (required unless ``existing_bucket``).
        :param existing_bucket: a bucket of yours to take the uploads from instead of a new one (its own settings,
            encryption and policies stay yours; it must not be encrypted with the queue's key). Default: a new
            hardened bucket."""
        super().__init__(scope, construct_id)
        problems = Problems(f"UploadIntake '{self.node.path}'")
        validate_intake_props(problems, prefix=prefix)
        if existing_bucket is None and access_logs is None:
            problems.add(f"{problems.owner}: access_logs is required for the new bucket (or pass existing_bucket).")
        problems.raise_any()
        self.jobs = jobs
        self.prefix = prefix
        self.bucket = existing_bucket or self._new_bucket(access_logs)
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            ScopedQueueDestination(jobs),
            s3.NotificationKeyFilter(prefix=prefix),
        )
        _acknowledge_notifications_handler(Stack.of(self))

    def _new_bucket(self, access_logs: s3.IBucket | None) -> s3.Bucket:
        """A hardened data bucket (``buckets.data_bucket``) whose events this intake consumes."""
        assert access_logs is not None  # checked in __init__
        bucket = data_bucket(self, "Bucket", access_logs=access_logs, sends_events=True)
        acknowledge_control(
            bucket,
            "CT.S3.PR.4",
            "Its ObjectCreated events do go to the jobs queue, but through CDK's Custom::S3BucketNotifications "
            "resource; the control reads only the bucket's own NotificationConfiguration property.",
        )
        return bucket

    def grant_read_uploads(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read (and decrypt) the objects under the upload prefix, and nothing else."""
        return self.bucket.grant_read(grantee, f"{self.prefix}*")


@jsii.implements(s3.IBucketNotificationDestination)
class ScopedQueueDestination:
    """Like aws_s3_notifications.SqsDestination, with the key policy scoped to one bucket and account.

    CDK's SqsDestination adds a key-policy statement letting s3.amazonaws.com use the queue's key with no
    condition at all, i.e. on behalf of any bucket in any account (a confused-deputy risk). This one adds
    aws:SourceAccount and aws:SourceArn conditions to both the queue policy and the key policy.
    """

    def __init__(self, jobs: EncryptedQueue) -> None:
        self._jobs = jobs

    def bind(self, scope: Construct, bucket: IBucketRef) -> s3.BucketNotificationDestinationConfig:
        """Called by CDK when the notification is added: grant S3 what it needs, for this bucket only."""
        queue, key = self._jobs.queue, self._jobs.key
        s3_service = iam.ServicePrincipal("s3.amazonaws.com")
        from_this_bucket = {
            "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
            "ArnLike": {"aws:SourceArn": bucket.bucket_ref.bucket_arn},
        }
        queue_policy = queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowS3NotificationsFromTheUploadsBucketOnly",
                principals=[s3_service],
                actions=list(PRODUCER_SQS_ACTIONS),
                resources=[queue.queue_arn],
                conditions=from_this_bucket,
            )
        )
        # S3 asks KMS for the data key through SQS, which sends the queue's ARN as encryption context; AWS documents
        # no aws:SourceArn / aws:SourceAccount on that request, so the key is scoped to this queue's messages.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowS3ToEncryptNotificationsForThisQueueOnly",
                principals=[s3_service],
                actions=list(PRODUCER_KMS_ACTIONS),
                resources=["*"],
                conditions={"StringEquals": {"kms:EncryptionContext:aws:sqs:arn": self._jobs.queue_arn}},
            )
        )
        # S3 checks that it may send when the notification is configured, so the policies must exist first.
        # (The key policy is part of the key resource itself.)
        dependencies: list[IDependable] = [key] if isinstance(key, Construct) else []
        if queue_policy.policy_dependable is not None:
            dependencies.append(queue_policy.policy_dependable)
        return s3.BucketNotificationDestinationConfig(
            arn=queue.queue_arn, type=s3.BucketNotificationDestinationType.QUEUE, dependencies=dependencies
        )


def _acknowledge_notifications_handler(stack: Stack) -> None:
    """CDK configures bucket notifications with a stack-wide singleton Lambda; its findings are CDK's design."""
    handler = stack.node.try_find_child("BucketNotificationsHandler050a0587b7544547bf325f094a3db834")
    if handler is None:
        return
    acknowledge(
        handler,
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "CDK's bucket-notifications handler uses AWSLambdaBasicExecutionRole; CDK owns this function and role.",
    )
    acknowledge_control(
        handler,
        "CT.LAMBDA.PR.3",
        "CDK's bucket-notifications handler runs only while CloudFormation deploys and calls only the S3 API; "
        "CDK creates it outside any VPC.",
    )
