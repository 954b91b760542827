"""Scaling an Auto Scaling group on the depth of an SQS queue.

The CloudWatch metric is ApproximateNumberOfMessagesVisible (the GetQueueAttributes attribute is called
ApproximateNumberOfMessages), 1-minute period, statistic Maximum: any backlog seen during the minute counts.

``step_scaling`` (the seed's picture, the default): alarms on the backlog add instances in steps; one more alarm
sets the group to zero only when nothing is visible AND nothing is in flight (Visible + NotVisible == 0) for
several minutes, so work in progress is never the reason an instance goes away.

``backlog_target_tracking`` (AWS's recommendation for variable loads): keep Visible / InServiceInstances at a
target (acceptable latency / seconds per job), plus a rule that starts the first instance from zero, because
the ratio has no value while there are no instances.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sqs as sqs

from sqs_decoupling.common.upstream_warnings import without_step_scaling_cooldown_warning

PERIOD = Duration.minutes(1)


def _visible(queue: sqs.IQueue) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")


def _in_flight(queue: sqs.IQueue) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_not_visible(period=PERIOD, statistic="Maximum")


def step_scaling(
    group: autoscaling.AutoScalingGroup,
    queue: sqs.IQueue,
    *,
    thresholds: Sequence[int],
    adjustments: Sequence[int],
    empty_minutes: int = 10,
) -> tuple[autoscaling.StepScalingPolicy, autoscaling.StepScalingPolicy]:
    """Add ``adjustments[i]`` instances while at least ``thresholds[i]`` messages are visible; go to zero after
    ``empty_minutes`` minutes with nothing visible and nothing in flight. Returns (scale out, scale in).
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
    return scale_out, scale_in


def backlog_target_tracking(
    group: autoscaling.AutoScalingGroup, queue: sqs.IQueue, *, backlog_per_instance: int
) -> tuple[autoscaling.CfnScalingPolicy, cloudwatch.Alarm]:
    """Target tracking on Visible / GroupInServiceInstances, plus a scale-out-from-zero rule.

    The L2 TargetTrackingScalingPolicy accepts only plain metrics (aws-cdk#20659), hence CfnScalingPolicy, whose
    metric-math specification, written out as L1 properties, makes this function longer than 60 lines.
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
    start_from_zero = autoscaling.StepScalingAction(
        group,
        "StartFromZero",
        auto_scaling_group=group,
        adjustment_type=autoscaling.AdjustmentType.EXACT_CAPACITY,
    )
    start_from_zero.add_adjustment(adjustment=1, lower_bound=0)
    in_service = cloudwatch.Metric(
        namespace="AWS/AutoScaling",
        metric_name="GroupInServiceInstances",
        dimensions_map={"AutoScalingGroupName": group.auto_scaling_group_name},
        period=PERIOD,
        statistic="Maximum",
    )
    alarm = cloudwatch.Alarm(
        group,
        "BacklogWithNoInstances",
        alarm_description="Messages are waiting and no instance is in service: start one.",
        metric=cloudwatch.MathExpression(
            expression="IF(inservice == 0, visible, 0)",
            using_metrics={"visible": _visible(queue), "inservice": in_service},
            label="Visible messages while no instance is in service",
            period=PERIOD,
        ),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.AutoScalingAction(start_from_zero))
    return policy, alarm


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
