"""LambdaQueueConsumer: a Lambda function fed by an SQS queue, with the settings that make it safe.

- ReportBatchItemFailures on: only the failed messages of a batch return to the queue.
- The queue's visibility timeout must be at least 6 x the function timeout + the batching window (AWS's
  guidance): otherwise a message can become visible again, and be processed twice, while a retry of its
  batch is still running. A queue that breaks the rule fails synthesis.
- Maximum concurrency caps how many functions the queue can keep busy (and what they can do downstream).
- Reserved concurrency at least the maximum concurrency: the queue can always run what it may start, and the
  function cannot take the whole account's concurrency.
- Latest Python runtime, X-Ray tracing, an encrypted log group with retention, a role with only what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from sqs_decoupling.common.acknowledgements import acknowledge, acknowledge_control, wildcard_finding
from sqs_decoupling.common.log_groups import encrypted_log_group
from sqs_decoupling.common.ranges import Limit, Problems, check_pass_through, seconds
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue

VISIBILITY_TO_TIMEOUT_RATIO = 6
# Lambda's and the SQS event source's limits, and this construct's defaults.
MAX_TIMEOUT_SECONDS = 900
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240
MAX_BATCH_SIZE = 10  # SQS's receive maximum for a standard queue's event source without a batching window
MAX_BATCHING_WINDOW_SECONDS = 300
MIN_CONCURRENCY, MAX_CONCURRENCY = 2, 1000
DEFAULT_BATCH_SIZE = MAX_BATCH_SIZE
DEFAULT_BATCHING_WINDOW_SECONDS = 5
DEFAULT_MAX_CONCURRENCY = 10
# Provisioned mode for an SQS event source (Lambda API reference, ProvisionedPollerConfig): at least 2 event pollers
# always on (MinimumPollers 2..200), scaling up to MaximumPollers, one poller up to 10 concurrent invocations.
# Lambda refuses MaximumConcurrency beside it: the two are exclusive. Lambda accepts MaximumPollers up to 10,000 for
# SQS since August 2026, but aws-cdk-lib 2.275's EventSourceMapping still refuses more than 2,000 at synthesis.
MIN_POLLERS = 2
MAX_MINIMUM_POLLERS = 200
MAX_MAXIMUM_POLLERS = 2_000
# The one statement of each prop's allowed range (durations in seconds): the construct and VideoPipelineSettings
# check these through validate_consumer_props.
CONSUMER_LIMITS: dict[str, Limit] = {
    "timeout": Limit(1, MAX_TIMEOUT_SECONDS, " s"),
    "memory_size": Limit(MIN_MEMORY_MB, MAX_MEMORY_MB, " MB"),
    "batch_size": Limit(1, MAX_BATCH_SIZE),
    "max_batching_window": Limit(0, MAX_BATCHING_WINDOW_SECONDS, " s"),
    "max_concurrency": Limit(MIN_CONCURRENCY, MAX_CONCURRENCY),
    "reserved_concurrency": Limit(MIN_CONCURRENCY, MAX_CONCURRENCY),
}
# The props of lambda_.Function that ``function_props`` may not set: the security defaults it would switch off, and
# those the construct sets from a prop of its own.
REFUSED_FUNCTION_PROPS: dict[str, str] = {
    "tracing": "X-Ray tracing stays active",
    "role": "the construct's role holds only what the function needs (grant more to consumer.role)",
    "initial_policy": "grant more to consumer.role, where the findings of each statement are acknowledged",
    "log_group": "the construct's log group is encrypted and kept log_retention_days",
    "log_retention": "set the construct's log_retention_days prop",
    "log_retention_role": "the construct's log group needs no retention function",
    "log_removal_policy": "the construct's log group is encrypted and kept log_retention_days",
    **{
        prop: f"set the construct's {own} prop"
        for prop, own in {
            "code": "code",
            "handler": "handler",
            "runtime": "runtime",
            "layers": "layers",
            "timeout": "timeout",
            "architecture": "architecture",
            "memory_size": "memory_size",
            "ephemeral_storage_size": "ephemeral_storage",
            "environment": "environment",
            "reserved_concurrent_executions": "reserved_concurrency",
        }.items()
    },
}


def provisioned_pollers_problem(pollers: Sequence[int]) -> str | None:
    """What is wrong with ``(minimum, maximum)`` event pollers for an SQS event source, or None. The one check of
    the construct's ``provisioned_pollers`` and the ``lambda_provisioned_pollers`` setting."""
    if len(pollers) != 2:
        return f"needs two numbers, MIN,MAX (e.g. 2,20), got {len(pollers)}"
    minimum, maximum = pollers
    if not MIN_POLLERS <= minimum <= MAX_MINIMUM_POLLERS:
        return f"MIN = {minimum} is out of range: allowed {MIN_POLLERS}..{MAX_MINIMUM_POLLERS}"
    if not MIN_POLLERS <= maximum <= MAX_MAXIMUM_POLLERS:
        return f"MAX = {maximum} is out of range: allowed {MIN_POLLERS}..{MAX_MAXIMUM_POLLERS:,}"
    if minimum > maximum:
        return f"MIN = {minimum} is above MAX = {maximum}: allowed MIN <= MAX"
    return None


def python_runtime(version: str) -> lambda_.Runtime:
    """CDK's Lambda runtime for Python ``version`` (e.g. "3.14"); fails if this aws-cdk-lib does not know it."""
    name = f"PYTHON_{version.replace('.', '_')}"
    runtime = getattr(lambda_.Runtime, name, None)
    if not isinstance(runtime, lambda_.Runtime):
        raise ValueError(
            f"aws-cdk-lib has no Lambda runtime for Python {version} (lambda_.Runtime.{name}): upgrade it."
        )
    return runtime


def visibility_timeout_for(function_timeout: Duration, batching_window: Duration = Duration.seconds(0)) -> Duration:
    """The shortest safe visibility timeout for a queue that feeds a function: 6 x timeout + batching window."""
    return Duration.seconds(VISIBILITY_TO_TIMEOUT_RATIO * function_timeout.to_seconds() + batching_window.to_seconds())


class LambdaQueueConsumer(Construct):
    """A Python function consuming ``jobs`` through an SQS event source mapping.

    Attributes: ``function``, ``role``, ``event_source_mapping``, ``log_group``.

    :param jobs: the queue to consume; its visibility timeout must be >= 6 x ``timeout`` + window.
    :param layers: layers the function runs with (e.g. its dependencies). Default: none.
    :param runtime: the Lambda runtime, e.g. ``python_runtime("3.14")``.
    :param timeout: the function timeout (1 s..15 min).
    :param memory_size: the function's memory (128..10,240 MB). Default: 1,024.
    :param batch_size: messages per invocation (1..10). Default 10, SQS's receive maximum.
    :param max_batching_window: how long to gather a batch (0..300 s). Default 5 s.
    :param max_concurrency: most concurrent invocations the queue may start (2..1000). Default 10.
    :param reserved_concurrency: concurrency reserved for the function (2..1000), >= ``max_concurrency``.
        Default: none (``max_concurrency`` already caps what the queue starts; a reservation fails the deploy in
        an account whose concurrency quota cannot keep 100 executions unreserved, e.g. a new account's 10).
    :param provisioned_pollers: (minimum, maximum) event pollers of the event source's provisioned mode (2..200,
        2..2,000): pollers kept ready and faster scale-out, billed per poller-hour; ``max_concurrency`` is then
        not set (Lambda allows one or the other). Default: none (standard mode).
    :param log_retention_days: how long the log group keeps events (365 or more). Default: 365.
    :param function_props: more props for the ``lambda_.Function`` (e.g. ``description``, ``vpc``); one that
        would switch off a security default, or that a prop above sets, is refused (``REFUSED_FUNCTION_PROPS``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: EncryptedQueue,
        code: lambda_.Code,
        handler: str,
        layers: Sequence[lambda_.ILayerVersion] = (),
        runtime: lambda_.Runtime,
        timeout: Duration,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        memory_size: int = 1024,
        ephemeral_storage: Size = Size.mebibytes(512),
        environment: Mapping[str, str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batching_window: Duration = Duration.seconds(DEFAULT_BATCHING_WINDOW_SECONDS),
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        reserved_concurrency: int | None = None,
        provisioned_pollers: tuple[int, int] | None = None,
        log_retention_days: int = 365,
        function_props: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the role, the log group, the function and its SQS event source mapping."""
        super().__init__(scope, construct_id)
        problems = Problems(f"LambdaQueueConsumer '{self.node.path}'")
        props = {"timeout": timeout, "memory_size": memory_size, "batch_size": batch_size}
        props |= {"max_batching_window": max_batching_window, "max_concurrency": max_concurrency}
        validate_consumer_props(
            problems, props | {"reserved_concurrency": reserved_concurrency, "provisioned_pollers": provisioned_pollers}
        )
        validate_visibility(problems, jobs.visibility_timeout, timeout, max_batching_window)
        check_pass_through(
            problems, "function_props", function_props or {}, target=lambda_.Function, refused=REFUSED_FUNCTION_PROPS
        )
        problems.raise_any()

        self.log_group, self.role = self._log_group_and_role(log_retention_days)
        self.function = lambda_.Function(
            self,
            "Function",
            **(function_props or {}),
            runtime=runtime,
            architecture=architecture,
            code=code,
            handler=handler,
            layers=list(layers),
            timeout=timeout,
            memory_size=memory_size,
            ephemeral_storage_size=ephemeral_storage,
            environment=dict(environment or {}),
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=self.log_group,
            role=self.role,
        )
        self.event_source_mapping = self._event_source(
            jobs, batch_size, max_batching_window, max_concurrency, provisioned_pollers
        )
        self._acknowledge_findings()

    def _log_group_and_role(self, retention_days: int) -> tuple[logs.LogGroup, iam.Role]:
        """An encrypted log group, and our own role instead of the AWSLambdaBasicExecutionRole managed policy: it
        may write logs only to this log group."""
        log_group = encrypted_log_group(self, "Logs", retention_days=retention_days)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
        return log_group, role

    def _event_source(
        self,
        jobs: EncryptedQueue,
        batch_size: int,
        max_batching_window: Duration,
        max_concurrency: int,
        provisioned_pollers: tuple[int, int] | None,
    ) -> lambda_.EventSourceMapping:
        """The mapping itself rather than CDK's SqsEventSource, whose grant gives kms:Decrypt on the queue's key for
        any encryption context: jobs.grant_consume limits it to this queue's messages."""
        mapping = self.function.add_event_source_mapping(
            "SqsEventSource",
            event_source_arn=jobs.queue.queue_arn,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            max_concurrency=None if provisioned_pollers else max_concurrency,
            provisioned_poller_config=lambda_.ProvisionedPollerConfig(
                minimum_pollers=provisioned_pollers[0], maximum_pollers=provisioned_pollers[1]
            )
            if provisioned_pollers
            else None,
            report_batch_item_failures=True,
        )
        jobs.grant_consume(self.function)
        jobs.queue.grant(self.function, "sqs:GetQueueAttributes")  # Lambda reads the queue's settings
        return mapping

    def _acknowledge_findings(self) -> None:
        """The findings this construct accepts, each with its reason."""
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            wildcard_finding("*"),
            "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions.",
        )
        acknowledge(
            self.function,
            "Serverless::Serverless-LambdaDLQ",
            "Invoked synchronously by the SQS event source mapping: failed messages go to the queue's own "
            "dead-letter queue after maxReceiveCount; a function DLQ only applies to asynchronous invocations.",
        )
        acknowledge(
            self.function,
            "Serverless::Serverless-LambdaEventSourceMappingDestination",
            "SQS event source mappings cannot have an on-failure destination; the queue's redrive policy sends "
            "failed messages to its dead-letter queue instead.",
        )
        acknowledge_control(
            self.function,
            "CT.LAMBDA.PR.3",
            "Outside a VPC on purpose: it calls only S3, SQS, KMS, X-Ray and CloudWatch, public AWS APIs over TLS "
            "with IAM; a VPC would need endpoints or NAT (billed hourly) and would not narrow what its role may do.",
        )

    def dashboard_widgets(self) -> list[cloudwatch.IWidget]:
        """Graphs of the function: invocations, errors, throttles, duration, concurrency."""
        period = Duration.minutes(1)
        fn = self.function
        return [
            cloudwatch.GraphWidget(
                title="Invocations, errors, throttles",
                left=[
                    fn.metric_invocations(period=period, statistic="Sum"),
                    fn.metric_errors(period=period, statistic="Sum"),
                    fn.metric_throttles(period=period, statistic="Sum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Duration (ms)",
                left=[
                    fn.metric_duration(period=period, statistic="p50"),
                    fn.metric_duration(period=period, statistic="p99"),
                    fn.metric_duration(period=period, statistic="Maximum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Concurrent executions",
                left=[fn.metric("ConcurrentExecutions", period=period, statistic="Maximum")],
                width=8,
            ),
        ]


def validate_consumer_props(problems: Problems, props: Mapping[str, Any]) -> None:
    """The one check of LambdaQueueConsumer's props (and of VideoPipelineSettings, through them): each prop of
    ``props`` (durations or seconds; None = unset) inside its ``CONSUMER_LIMITS``, the provisioned pollers, and a
    reservation that is not below the maximum concurrency."""
    for prop, value in props.items():
        if prop in CONSUMER_LIMITS and value is not None:
            problems.check(prop, seconds(value), CONSUMER_LIMITS[prop])
    pollers = props.get("provisioned_pollers")
    problem = provisioned_pollers_problem(pollers) if pollers else None
    if problem:
        shown = problems.shown("provisioned_pollers", pollers)
        fix = problems.fix("provisioned_pollers", "MIN,MAX (e.g. 2,20)")
        problems.add(f"{problems.subject('provisioned_pollers')} = {shown}: {problem}.{fix}")
    reserved, maximum = props.get("reserved_concurrency"), props.get("max_concurrency")
    # In provisioned mode the mapping has no maximum concurrency (Lambda allows one or the other).
    if reserved is not None and maximum is not None and not pollers and reserved < maximum:
        names = problems.name("reserved_concurrency"), problems.name("max_concurrency")
        problems.add(
            f"{problems.subject('reserved_concurrency')} = {reserved} is below {names[1]} = {maximum}: the event "
            "source could then start more invocations than the function may run, and they would be throttled. "
            f"Raise {names[0]}, lower {names[1]}, or reserve nothing."
        )


def validate_visibility(problems: Problems, visibility_timeout: Duration, timeout: Duration, window: Duration) -> None:
    """Report a queue whose visibility timeout is shorter than 6 x timeout + window."""
    visibility = visibility_timeout.to_seconds()
    needed = visibility_timeout_for(timeout, window).to_seconds()
    if visibility < needed:
        problems.add(
            f"{problems.owner}: the queue's visibility_timeout is {visibility:.0f} s, allowed >= {needed:.0f} s (6 x "
            f"the function timeout of {timeout.to_seconds():.0f} s + the batching window of "
            f"{window.to_seconds():.0f} s). Create the queue with "
            "visibility_timeout=visibility_timeout_for(timeout, window), or shorten the function timeout."
        )
