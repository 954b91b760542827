"""Scaling an Auto Scaling group on the depth of an SQS queue.

The CloudWatch metric is ApproximateNumberOfMessagesVisible (the GetQueueAttributes attribute is called
ApproximateNumberOfMessages), 1-minute period, statistic Maximum: any backlog seen during the minute counts.

``step_scaling`` (the seed's picture, the default): alarms on the backlog add instances in steps; a second rule
removes one instance at a time while the group has a whole instance to spare (``spare_capacity_scale_in``); a third
sets the group to zero only when nothing is visible AND nothing is in flight (Visible + NotVisible == 0) for several
minutes. Work in progress is never the reason an instance goes away: a busy worker protects itself from scale-in
(``sqs_decoupling.worker_fleet.worker.autoscaling``), so a scale-in takes idle instances only.

``backlog_target_tracking`` (AWS's recommendation for variable loads): keep Visible / InServiceInstances at a
target (acceptable latency / seconds per job), plus a rule that starts the first instance from zero, because the
ratio has no value while there are no instances.
"""

from __future__ import annotations

from collections.abc import Sequence

import jsii
from aws_cdk import Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sqs_decoupling.common.upstream_warnings import without_step_scaling_cooldown_warning

PERIOD = Duration.minutes(1)
# The spare-capacity scale-in: a whole instance idle at the busiest second of SPARE_MINUTES minutes in a row removes
# one instance, and the next one goes SPARE_MINUTES later at the earliest (the policy's cooldown).
SPARE_MINUTES = 5


def _visible(queue: sqs.IQueue) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")


def _in_flight(queue: sqs.IQueue) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_not_visible(period=PERIOD, statistic="Maximum")


def _in_service(group: autoscaling.IAutoScalingGroup, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/AutoScaling",
        metric_name="GroupInServiceInstances",
        dimensions_map={"AutoScalingGroupName": group.auto_scaling_group_name},
        period=PERIOD,
        statistic=statistic,
    )


def step_scaling(
    group: autoscaling.AutoScalingGroup,
    queue: sqs.IQueue,
    *,
    thresholds: Sequence[int],
    adjustments: Sequence[int],
    worker_concurrency: int,
    empty_minutes: int = 10,
) -> tuple[autoscaling.StepScalingPolicy, autoscaling.CfnScalingPolicy, autoscaling.StepScalingPolicy]:
    """Add ``adjustments[i]`` instances while at least ``thresholds[i]`` messages are visible; remove one instance
    while a whole one is spare (``spare_capacity_scale_in``); go to zero after ``empty_minutes`` minutes with
    nothing visible and nothing in flight. Returns (scale out, scale in on spare capacity, scale in when idle).
    """
    if len(thresholds) != len(adjustments) or not thresholds:
        raise ValueError(
            f"step_scaling: thresholds {list(thresholds)} and adjustments {list(adjustments)} must be non-empty "
            "and of the same length."
        )
    # aws-cdk-lib's StepScalingPolicy passes an unset cooldown on, and jsii warns about it (aws/aws-cdk#37833).
    without_step_scaling_cooldown_warning()
    steps = [autoscaling.ScalingInterval(upper=thresholds[0], change=0)]
    for i, (threshold, adjustment) in enumerate(zip(thresholds, adjustments, strict=True)):
        upper = thresholds[i + 1] if i + 1 < len(thresholds) else None
        steps.append(autoscaling.ScalingInterval(lower=threshold, upper=upper, change=adjustment))
    scale_out = group.scale_on_metric(
        "ScaleOutOnBacklog",
        metric=_visible(queue),
        scaling_steps=steps,
        adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        evaluation_periods=1,
        # New instances need a few minutes to boot and start pulling; don't count the same backlog twice.
        estimated_instance_warmup=Duration.minutes(3),
    )
    spare = spare_capacity_scale_in(group, queue, worker_concurrency=worker_concurrency)
    idle = cloudwatch.MathExpression(
        expression="visible + inflight",
        using_metrics={"visible": _visible(queue), "inflight": _in_flight(queue)},
        label="Messages visible + in flight",
        period=PERIOD,
    )
    scale_in = group.scale_on_metric(
        "ScaleInWhenIdle",
        metric=idle,
        scaling_steps=[
            autoscaling.ScalingInterval(upper=0, change=-100),
            autoscaling.ScalingInterval(lower=1, change=0),
        ],
        adjustment_type=autoscaling.AdjustmentType.PERCENT_CHANGE_IN_CAPACITY,
        evaluation_periods=empty_minutes,
        datapoints_to_alarm=empty_minutes,
    )
    return scale_out, spare, scale_in


def spare_capacity_scale_in(
    group: autoscaling.AutoScalingGroup, queue: sqs.IQueue, *, worker_concurrency: int
) -> autoscaling.CfnScalingPolicy:
    """Remove one instance when, at the busiest second of each of the last ``SPARE_MINUTES`` minutes, the group
    minus one instance would still have had a free job slot for every message (visible + in flight), and the group
    has more than one instance (the last one goes with the empty-queue rule).

    The metric: spare instances = InService - (visible + in flight) / ``worker_concurrency``, from the minute's
    Maximum of both queue metrics and Minimum of GroupInServiceInstances (each choice counts less spare capacity,
    never more). Hysteresis: the scale-out alarm fires when one message waits (more work than job slots), this one
    only when a whole instance's slots stay free; between the two the group keeps its size, so it cannot flap.

    Why a simple scaling policy with a cooldown and not a step policy: while an alarm stays in ALARM, CloudWatch
    invokes its Auto Scaling action again every minute (CloudWatch User Guide, "Alarm actions"), and the datapoint
    after a scale-in still describes the minute before it (SQS publishes once a minute, and late). A step policy has
    no cooldown and would remove a second instance on that stale datapoint. The cooldown of a simple scaling policy
    is AWS's mechanism for exactly this: "prevent [the group] from launching or terminating additional instances
    before the effects of the previous scaling activity are visible"; it does not delay step or target tracking
    scale-outs (EC2 Auto Scaling User Guide, "Scaling cooldowns for Amazon EC2 Auto Scaling"). A scale-in is also
    blocked while new instances warm up ("Set the default instance warmup"), so a fresh instance is not removed
    before it has taken work. Busy workers are protected from scale-in, so the instance removed is an idle one.
    """
    policy = autoscaling.CfnScalingPolicy(
        group,
        "ScaleInOnSpareCapacity",
        auto_scaling_group_name=group.auto_scaling_group_name,
        policy_type="SimpleScaling",
        adjustment_type="ChangeInCapacity",
        scaling_adjustment=-1,
        cooldown=str(SPARE_MINUTES * 60),
    )
    spare = cloudwatch.MathExpression(
        expression=f"IF(inservice > 1, inservice - (visible + inflight) / {worker_concurrency}, 0)",
        using_metrics={
            "visible": _visible(queue),
            "inflight": _in_flight(queue),
            "inservice": _in_service(group, "Minimum"),
        },
        label="Spare instances at the busiest second (0 with one instance or none)",
        period=PERIOD,
    )
    alarm = cloudwatch.Alarm(
        group,
        "SpareCapacityAlarm",
        alarm_description="A whole instance has been idle at the busiest second for minutes: remove one.",
        metric=spare,
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=SPARE_MINUTES,
        datapoints_to_alarm=SPARE_MINUTES,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(_PolicyAction(policy))
    return policy


@jsii.implements(cloudwatch.IAlarmAction)
class _PolicyAction:
    """An alarm action that invokes a CfnScalingPolicy (aws-cdk-lib's AutoScalingAction takes step policies only)."""

    def __init__(self, policy: autoscaling.CfnScalingPolicy) -> None:
        self._policy = policy

    def bind(self, _scope: Construct, _alarm: cloudwatch.IAlarm) -> cloudwatch.AlarmActionConfig:
        # Ref of an AWS::AutoScaling::ScalingPolicy is its ARN, as for the step policies' alarms.
        return cloudwatch.AlarmActionConfig(alarm_action_arn=self._policy.ref)


def backlog_target_tracking(
    group: autoscaling.AutoScalingGroup, queue: sqs.IQueue, *, backlog_per_instance: int
) -> tuple[autoscaling.CfnScalingPolicy, cloudwatch.Alarm]:
    """Target tracking on Visible / GroupInServiceInstances, plus a scale-out-from-zero rule.

    The L2 TargetTrackingScalingPolicy accepts only plain metrics (aws-cdk#20659), hence CfnScalingPolicy.
    Returns (the target tracking policy, the alarm that starts the first instance).
    """
    queue_dimensions = [{"name": "QueueName", "value": queue.queue_name}]
    group_dimensions = [{"name": "AutoScalingGroupName", "value": group.auto_scaling_group_name}]
    policy = autoscaling.CfnScalingPolicy(
        group,
        "BacklogPerInstanceTracking",
        auto_scaling_group_name=group.auto_scaling_group_name,
        policy_type="TargetTrackingScaling",
        estimated_instance_warmup=180,
        target_tracking_configuration=autoscaling.CfnScalingPolicy.TargetTrackingConfigurationProperty(
            target_value=backlog_per_instance,
            customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                metrics=[
                    _metric_query("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue_dimensions, "Sum"),
                    _metric_query(
                        "inservice", "AWS/AutoScaling", "GroupInServiceInstances", group_dimensions, "Average"
                    ),
                    autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                        id="backlog_per_instance",
                        expression="visible / inservice",
                        label="Visible messages per in-service instance",
                        return_data=True,
                    ),
                ]
            ),
        ),
    )
    return policy, _start_from_zero(group, queue)


def _start_from_zero(group: autoscaling.AutoScalingGroup, queue: sqs.IQueue) -> cloudwatch.Alarm:
    """The alarm that sets the group to one instance when messages wait and none is in service."""
    start_from_zero = autoscaling.StepScalingAction(
        group,
        "StartFromZero",
        auto_scaling_group=group,
        adjustment_type=autoscaling.AdjustmentType.EXACT_CAPACITY,
    )
    start_from_zero.add_adjustment(adjustment=1, lower_bound=0)
    alarm = cloudwatch.Alarm(
        group,
        "BacklogWithNoInstances",
        alarm_description="Messages are waiting and no instance is in service: start one.",
        metric=cloudwatch.MathExpression(
            expression="IF(inservice == 0, visible, 0)",
            using_metrics={"visible": _visible(queue), "inservice": _in_service(group, "Maximum")},
            label="Visible messages while no instance is in service",
            period=PERIOD,
        ),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.AutoScalingAction(start_from_zero))
    return alarm


def _metric_query(
    query_id: str, namespace: str, name: str, dimensions: list[dict[str, str]], stat: str
) -> autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
    return autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
        id=query_id,
        return_data=False,
        metric_stat=autoscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
            metric=autoscaling.CfnScalingPolicy.MetricProperty(
                namespace=namespace,
                metric_name=name,
                dimensions=[autoscaling.CfnScalingPolicy.MetricDimensionProperty(**d) for d in dimensions],
            ),
            stat=stat,
        ),
    )
