"""The service's CloudWatch dashboard: one per stack, composed from the constructs' attributes.

What an operator sees, top to bottom:

* the alarms of ``ServerlessIngress`` and their state;
* per runtime: its queue (queued, in flight, dead-lettered), the oldest queued task against
  its alarm threshold, tasks completed / failed / retried per minute, inference and
  end-to-end time (p50, p95), queue wait next to the cold start (how long tasks waited for
  capacity, and how long a new pod took to serve), and its running pods;
* GPU capacity: GPUs in the cluster and in use, G/VT vCPUs running in the account (spot and
  on-demand), GPU utilisation and memory;
* the front door: API requests, 4xx, 5xx and latency, and the Lambdas' errors and throttles.

Metric sources: SQS, Lambda, API Gateway and EC2 usage metrics are AWS's own; the queue
agent's embedded metrics (``SdAsync/QueueAgent``, dimension ``Runtime``) and Container
Insights (``ContainerInsights``: pods, GPUs) arrive only when the cluster ships container
logs (``GpuEksCluster`` with amazon-cloudwatch-observability), so without it those widgets
are left out. :func:`dashboard_body` is pure (names may be Terraform references);
:func:`service_dashboard` creates the ``aws_cloudwatch_dashboard``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.config import METRICS_NAMESPACE as AGENT_NAMESPACE
from constructs_lib._cdktf import Construct
from constructs_lib._providers import aws

PERIOD_SECONDS = 60
GRID_WIDTH = 24  # CloudWatch dashboards are 24 units wide
CONTAINER_INSIGHTS = "ContainerInsights"
_HEIGHTS = {"text": 1, "alarm": 3, "metric": 6}


@dataclass(frozen=True, kw_only=True)
class RuntimeSource:
    """One runtime's names: its agent dimension, queues and Kubernetes namespace."""

    name: str
    queue_name: str
    dlq_name: str
    namespace: str


@dataclass(frozen=True, kw_only=True)
class DashboardSource:
    """Everything the dashboard names, as the constructs expose it."""

    region: str
    api_name: str
    stage_name: str
    function_names: Mapping[str, str]  # label -> Lambda function name
    runtimes: Sequence[RuntimeSource]
    cluster_name: str | None = None  # None: no Container Insights, no agent metrics
    alarm_arns: Sequence[str] = ()
    oldest_task_alarm_seconds: int | None = None
    agent_namespace: str = AGENT_NAMESPACE


def metric(namespace: str, name: str, dimensions: Mapping[str, str], **options: Any) -> list:
    """One entry of a widget's ``metrics`` array: namespace, name, dimension pairs, options."""
    entry: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        entry += [key, value]
    if options:
        entry.append(dict(options))
    return entry


def _graph(title: str, metrics: list[list], *, stat: str, region: str, unit: str = "",
           annotations: list[dict] | None = None) -> dict:
    properties: dict[str, Any] = {
        "title": title, "view": "timeSeries", "stacked": False, "region": region,
        "period": PERIOD_SECONDS, "stat": stat, "metrics": metrics,
        "yAxis": {"left": {"min": 0, **({"label": unit} if unit else {})}},
    }
    if annotations:
        properties["annotations"] = {"horizontal": annotations}
    return {"type": "metric", "properties": properties}


def _text(markdown: str) -> dict:
    return {"type": "text", "properties": {"markdown": markdown}}


def _runtime_rows(source: DashboardSource, rt: RuntimeSource) -> list[list[dict]]:
    region = source.region
    queue, dlq = {"QueueName": rt.queue_name}, {"QueueName": rt.dlq_name}
    oldest_alarm = ([{"label": "oldest-task alarm", "value": source.oldest_task_alarm_seconds}]
                    if source.oldest_task_alarm_seconds else None)
    first = [
        _graph(f"{rt.name}: queue (messages)", [
            metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, label="queued"),
            metric("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue,
                   label="in flight"),
            metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq,
                   label="dead-lettered"),
        ], stat="Maximum", region=region),
        _graph(f"{rt.name}: oldest queued task (s)", [
            metric("AWS/SQS", "ApproximateAgeOfOldestMessage", queue, label="oldest task"),
        ], stat="Maximum", region=region, unit="seconds", annotations=oldest_alarm),
    ]
    if source.cluster_name is None:
        return [first]
    agent, dims = source.agent_namespace, {"Runtime": rt.name}
    first.append(_graph(f"{rt.name}: tasks per minute", [
        metric(agent, "TasksCompleted", dims, label="completed"),
        metric(agent, "TasksFailed", dims, label="failed"),
        metric(agent, "TasksRetried", dims, label="retried"),
    ], stat="Sum", region=region))
    second = [
        _graph(f"{rt.name}: time per task (s)", [
            metric(agent, "Inference", dims, stat="p50", label="inference p50"),
            metric(agent, "Inference", dims, stat="p95", label="inference p95"),
            metric(agent, "EndToEnd", dims, stat="p50", label="end to end p50"),
            metric(agent, "EndToEnd", dims, stat="p95", label="end to end p95"),
        ], stat="p50", region=region, unit="seconds"),
        _graph(f"{rt.name}: waiting for capacity (s)", [
            metric(agent, "QueueWait", dims, stat="p50", label="queue wait p50"),
            metric(agent, "QueueWait", dims, stat="p95", label="queue wait p95"),
            metric(agent, "ColdStartToRuntimeReady", dims, stat="Maximum",
                   label="cold start: pod created to runtime ready"),
            metric(agent, "ColdStartToFirstTask", dims, stat="Maximum",
                   label="cold start: pod created to first task"),
        ], stat="Maximum", region=region, unit="seconds"),
        _graph(f"{rt.name}: running pods", [
            metric(CONTAINER_INSIGHTS, "namespace_number_of_running_pods",
                   {"ClusterName": source.cluster_name, "Namespace": rt.namespace},
                   label="running pods"),
        ], stat="Maximum", region=region),
    ]
    return [first, second]


def _capacity_row(source: DashboardSource) -> list[dict]:
    region = source.region
    usage = {"Service": "EC2", "Type": "Resource", "Resource": "vCPU"}
    row = [_graph("G/VT vCPUs running in this account and region", [
        metric("AWS/Usage", "ResourceCount", {**usage, "Class": "G/Spot"}, label="spot"),
        metric("AWS/Usage", "ResourceCount", {**usage, "Class": "G/OnDemand"},
               label="on-demand"),
    ], stat="Maximum", region=region)]
    if source.cluster_name is None:
        return row
    cluster = {"ClusterName": source.cluster_name}
    return [
        _graph("GPUs in the cluster", [
            metric(CONTAINER_INSIGHTS, "node_gpu_limit", cluster, label="GPUs"),
            metric(CONTAINER_INSIGHTS, "node_gpu_usage_total", cluster, label="in use"),
        ], stat="Sum", region=region),
        *row,
        _graph("GPU utilisation and memory (%)", [
            metric(CONTAINER_INSIGHTS, "node_gpu_utilization", cluster, label="utilisation"),
            metric(CONTAINER_INSIGHTS, "node_gpu_memory_utilization", cluster,
                   label="memory"),
        ], stat="Average", region=region, unit="percent"),
    ]


def _front_door_row(source: DashboardSource) -> list[dict]:
    region = source.region
    api = {"ApiName": source.api_name, "Stage": source.stage_name}
    lambdas = []
    for label, function in source.function_names.items():
        dims = {"FunctionName": function}
        lambdas += [metric("AWS/Lambda", "Errors", dims, label=f"{label} errors"),
                    metric("AWS/Lambda", "Throttles", dims, label=f"{label} throttles")]
    return [
        _graph("API requests", [
            metric("AWS/ApiGateway", "Count", api, label="requests"),
            metric("AWS/ApiGateway", "4XXError", api, label="4xx"),
            metric("AWS/ApiGateway", "5XXError", api, label="5xx"),
        ], stat="Sum", region=region),
        _graph("API latency (ms)", [
            metric("AWS/ApiGateway", "Latency", api, stat="p50", label="p50"),
            metric("AWS/ApiGateway", "Latency", api, stat="p95", label="p95"),
        ], stat="p50", region=region, unit="milliseconds"),
        _graph("Lambda errors and throttles", lambdas, stat="Sum", region=region),
    ]


def _layout(rows: list[list[dict]]) -> list[dict]:
    """Place rows of widgets on the 24-unit grid: equal widths, one row after the other."""
    widgets, y = [], 0
    for row in rows:
        width = GRID_WIDTH // len(row)
        height = max(_HEIGHTS[w["type"]] for w in row)
        for index, widget in enumerate(row):
            widgets.append({**widget, "x": index * width, "y": y, "width": width,
                            "height": height})
        y += height
    return widgets


def dashboard_body(source: DashboardSource) -> dict:
    """The ``DashboardBody`` document (CloudWatch dashboard body structure)."""
    rows: list[list[dict]] = []
    if source.alarm_arns:
        rows.append([{"type": "alarm", "properties": {
            "title": "Alarms", "alarms": list(source.alarm_arns)}}])
    if source.cluster_name is None:
        rows.append([_text(
            "Container logs are not shipped (amazon-cloudwatch-observability is off): the "
            "queue agent's metrics, pods and GPUs are not on this dashboard.")])
    for rt in source.runtimes:
        rows.append([_text(f"## Runtime `{rt.name}`")])
        rows += _runtime_rows(source, rt)
    rows.append([_text("## GPU capacity")])
    rows.append(_capacity_row(source))
    rows.append([_text("## Front door")])
    rows.append(_front_door_row(source))
    return {"widgets": _layout(rows)}


def service_dashboard(scope: Construct, id_: str, *, dashboard_name: str,
                      source: DashboardSource):
    """The ``aws_cloudwatch_dashboard`` of :func:`dashboard_body` (references resolve at
    apply: the body names the resources, not copies of their names)."""
    return aws.cloudwatch_dashboard.CloudwatchDashboard(
        scope, id_, dashboard_name=dashboard_name,
        dashboard_body=json.dumps(dashboard_body(source), sort_keys=True,
                                  separators=(",", ":")),
    )
