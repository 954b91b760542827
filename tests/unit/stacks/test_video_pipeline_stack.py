"""VideoPipelineStack: S3 uploads -> encrypted SQS -> Lambda consumer -> processed bucket."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Capture, Match, Template

from sqs_decoupling.contracts.lambda_function import PYTHON_VERSION
from sqs_decoupling.lambda_consumer.lambda_consumer import LambdaQueueConsumer, python_runtime, visibility_timeout_for
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.stacks.video_pipeline_stack import HANDLER
from tests.conftest import make_app

STACK = "VideoPipelineStack"


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    return templates[STACK]


def _logical_id(template: Template, resource_type: str, props: dict[str, Any]) -> str:
    found = template.find_resources(resource_type, {"Properties": props})
    assert len(found) == 1, f"expected one {resource_type} matching {props}, found {len(found)}"
    return next(iter(found))


def _uploads_bucket(template: Template) -> str:
    # The uploads bucket is the one whose notifications are configured
    notification = next(iter(template.find_resources("Custom::S3BucketNotifications").values()))
    return str(notification["Properties"]["BucketName"]["Ref"])


def _jobs_queue(template: Template) -> str:
    return _logical_id(template, "AWS::SQS::Queue", {"RedrivePolicy": Match.any_value()})


def test_new_objects_under_the_upload_prefix_are_sent_to_the_jobs_queue(template: Template) -> None:
    queue = _jobs_queue(template)
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    {
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                        "QueueArn": {"Fn::GetAtt": [queue, "Arn"]},
                    }
                ]
            }
        },
    )


def test_s3_may_send_to_the_queue_only_from_the_uploads_bucket_of_this_account(template: Template) -> None:
    bucket = _uploads_bucket(template)
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": _jobs_queue(template)}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "AllowS3NotificationsFromTheUploadsBucketOnly",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": [_jobs_queue(template), "Arn"]},
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [bucket, "Arn"]}},
                            },
                        }
                    ]
                )
            },
        },
    )


def test_the_key_policy_statement_for_s3_is_scoped_to_this_queues_messages(template: Template) -> None:
    s3_statements = [
        statement
        for key in template.find_resources("AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    # THEN there is exactly one (CDK's unconditioned SqsDestination statement is not there), for the data keys SQS
    # asks for this queue's messages (SQS sends the queue's ARN as encryption context; AWS documents no
    # aws:SourceArn on that request)
    queue_name = template.find_resources("AWS::SQS::Queue", {"Properties": {"QueueName": Match.any_value()}})
    (queue,) = queue_name.values()
    assert s3_statements == [
        {
            "Sid": "AllowS3ToEncryptNotificationsForThisQueueOnly",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:EncryptionContext:aws:sqs:arn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":sqs:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                f":{queue['Properties']['QueueName']}",
                            ],
                        ]
                    }
                }
            },
        }
    ]


def test_the_notification_is_configured_after_the_policies_that_allow_it(template: Template) -> None:
    notification = next(iter(template.find_resources("Custom::S3BucketNotifications").values()))
    depends_on = notification["DependsOn"]
    assert any(d.startswith("VideoJobsQueuePolicy") for d in depends_on)
    assert any(d.startswith("VideoJobsKey") for d in depends_on)


def test_buckets_are_private_versioned_encrypted_tls_only_and_logged(template: Template) -> None:
    data_buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": Match.any_value()}}
    )
    assert len(data_buckets) == 2  # uploads and processed
    for bucket in data_buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert "LoggingConfiguration" in props
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    # AND the processed bucket uses the stack's customer-managed key with an S3 bucket key
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                    }
                ]
            }
        },
    )


def test_the_access_log_bucket_is_versioned_and_expires_old_versions(template: Template) -> None:
    # GIVEN the bucket that receives the server access logs (it has no access logs of its own)
    access_logs = [
        bucket
        for bucket in template.find_resources("AWS::S3::Bucket").values()
        if "LoggingConfiguration" not in bucket["Properties"]
    ]
    assert len(access_logs) == 1
    props = access_logs[0]["Properties"]
    # THEN a deleted or overwritten log is kept as an old version, for 30 days, and logs expire after 90 days
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["ExpirationInDays"] == 90


def test_the_event_source_mapping_reports_partial_failures_with_the_configured_batching(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [_jobs_queue(template), "Arn"]},
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 10},
        },
    )


def test_provisioned_pollers_give_the_event_source_provisioned_mode_instead_of_a_maximum_concurrency(
    template: Template, synth_with: Any
) -> None:
    # GIVEN the default configuration: standard mode, capped by the maximum concurrency
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {"ProvisionedPollerConfig": Match.absent()})
    # WHEN `-c lambda_provisioned_pollers=2,20`
    provisioned = synth_with(lambda_provisioned_pollers="2,20")[STACK]
    # THEN the event source keeps 2 pollers ready and scales to 20, with no MaximumConcurrency (Lambda refuses both)
    provisioned.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 20},
            "ScalingConfig": Match.absent(),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_the_queue_visibility_is_six_times_the_function_timeout_plus_the_window(template: Template) -> None:
    function = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}})
    timeout = next(iter(function.values()))["Properties"]["Timeout"]
    template.has_resource_properties(
        "AWS::SQS::Queue", {"RedrivePolicy": Match.any_value(), "VisibilityTimeout": 6 * timeout + 5}
    )


def _queue_key(template: Template) -> str:
    return _logical_id(template, "AWS::KMS::Key", {"Description": Match.string_like_regexp("^Encrypts the messages")})


def _processor_log_group(template: Template) -> str:
    log_group = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": HANDLER, "LoggingConfig": {"LogGroup": {"Ref": log_group}}},
    )
    return log_group.as_string()


def test_the_function_runs_the_latest_python_on_arm64_with_tracing_and_log_retention(template: Template) -> None:
    log_group = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": HANDLER,
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "TracingConfig": {"Mode": "Active"},
            "Timeout": 120,
            "MemorySize": 2048,
            "EphemeralStorage": {"Size": 600},
            "LoggingConfig": {"LogGroup": {"Ref": log_group}},
            "Environment": {
                "Variables": Match.object_like(
                    {"OUTPUT_BUCKET": Match.any_value(), "MAX_VIDEO_BYTES": str(200 * 1024 * 1024)}
                )
            },
        },
    )
    # AND its log group keeps events for a year (log_retention_days), encrypted with the stack's logs key
    logs_key = _logical_id(template, "AWS::KMS::Key", {"Description": Match.string_like_regexp("log groups")})
    properties = template.to_json()["Resources"][log_group.as_string()]["Properties"]
    assert properties["RetentionInDays"] == 365
    assert properties["KmsKeyId"] == {"Fn::GetAtt": [logs_key, "Arn"]}


def test_the_function_reserves_concurrency_only_when_configured(template: Template, synth_with: Any) -> None:
    # GIVEN the default configuration: no reservation (a new account's quota may leave none to reserve; the event
    # source's maximum concurrency caps the function)
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLER, "ReservedConcurrentExecutions": Match.absent()}
    )
    # WHEN lambda_reserved_concurrency is set
    raised = synth_with(lambda_reserved_concurrency=25)[STACK]
    # THEN the function reserves that much
    raised.has_resource_properties("AWS::Lambda::Function", {"Handler": HANDLER, "ReservedConcurrentExecutions": 25})


def test_cdks_own_handler_functions_log_to_explicit_encrypted_log_groups(template: Template) -> None:
    # GIVEN CDK's bucket-notifications handler, a function the project does not create itself
    handler = next(
        props
        for props in (r["Properties"] for r in template.find_resources("AWS::Lambda::Function").values())
        if props.get("Handler") == "index.handler"
    )
    # THEN it logs to a log group of the template, kept a year and encrypted (not an implicit /aws/lambda group)
    group = template.to_json()["Resources"][handler["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Properties"]["RetentionInDays"] == 365
    assert "KmsKeyId" in group["Properties"]


def test_the_function_runs_with_its_dependencies_layer_built_for_its_runtime_and_architecture(
    template: Template,
) -> None:
    # GIVEN the default stack: one layer, the locked dependencies
    layer = _logical_id(template, "AWS::Lambda::LayerVersion", {})
    properties = template.to_json()["Resources"][layer]["Properties"]
    # THEN the layer is for the function's runtime and architecture, and the function uses it (and only it)
    assert properties["CompatibleRuntimes"] == ["python3.14"]
    assert properties["CompatibleArchitectures"] == ["arm64"]
    assert properties["Content"]["S3Key"].endswith(".zip")
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": HANDLER, "Layers": [{"Ref": layer}]})


def test_x86_64_is_a_configuration_choice(synth_with: Any) -> None:
    template = synth_with(lambda_architecture="x86_64")[STACK]
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": HANDLER, "Architectures": ["x86_64"]})
    template.has_resource_properties("AWS::Lambda::LayerVersion", {"CompatibleArchitectures": ["x86_64"]})


def test_the_function_role_has_exactly_the_actions_it_needs(template: Template) -> None:
    role = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLER, "Role": {"Fn::GetAtt": [role, "Arn"]}}
    )
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role.as_string()}]}})
    statements = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    uploads, queue = _uploads_bucket(template), _jobs_queue(template)
    processed = next(
        logical_id
        for logical_id in template.find_resources(
            "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": Match.any_value()}}
        )
        if logical_id != uploads
    )

    def objects(bucket: str, pattern: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{pattern}"]]}

    granted = {
        (tuple(s["Action"]) if isinstance(s["Action"], list) else (s["Action"],), str(s["Resource"]))
        for s in statements
    }
    assert granted == {
        (("xray:PutTelemetryRecords", "xray:PutTraceSegments"), "*"),
        (
            ("logs:CreateLogStream", "logs:PutLogEvents"),
            str({"Fn::GetAtt": [_processor_log_group(template), "Arn"]}),
        ),
        (("s3:GetObject", "s3:GetObjectVersion"), str(objects(uploads, "uploads/*"))),
        # read back (the idempotency check) and write outputs and failure records, under processed/ only (and
        # abort an upload in parts whose part failed)
        (("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"), str(objects(processed, "processed/*"))),
        # so that a missing manifest reads as 404, not 403
        (("s3:ListBucket",), str({"Fn::GetAtt": [processed, "Arn"]})),
        (("kms:Decrypt", "kms:GenerateDataKey"), str({"Fn::GetAtt": [_queue_key(template), "Arn"]})),
        # for the event source mapping (EncryptedQueue.grant_consume and the queue's attributes)
        (
            ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"),
            str({"Fn::GetAtt": [queue, "Arn"]}),
        ),
        (("kms:Decrypt",), str({"Fn::GetAtt": [_queue_key(template), "Arn"]})),
    }


def test_the_function_may_use_the_stacks_key_only_for_its_queue_and_the_processed_bucket(template: Template) -> None:
    # GIVEN the function's policy statements on the stack's key (queue, DLQ, topic and processed bucket share it)
    role = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLER, "Role": {"Fn::GetAtt": [role, "Arn"]}}
    )
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role.as_string()}]}})
    statements = next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]
    key_arn = {"Fn::GetAtt": [_queue_key(template), "Arn"]}
    contexts = {
        context: value
        for statement in statements
        if statement["Resource"] == key_arn
        for context, value in statement["Condition"]["StringEquals"].items()
    }
    # THEN every one is limited to the encryption context the service sets: the queue's ARN for SQS (formatted from
    # the queue's fixed name), the processed bucket's ARN for S3 (with an S3 Bucket Key)
    processed = next(
        logical_id
        for logical_id, bucket in template.find_resources("AWS::S3::Bucket").items()
        if "aws:kms" in str(bucket["Properties"]["BucketEncryption"])
    )
    assert contexts.keys() == {"kms:EncryptionContext:aws:sqs:arn", "kms:EncryptionContext:aws:s3:arn"}
    assert contexts["kms:EncryptionContext:aws:s3:arn"] == {"Fn::GetAtt": [processed, "Arn"]}
    assert str(contexts["kms:EncryptionContext:aws:sqs:arn"]).endswith(":VideoPipelineStack-VideoJobs-A399C648']]}")


def test_function_errors_and_throttles_alarm_to_the_queue_alarm_topic(template: Template) -> None:
    topic = _logical_id(template, "AWS::SNS::Topic", {})
    for metric in ("Errors", "Throttles"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/Lambda",
                "MetricName": metric,
                "Statistic": "Sum",
                "Period": 60,
                "AlarmActions": [{"Ref": topic}],
            },
        )


def test_outputs_name_buckets_queue_and_function(template: Template) -> None:
    assert set(template.find_outputs("*")) == {
        "UploadsBucketName",
        "ProcessedBucketName",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "RedriveOperatorPolicyArn",
        "FunctionName",
    }


def _consumer(visibility: Duration, **props: Any) -> None:
    stack = Stack(make_app(), "Consumer")
    jobs = EncryptedQueue(stack, "Jobs", visibility_timeout=visibility)
    LambdaQueueConsumer(
        stack,
        "Worker",
        jobs=jobs,
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
        handler="index.handler",
        runtime=python_runtime(PYTHON_VERSION),
        timeout=props.pop("timeout", Duration.seconds(60)),
        **props,
    )


def test_a_visibility_timeout_shorter_than_six_function_timeouts_fails_synthesis() -> None:
    # GIVEN a function timeout of 60 s and a 5 s batching window: the queue needs >= 365 s
    assert visibility_timeout_for(Duration.seconds(60), Duration.seconds(5)).to_seconds() == 365
    # WHEN the queue's visibility is 300 s
    # THEN synthesis fails and says what is needed and how to fix it
    with pytest.raises(ValueError) as raised:
        _consumer(Duration.seconds(300))
    assert "the queue's visibility_timeout is 300 s, allowed >= 365 s" in str(raised.value)
    assert "visibility_timeout_for(timeout, window)" in str(raised.value)
    # AND exactly the needed value is accepted
    _consumer(Duration.seconds(365))


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"batch_size": 11}, "batch_size = 11 is out of range: allowed 1..10"),
        ({"max_concurrency": 1}, "max_concurrency = 1 is out of range: allowed 2..1000"),
        (
            {"max_batching_window": Duration.seconds(301)},
            "max_batching_window = 301 s is out of range: allowed 0..300 s",
        ),
        ({"timeout": Duration.seconds(901)}, "timeout = 901 s is out of range: allowed 1..900 s"),
        (
            {"max_concurrency": 20, "reserved_concurrency": 10},
            "reserved_concurrency = 10 is below max_concurrency = 20",
        ),
        ({"provisioned_pollers": (1, 20)}, "provisioned_pollers = (1, 20): MIN = 1 is out of range: allowed 2..200"),
        ({"provisioned_pollers": (2, 2001)}, "MAX = 2001 is out of range: allowed 2..2,000"),
        ({"provisioned_pollers": (30, 20)}, "MIN = 30 is above MAX = 20"),
        ({"provisioned_pollers": (2, 20), "reserved_concurrency": 1}, "reserved_concurrency = 1 is out of range"),
    ],
)
def test_out_of_range_consumer_props_fail_synthesis(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="LambdaQueueConsumer 'Consumer/Worker'") as raised:
        _consumer(Duration.hours(12), **props)
    assert message in str(raised.value)


def test_client_side_encryption_gives_the_function_a_body_key_it_may_only_decrypt_with(synth_with: Any) -> None:
    # GIVEN the default configuration: no body key, no setting
    # WHEN client_side_encryption is turned on
    template = synth_with(client_side_encryption=True)[STACK]
    body_key = _logical_id(template, "AWS::KMS::Key", {"Description": Match.string_like_regexp("^Client-side")})
    # THEN the function is told the key and may decrypt with it for its queue's context only
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": HANDLER,
            "Environment": {"Variables": Match.object_like({"BODY_KEY_ARN": {"Fn::GetAtt": [body_key, "Arn"]}})},
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": {"Fn::GetAtt": [body_key, "Arn"]},
                            "Condition": {"StringEquals": {"kms:EncryptionContext:sqs_queue": Match.any_value()}},
                        }
                    ]
                )
            }
        },
    )


def test_without_client_side_encryption_there_is_no_body_key(template: Template) -> None:
    assert not template.find_resources(
        "AWS::KMS::Key", {"Properties": {"Description": Match.string_like_regexp("^Client-side")}}
    )
