"""What the simulator and the cost model read from a synthesized cloud assembly (cdk.out), without aws_cdk.

A template that lacks something the simulation needs fails with ``TemplateError`` naming the stack, the resource
and what is missing, so a changed stack is noticed instead of silently simulated wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.scaling import metric_math
from tools.scaling.policy import (
    SIMPLE_SCALING,
    STEP_SCALING,
    Alarm,
    StepAdjustment,
    StepPolicy,
    TargetTracking,
    evaluate_step_policy,
)

FLEET_STACK = "WorkerFleetStack"
PIPELINE_STACK = "VideoPipelineStack"

# CloudWatch metrics the simulator produces, by (namespace, metric name).
SIGNALS = {
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): "visible",
    ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible"): "in_flight",
    ("AWS/SQS", "ApproximateAgeOfOldestMessage"): "oldest_age",
    ("AWS/AutoScaling", "GroupInServiceInstances"): "in_service",
}
# The worker's environment in the launch template's user data (sqs_decoupling/worker_fleet/worker_fleet.py writes it).
_WORKER_CONCURRENCY = re.compile(r"WORKER_CONCURRENCY=(\d+)")


DEFAULT_RETENTION_SECONDS = 4 * 86_400  # SQS's own default MessageRetentionPeriod


def _retention(queue: dict[str, Any]) -> int:
    return int(queue.get("MessageRetentionPeriod", DEFAULT_RETENTION_SECONDS))


class TemplateError(ValueError):
    """The cloud assembly lacks what the simulation needs."""


Resources = dict[str, dict[str, Any]]


def load_template(cdk_out: Path, stack: str) -> dict[str, Any]:
    """The template of ``stack`` in the cloud assembly ``cdk_out`` (found through manifest.json)."""
    manifest = cdk_out / "manifest.json"
    if not manifest.is_file():
        raise TemplateError(f"{cdk_out} is not a cloud assembly (no manifest.json); run `make synth` or pass --cdk-out")
    artifacts = json.loads(manifest.read_text()).get("artifacts", {})
    for name, artifact in artifacts.items():
        if artifact.get("type") == "aws:cloudformation:stack" and stack in (name, artifact.get("displayName")):
            return dict(json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text()))
    raise TemplateError(f"{cdk_out} has no stack {stack!r}; stacks: {sorted(artifacts)}")


def of_type(resources: Resources, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in resources.items():
        if resource["Type"] == resource_type:
            yield logical_id, resource.get("Properties", {})


# A datapoint's value under each statistic. The simulator samples every second; SQS and Auto Scaling publish one
# datapoint per minute. Maximum / Minimum / Average are over the minute's per-second samples, so a backlog that
# appears and clears within the minute shows in its Maximum. Sum and SampleCount: the services send about one
# sample per metric and minute, so Sum is modelled as that one sample (the end-of-minute value).
STATISTICS = ("Maximum", "Minimum", "Average", "Sum", "SampleCount")
Signals = dict[str, Any]  # signal -> a plain value, or {statistic: value} for one published datapoint


@dataclass(frozen=True)
class AlarmMetric:
    """An alarm's metric: one metric, or metric math over several; evaluated on the simulator's signals."""

    expression: str | None
    queries: dict[str, str]  # query id (or "" for a single metric) -> signal name
    statistics: dict[str, str] = field(default_factory=dict)  # query id -> statistic (default Maximum)

    def value(self, signals: Signals) -> float | None:
        values: dict[str, float | None] = {}
        for query, signal in self.queries.items():
            sample = signals[signal]
            values[query] = sample[self.statistics.get(query, "Maximum")] if isinstance(sample, dict) else sample
        if self.expression is None:
            return values[""]
        return metric_math.evaluate(self.expression, values)


def _signal(where: str, namespace: str, name: str) -> str:
    if (namespace, name) not in SIGNALS:
        raise TemplateError(f"{where}: the simulator has no model of metric {namespace}/{name}")
    return SIGNALS[(namespace, name)]


def _statistic(where: str, statistic: Any) -> str:
    if statistic not in STATISTICS:
        raise TemplateError(f"{where}: the simulator has no model of statistic {statistic!r} (it has {STATISTICS})")
    return str(statistic)


def _alarm_metric(where: str, props: dict[str, Any]) -> AlarmMetric:
    if "MetricName" in props:
        signal = _signal(where, props["Namespace"], props["MetricName"])
        return AlarmMetric(None, {"": signal}, {"": _statistic(where, props.get("Statistic", "Average"))})
    return _math_metric(where, props.get("Metrics", []))


def _math_metric(where: str, queries: list[dict[str, Any]]) -> AlarmMetric:
    expression, signals, statistics = None, {}, {}
    for query in queries:
        if "Expression" in query and query.get("ReturnData", True):
            expression = query["Expression"]
        elif "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            signals[query["Id"]] = _signal(where, metric["Namespace"], metric["MetricName"])
            statistics[query["Id"]] = _statistic(where, query["MetricStat"].get("Stat", "Average"))
    if expression is None:
        raise TemplateError(f"{where}: no metric, and no metric math expression with ReturnData")
    return AlarmMetric(expression, signals, statistics)


@dataclass(frozen=True)
class StepRule:
    """A CloudWatch alarm and the step scaling policy it invokes."""

    alarm: Alarm
    metric: AlarmMetric
    policy: StepPolicy


@dataclass(frozen=True)
class TrackingRule:
    policy: TargetTracking
    metric: AlarmMetric


@dataclass(frozen=True)
class WarmPool:
    """An AWS::AutoScaling::WarmPool: instances initialized ahead (user data run), kept Stopped, Running or
    Hibernated, that the group draws on when it scales out. Its size is MaxGroupPreparedCapacity (default: the
    group's maximum) minus the desired capacity, and at least MinSize."""

    min_size: int = 0
    pool_state: str = "Stopped"
    max_prepared: int | None = None

    def size(self, desired: int, group_max: int) -> int:
        prepared = group_max if self.max_prepared is None or self.max_prepared < 0 else self.max_prepared
        return max(self.min_size, prepared - desired)


@dataclass(frozen=True)
class Fleet:
    """WorkerFleetStack as the simulator needs it."""

    min_size: int
    max_size: int
    desired: int
    instance_type: str
    root_volume_gb: int
    worker_concurrency: int
    drain_timeout_seconds: int
    default_warmup_seconds: int
    visibility_timeout_seconds: int
    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    step_rules: tuple[StepRule, ...] = ()
    tracking: tuple[TrackingRule, ...] = ()
    warm_pool: WarmPool | None = None
    max_receive_count: int | None = None  # the jobs queue's RedrivePolicy (None: no dead-letter queue)

    @property
    def mode(self) -> str:
        """``backlog`` when a target tracking policy scales the group, else ``step``."""
        return "backlog" if self.tracking else "step"

    def explain_backlog(self, visible: int, desired: int = 0) -> str:
        """What the scaling rules in ALARM would do about ``visible`` messages (one evaluation, the demo's line)."""
        signals: dict[str, float | None] = {"visible": visible, "in_flight": 0, "in_service": desired, "oldest_age": 0}
        lines = []
        for rule in self.step_rules:
            value = rule.metric.value(signals)
            if value is None or not rule.alarm.breaches(value):
                continue
            decision = evaluate_step_policy(
                rule.policy, rule.alarm, value, desired=desired, minimum=self.min_size, maximum=self.max_size
            )
            lines.append(decision.explain(rule.policy, rule.alarm, value, desired, self.max_size))
        for tracking in self.tracking:
            lines.append(
                f"{tracking.policy.name}: target {tracking.policy.target:g} per in-service instance "
                f"({tracking.policy.expression}); from zero the step rule above starts the first instance"
            )
        return "; ".join(lines) or f"{visible} visible: no scaling alarm breaches"

    def rule(self, policy_name: str) -> StepRule:
        for rule in self.step_rules:
            if policy_name in rule.policy.name:
                return rule
        raise TemplateError(
            f"no step scaling policy named like {policy_name!r}: {[r.policy.name for r in self.step_rules]}"
        )


def _policy(logical_id: str, props: dict[str, Any]) -> StepPolicy:
    """A StepScaling policy, or a SimpleScaling one as a single step that contains every breach."""
    policy_type = props.get("PolicyType", SIMPLE_SCALING)
    if policy_type == SIMPLE_SCALING:
        steps: tuple[StepAdjustment, ...] = (StepAdjustment(None, None, int(props["ScalingAdjustment"])),)
    else:
        steps = tuple(
            StepAdjustment(
                lower=s.get("MetricIntervalLowerBound"),
                upper=s.get("MetricIntervalUpperBound"),
                adjustment=int(s["ScalingAdjustment"]),
            )
            for s in props.get("StepAdjustments", [])
        )
    return StepPolicy(
        name=logical_id,
        adjustment_type=props.get("AdjustmentType", "ChangeInCapacity"),
        steps=steps,
        min_adjustment_magnitude=props.get("MinAdjustmentMagnitude"),
        warmup_seconds=int(props.get("EstimatedInstanceWarmup", 0)),
        policy_type=policy_type,
        cooldown_seconds=int(props["Cooldown"]) if "Cooldown" in props else None,
    )


def _step_rules(resources: Resources) -> tuple[StepRule, ...]:
    """Every alarm that invokes a step or simple scaling policy, with that policy."""
    policies = {
        lid: _policy(lid, props)
        for lid, props in of_type(resources, "AWS::AutoScaling::ScalingPolicy")
        if props.get("PolicyType", SIMPLE_SCALING) in (STEP_SCALING, SIMPLE_SCALING)
    }
    rules = []
    for lid, props in of_type(resources, "AWS::CloudWatch::Alarm"):
        for action in props.get("AlarmActions", []):
            target = action.get("Ref") if isinstance(action, dict) else None
            if target in policies:
                alarm = Alarm(
                    name=lid,
                    threshold=float(props["Threshold"]),
                    comparison=props["ComparisonOperator"],
                    evaluation_periods=int(props["EvaluationPeriods"]),
                    datapoints_to_alarm=props.get("DatapointsToAlarm"),
                    treat_missing_data=props.get("TreatMissingData", "missing"),
                )
                rules.append(StepRule(alarm, _alarm_metric(f"alarm {lid}", props), policies[target]))
    return tuple(rules)


def _tracking(resources: Resources) -> tuple[TrackingRule, ...]:
    rules = []
    for lid, props in of_type(resources, "AWS::AutoScaling::ScalingPolicy"):
        if props.get("PolicyType") != "TargetTrackingScaling":
            continue
        config = props["TargetTrackingConfiguration"]
        custom = config.get("CustomizedMetricSpecification")
        if custom is None:
            raise TemplateError(f"policy {lid}: only customized-metric target tracking is simulated")
        metric = (
            _math_metric(f"policy {lid}", custom["Metrics"])
            if "Metrics" in custom
            else _alarm_metric(f"policy {lid}", custom)
        )
        policy = TargetTracking(
            lid, float(config["TargetValue"]), metric.expression or "", int(props.get("EstimatedInstanceWarmup", 0))
        )
        rules.append(TrackingRule(policy, metric))
    return tuple(rules)


def _only(resources: Resources, resource_type: str, stack: str) -> tuple[str, dict[str, Any]]:
    found = list(of_type(resources, resource_type))
    if len(found) != 1:
        raise TemplateError(f"{stack}: expected one {resource_type}, found {len(found)}")
    return found[0]


def _user_data_text(value: Any) -> str:
    """The literal parts of a (Fn::Base64 / Fn::Join) user data value."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_user_data_text(v) for v in value)
    if isinstance(value, dict):
        return "".join(_user_data_text(v) for v in value.values())
    return ""


def read_fleet(cdk_out: Path) -> Fleet:
    """WorkerFleetStack's group, launch template, lifecycle hook, jobs queue and scaling rules."""
    try:
        return fleet_from_template(load_template(cdk_out, FLEET_STACK))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, TemplateError):
            raise
        raise TemplateError(f"{cdk_out}/{FLEET_STACK}: a resource lacks {error} that the simulation reads") from None


def fleet_from_template(template: dict[str, Any]) -> Fleet:
    """``read_fleet`` for a template already in memory (e.g. ``Template.to_json()`` in a test)."""
    resources: Resources = template["Resources"]
    _, group = _only(resources, "AWS::AutoScaling::AutoScalingGroup", FLEET_STACK)
    _, launch = _only(resources, "AWS::EC2::LaunchTemplate", FLEET_STACK)
    data = launch["LaunchTemplateData"]
    concurrency = _WORKER_CONCURRENCY.search(_user_data_text(data.get("UserData")))
    if concurrency is None:
        raise TemplateError(f"{FLEET_STACK}: the launch template's user data sets no WORKER_CONCURRENCY")
    hooks = [p for _, p in of_type(resources, "AWS::AutoScaling::LifecycleHook")]
    jobs_queue = [p for _, p in of_type(resources, "AWS::SQS::Queue") if "RedrivePolicy" in p]
    pools = [p for _, p in of_type(resources, "AWS::AutoScaling::WarmPool")]
    return Fleet(
        min_size=int(group["MinSize"]),
        max_size=int(group["MaxSize"]),
        desired=int(group.get("DesiredCapacity", group["MinSize"])),
        instance_type=str(data["InstanceType"]),
        root_volume_gb=sum(int(m["Ebs"]["VolumeSize"]) for m in data.get("BlockDeviceMappings", []) if "Ebs" in m),
        worker_concurrency=int(concurrency.group(1)),
        drain_timeout_seconds=max((int(h.get("HeartbeatTimeout", 3600)) for h in hooks), default=0),
        default_warmup_seconds=int(group.get("DefaultInstanceWarmup", 0)),
        visibility_timeout_seconds=int(jobs_queue[0].get("VisibilityTimeout", 30)) if jobs_queue else 30,
        retention_seconds=_retention(jobs_queue[0] if jobs_queue else {}),
        step_rules=_step_rules(resources),
        tracking=_tracking(resources),
        warm_pool=(
            WarmPool(
                min_size=int(pools[0].get("MinSize", 0)),
                pool_state=str(pools[0].get("PoolState", "Stopped")),
                max_prepared=pools[0].get("MaxGroupPreparedCapacity"),
            )
            if pools
            else None
        ),
        max_receive_count=_max_receives(jobs_queue[0] if jobs_queue else {}),
    )


def _max_receives(queue: dict[str, Any]) -> int | None:
    redrive = queue.get("RedrivePolicy") or {}
    return int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None


@dataclass(frozen=True)
class LambdaConsumer:
    """VideoPipelineStack's function and its SQS event source mapping."""

    memory_mb: int
    timeout_seconds: int
    architecture: str
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int | None
    provisioned_pollers: tuple[int, int] | None = None
    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    visibility_timeout_seconds: int = 30
    max_receive_count: int | None = None


def read_lambda(cdk_out: Path) -> LambdaConsumer:
    try:
        return lambda_from_template(load_template(cdk_out, PIPELINE_STACK))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, TemplateError):
            raise
        raise TemplateError(f"{cdk_out}/{PIPELINE_STACK}: a resource lacks {error} that the simulation reads") from None


def lambda_from_template(template: dict[str, Any]) -> LambdaConsumer:
    resources: Resources = template["Resources"]
    _, mapping = _only(resources, "AWS::Lambda::EventSourceMapping", PIPELINE_STACK)
    function_id = mapping["FunctionName"]["Ref"]
    function = resources[function_id]["Properties"]
    provisioned = mapping.get("ProvisionedPollerConfig")
    source = mapping.get("EventSourceArn", {}).get("Fn::GetAtt", [""])[0]
    queue = resources.get(source, {}).get("Properties", {})
    return LambdaConsumer(
        memory_mb=int(function.get("MemorySize", 128)),
        timeout_seconds=int(function.get("Timeout", 3)),
        architecture=(function.get("Architectures") or ["x86_64"])[0],
        batch_size=int(mapping.get("BatchSize", 10)),
        batching_window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
        max_concurrency=mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
        provisioned_pollers=(
            (int(provisioned.get("MinimumPollers", 2)), int(provisioned.get("MaximumPollers", 200)))
            if provisioned
            else None
        ),
        retention_seconds=_retention(queue),
        visibility_timeout_seconds=int(queue.get("VisibilityTimeout", 30)),
        max_receive_count=_max_receives(queue),
    )


@dataclass
class IdleResources:
    """What a stack costs while nothing runs, counted from its template."""

    alarms: int = 0
    dashboards: int = 0
    kms_keys: int = 0
    interface_endpoint_azs: int = 0
    lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)  # bucket logical id -> its rules

    def add(self, resources: Resources) -> None:
        self.alarms += sum(1 for _ in of_type(resources, "AWS::CloudWatch::Alarm"))
        self.dashboards += sum(1 for _ in of_type(resources, "AWS::CloudWatch::Dashboard"))
        self.kms_keys += sum(1 for _ in of_type(resources, "AWS::KMS::Key"))
        for _, props in of_type(resources, "AWS::EC2::VPCEndpoint"):
            if props.get("VpcEndpointType") == "Interface":
                self.interface_endpoint_azs += len(props.get("SubnetIds", []))
        for lid, props in of_type(resources, "AWS::S3::Bucket"):
            self.lifecycle[lid] = {"Rules": props.get("LifecycleConfiguration", {}).get("Rules", [])}


def read_idle(cdk_out: Path, stack: str) -> IdleResources:
    idle = IdleResources()
    idle.add(load_template(cdk_out, stack)["Resources"])
    return idle
