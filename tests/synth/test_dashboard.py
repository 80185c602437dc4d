"""The service dashboard and the alarms name only metrics that exist.

Every metric the example's dashboard and alarms reference is checked against what emits
it: the queue agent's embedded metrics are read from the agent's code (every
``emit_metrics`` call), AWS service metrics against the documented lists below (sources
cited), and every dimension value against the resource it names in the same configuration.
The body also follows the dashboard body structure and is accepted by ``PutDashboard``
(moto's server).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from agent.config import METRICS_NAMESPACE
from sdaas.dashboard import DashboardSource, RuntimeSource, dashboard_body

REPO = Path(__file__).resolve().parents[2]
_REF = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}$")

# AWS metrics the stack may reference: namespace -> metric -> allowed dimension key sets.
AWS_METRICS: dict[str, dict[str, list[set[str]]]] = {
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    "AWS/SQS": {name: [{"QueueName"}] for name in (
        "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage")},
    # https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
    "AWS/Lambda": {name: [{"FunctionName"}] for name in ("Errors", "Throttles")},
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html
    "AWS/ApiGateway": {name: [{"ApiName", "Stage"}] for name in (
        "Count", "4XXError", "5XXError", "Latency")},
    # The EC2 usage metrics Service Quotas names for "All G and VT Spot Instance Requests"
    # and "Running On-Demand G and VT instances" (aws service-quotas get-service-quota
    # --service-code ec2 --quota-code L-3819A6DF / L-DB2E81BA: UsageMetric).
    "AWS/Usage": {"ResourceCount": [{"Service", "Type", "Resource", "Class"}]},
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-enhanced-EKS.html
    "ContainerInsights": {
        "namespace_number_of_running_pods": [{"ClusterName"}, {"ClusterName", "Namespace"}],
        **{name: [{"ClusterName"}, {"ClusterName", "InstanceId", "NodeName"}] for name in (
            "node_gpu_limit", "node_gpu_usage_total", "node_gpu_utilization",
            "node_gpu_memory_utilization")},
    },
}
USAGE_CLASSES = {"G/Spot", "G/OnDemand"}
# Which resource attribute each dimension must name.
DIMENSION_TARGETS = {
    "QueueName": ("aws_sqs_queue", "name"),
    "FunctionName": ("aws_lambda_function", "function_name"),
    "ApiName": ("aws_api_gateway_rest_api", "name"),
    "Stage": ("aws_api_gateway_stage", "stage_name"),
    "ClusterName": ("aws_eks_cluster", "name"),
}
STATS = re.compile(r"^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?)$")


def agent_metrics() -> dict[str, set[str]]:
    """Metric name -> dimension keys, from every ``emit_metrics(ns, dims, metrics)`` call in
    the agent's code (the dictionaries are literals at each call)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(
                    node.func, "attr", getattr(node.func, "id", None)) == "emit_metrics"):
                continue
            dims, metrics = node.args[1], node.args[2]
            assert isinstance(dims, ast.Dict) and isinstance(metrics, ast.Dict), (
                f"{path}:{node.lineno}: emit_metrics needs literal dictionaries")
            keys = {k.value for k in dims.keys}
            for key in metrics.keys:
                found[key.value] = keys
    return found


def metric_references(body: dict) -> list[tuple[str, str, dict[str, str], str]]:
    """(namespace, metric, dimensions, widget title) of every metric in the body."""
    out = []
    for widget in body["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            parts = [p for p in entry if not isinstance(p, dict)]
            namespace, name, pairs = parts[0], parts[1], parts[2:]
            out.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)),
                        widget["properties"]["title"]))
    return out


@pytest.fixture(scope="module")
def body(synthesized) -> dict:
    (dashboard,) = synthesized.resources("aws_cloudwatch_dashboard").values()
    assert dashboard["dashboard_name"] == "sdaas"
    return json.loads(dashboard["dashboard_body"])


def _alarm_references(synthesized) -> list[tuple[str, str, dict[str, str], str]]:
    return [(a["namespace"], a["metric_name"], a["dimensions"], a["alarm_name"])
            for a in synthesized.resources("aws_cloudwatch_metric_alarm").values()]


def _resolve(synthesized, value: str) -> tuple[str, str, Any]:
    """``${type.name.attr}`` -> (type, attr, the attribute's value in the configuration)."""
    match = _REF.match(value)
    assert match, f"{value!r} is neither a reference nor expected to be literal"
    rtype, name, attr = match.groups()
    return rtype, attr, synthesized.resources(rtype)[name].get(attr)


def test_every_referenced_metric_is_emitted(synthesized, body, example_config):
    emitted = agent_metrics()
    assert {"TasksCompleted", "TasksFailed", "TasksRetried", "QueueWait", "Inference",
            "EndToEnd", "ColdStartToRuntimeReady", "ColdStartToFirstTask"} <= set(emitted)
    runtimes = {r.name for r in example_config.runtimes}
    runtime_namespaces = set(synthesized.doc["output"]["runtime_namespaces"]["value"].values())
    references = metric_references(body) + _alarm_references(synthesized)
    assert len(references) > 40
    for namespace, name, dims, where in references:
        if namespace == METRICS_NAMESPACE:
            assert name in emitted, f"{where}: the agent never emits {name}"
            assert set(dims) == emitted[name], f"{where}: {name} is emitted with {emitted[name]}"
            assert dims["Runtime"] in runtimes, where
            continue
        assert name in AWS_METRICS.get(namespace, {}), f"{where}: {namespace} {name} unknown"
        assert set(dims) in AWS_METRICS[namespace][name], f"{where}: {name} by {set(dims)}"
        for key, value in dims.items():
            if key in DIMENSION_TARGETS:
                rtype, attr, resolved = _resolve(synthesized, value)
                assert (rtype, attr) == DIMENSION_TARGETS[key], f"{where}: {key}={value}"
                assert isinstance(resolved, str) and resolved, f"{where}: {key} unresolved"
            elif key == "Namespace":
                assert value in runtime_namespaces, where
            elif key == "Class":
                assert value in USAGE_CLASSES, where
            else:
                assert (key, value) in {("Service", "EC2"), ("Type", "Resource"),
                                        ("Resource", "vCPU")}, where


def test_every_runtime_and_the_front_door_are_on_the_dashboard(synthesized, body,
                                                                example_config):
    seen = {(ns, name, tuple(sorted(d.items()))) for ns, name, d, _ in metric_references(body)}
    names = {(ns, name) for ns, name, _ in seen}
    for runtime in example_config.runtimes:
        dims = (("Runtime", runtime.name),)
        for metric in ("TasksCompleted", "TasksFailed", "TasksRetried", "QueueWait",
                       "Inference", "EndToEnd", "ColdStartToRuntimeReady",
                       "ColdStartToFirstTask"):
            assert (METRICS_NAMESPACE, metric, dims) in seen, (runtime.name, metric)
        # The queue and its dead-letter queue, both on the dashboard. The dead-letter intake
        # is not: a message waits there only while the consumer fails, which its errors
        # (alarm and Lambda widget) show.
        queue = [v for k, v in synthesized.resources("aws_sqs_queue").items()
                 if f"Runtime-{runtime.name}_" in k and "DeadLetterIntake" not in k]
        assert len(queue) == 2
        for sqs in queue:
            assert any(ns == "AWS/SQS" and any(v.endswith(".name}") and sqs["name"] in
                       _resolve(synthesized, v)[2] for _, v in d) for ns, _, d in seen)
    for metric in ("node_gpu_utilization", "node_gpu_memory_utilization", "node_gpu_limit",
                   "namespace_number_of_running_pods"):
        assert ("ContainerInsights", metric) in names
    for metric in ("4XXError", "5XXError", "Latency"):
        assert ("AWS/ApiGateway", metric) in names
    functions = {_resolve(synthesized, dict(d)["FunctionName"])[2]
                 for ns, name, d in seen if ns == "AWS/Lambda"}
    assert functions == {"sdaas-ingest", "sdaas-status", "sdaas-cancel", "sdaas-dead-letters"}
    alarm_widget = next(w for w in body["widgets"] if w["type"] == "alarm")
    assert len(alarm_widget["properties"]["alarms"]) == len(
        synthesized.resources("aws_cloudwatch_metric_alarm"))


def test_body_follows_the_dashboard_body_structure(body, example_config):
    """https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html"""
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert widget["type"] in ("metric", "text", "alarm")
        x, y, width, height = (widget[k] for k in ("x", "y", "width", "height"))
        assert 0 <= x and x + width <= 24 and 1 <= width and 1 <= height <= 1000
        area = {(cx, cy) for cx in range(x, x + width) for cy in range(y, y + height)}
        assert not area & cells, f"widgets overlap at {sorted(area & cells)[:1]}"
        cells |= area
        properties = widget["properties"]
        if widget["type"] == "metric":
            assert properties["region"] == example_config.region
            assert properties["period"] % 60 == 0
            assert STATS.match(properties["stat"])
            for entry in properties["metrics"]:
                options = [p for p in entry if isinstance(p, dict)]
                assert len(options) <= 1 and (not options or entry[-1] is options[0])
                strings = entry[:-1] if options else entry
                assert all(isinstance(p, str) for p in strings)
                assert len(strings) % 2 == 0 and len(strings) >= 2
                if options and "stat" in options[0]:
                    assert STATS.match(options[0]["stat"])
        elif widget["type"] == "text":
            assert properties["markdown"]


def test_put_dashboard_accepts_the_body(synthesized, emulator, body):
    """The synthesized body with every reference replaced by its value, as Terraform
    sends it at apply."""
    def value(text: str) -> str:
        match = _REF.match(text)
        if match is None:
            return text
        rtype, name, attr = match.groups()
        resource = synthesized.resources(rtype)[name]
        if attr == "arn" and rtype == "aws_cloudwatch_metric_alarm":
            return f"arn:aws:cloudwatch:us-west-2:123456789012:alarm:{resource['alarm_name']}"
        return resource[attr]

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return value(node) if isinstance(node, str) else node

    resolved = json.dumps(resolve(body))
    assert "${" not in resolved
    cloudwatch = boto3.client("cloudwatch", endpoint_url=emulator.endpoint,
                              region_name="us-west-2")
    answer = cloudwatch.put_dashboard(DashboardName="sdaas", DashboardBody=resolved)
    assert answer.get("DashboardValidationMessages", []) == []
    stored = cloudwatch.get_dashboard(DashboardName="sdaas")
    assert json.loads(stored["DashboardBody"]) == json.loads(resolved)


def test_without_container_insights_only_aws_metrics_remain():
    source = DashboardSource(
        region="us-west-2", api_name="api", stage_name="prod",
        function_names={"ingest": "sdaas-ingest"},
        runtimes=[RuntimeSource(name="sdruntime", queue_name="q", dlq_name="dlq",
                                namespace="sdruntime")])
    body = dashboard_body(source)
    namespaces = {ns for ns, *_ in metric_references(body)}
    assert namespaces == {"AWS/SQS", "AWS/Usage", "AWS/ApiGateway", "AWS/Lambda"}
    notes = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    assert any("not shipped" in note for note in notes)
