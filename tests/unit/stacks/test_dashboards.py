"""One CloudWatch dashboard per stack, built from the constructs: each widget shows the metrics it names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template


def _render(part: Any) -> str:
    """A piece of the dashboard body's Fn::Join, with references written as <LogicalId> / <LogicalId.Attr>."""
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<{part['Ref']}>"
    logical_id, attribute = part["Fn::GetAtt"]
    return f"<{logical_id}.{attribute}>"


def widgets_by_title(template: Template) -> dict[str, dict[str, Any]]:
    dashboards = template.find_resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = next(iter(dashboards.values()))["Properties"]["DashboardBody"]
    text = "".join(_render(part) for part in body["Fn::Join"][1])
    return {widget["properties"]["title"]: widget["properties"] for widget in json.loads(text)["widgets"]}


def metric_names(widget: dict[str, Any]) -> list[str]:
    """Metric names of a widget's lines (a line is [namespace, name, dims..., options] or [{expression...}])."""
    names = []
    for line in widget["metrics"]:
        names.append(line[0]["label"] if isinstance(line[0], dict) else line[1])
    return names


@pytest.mark.parametrize("stack", ["SecureQueueStack", "VideoPipelineStack", "WorkerFleetStack"])
def test_every_stack_graphs_queue_depth_in_flight_age_and_dlq(templates: dict[str, Template], stack: str) -> None:
    widgets = widgets_by_title(templates[stack])
    assert metric_names(widgets["Messages visible and in flight"]) == [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    age = widgets["Age of the oldest message (s)"]
    assert metric_names(age) == ["ApproximateAgeOfOldestMessage"]
    assert age["annotations"]["horizontal"][0]["value"] == 900  # the age alarm's threshold
    dlq = widgets["Dead-letter queue"]
    assert metric_names(dlq) == ["ApproximateNumberOfMessagesVisible"]
    assert "DeadLetterQueue" in dlq["metrics"][0][3]


def test_the_pipeline_dashboard_graphs_the_function_and_the_powertools_metrics(templates: dict[str, Template]) -> None:
    widgets = widgets_by_title(templates["VideoPipelineStack"])
    assert metric_names(widgets["Invocations, errors, throttles"]) == ["Invocations", "Errors", "Throttles"]
    assert [line[-1]["stat"] for line in widgets["Duration (ms)"]["metrics"]] == ["p50", "p99", "Maximum"]
    assert metric_names(widgets["Concurrent executions"]) == ["ConcurrentExecutions"]
    processed = widgets["Videos processed, failed (by reason), duplicates skipped"]
    assert metric_names(processed) == ["VideosProcessed", "VideosFailed", "DuplicatesSkipped"]
    assert processed["metrics"][0][:4] == [
        "SqsDecoupling/VideoPipeline",
        "VideosProcessed",
        "service",
        "video-processor",
    ]
    assert "SEARCH(" in processed["metrics"][1][0]["expression"]
    assert metric_names(widgets["Processing seconds per video"]) == ["ProcessingSeconds", "ProcessingSeconds"]


def test_the_fleet_dashboard_draws_instances_and_the_scaling_thresholds(templates: dict[str, Template]) -> None:
    widgets = widgets_by_title(templates["WorkerFleetStack"])
    instances = widgets["Instances: desired and in service"]
    assert metric_names(instances) == ["GroupDesiredCapacity", "GroupInServiceInstances"]
    assert instances["annotations"]["horizontal"] == [{"value": 4, "label": "maximum", "yAxis": "left"}]
    backlog = widgets["Backlog against the scaling thresholds"]
    assert metric_names(backlog) == ["ApproximateNumberOfMessagesVisible"]
    assert [(a["value"], a["label"]) for a in backlog["annotations"]["horizontal"]] == [
        (1, "+1 instance(s)"),
        (20, "+2 instance(s)"),
        (100, "+4 instance(s)"),
    ]


def test_the_fleet_dashboard_shows_what_the_workers_report_about_their_jobs(templates: dict[str, Template]) -> None:
    # GIVEN the metrics the worker publishes (EMF through the CloudWatch agent), dimension service=video-worker
    widgets = widgets_by_title(templates["WorkerFleetStack"])
    done = widgets["Worker jobs: processed and failed (by reason) per minute"]
    # THEN processed is graphed, and failures one line per reason, whichever reasons occur (SEARCH)
    assert done["metrics"][0][:4] == ["SqsDecoupling/VideoPipeline", "VideosProcessed", "service", "video-worker"]
    search = done["metrics"][1][0]["expression"]
    assert search.startswith("SEARCH('{SqsDecoupling/VideoPipeline,reason,service}")
    assert 'MetricName="VideosFailed"' in search and 'service="video-worker"' in search
    assert metric_names(widgets["Worker: seconds per job"]) == ["ProcessingSeconds"] * 3
    assert metric_names(widgets["Worker: jobs in flight"]) == ["JobsInFlight"]
