"""helm-values/ defaults, chart metadata and the chart READMEs' values tables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.charts.example_values import pool_values, runtime_values, scaler_values
from tests.support.charts import (
    CHARTS_DIR,
    HELM_VALUES_DIR,
    ChartRenderError,
    load_values_file,
    render_chart,
)

CHARTS = ("gpu-nodepool", "keda-sqs-scaler", "sd-runtime")
RELEASES = ("karpenter", "keda", "gpu-nodepool", "keda-sqs-scaler", "sd-runtime")


@pytest.mark.parametrize("release", RELEASES)
def test_each_release_has_a_defaults_file(release):
    values = load_values_file(HELM_VALUES_DIR / f"{release}.yaml")
    assert isinstance(values, dict) and values


@pytest.mark.parametrize("chart", CHARTS)
def test_local_defaults_alone_are_refused_for_want_of_required_values(chart):
    with pytest.raises(ChartRenderError, match="missing propert"):
        render_chart(
            CHARTS_DIR / chart,
            load_values_file(HELM_VALUES_DIR / f"{chart}.yaml"),
            chart,
            "default",
        )


@pytest.mark.parametrize("chart", CHARTS)
def test_defaults_file_only_sets_keys_the_chart_schema_knows(chart):
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text(encoding="utf-8"))

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> Iterator[str]:
        props = _resolve(schema, node).get("properties", {})
        for key, value in values.items():
            assert key in props, f"{path}{key} is not in {chart}/values.schema.json"
            child = _resolve(schema, props[key])
            if (
                isinstance(value, dict)
                and child.get("properties")
                and child.get("additionalProperties") is False
            ):
                yield from walk(value, child, f"{path}{key}.")

    list(walk(load_values_file(HELM_VALUES_DIR / f"{chart}.yaml"), schema, ""))


def test_karpenter_defaults_place_the_controller_on_system_nodes():
    values = load_values_file(HELM_VALUES_DIR / "karpenter.yaml")
    assert values["nodeSelector"]["sd.node-role"] == "system"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in values["tolerations"]
    assert values["replicas"] >= 1
    assert values["serviceAccount"] == {"create": True, "name": "karpenter"}
    assert values["controller"]["resources"]["requests"]
    # Placeholders the KarpenterGpuPool construct fills.
    assert {
        k: values["settings"][k] for k in ("clusterName", "clusterEndpoint", "interruptionQueue")
    } == {
        "clusterName": "",
        "clusterEndpoint": "",
        "interruptionQueue": "",
    }


def test_keda_defaults_place_the_operator_on_system_nodes_with_pod_identity():
    values = load_values_file(HELM_VALUES_DIR / "keda.yaml")
    assert values["nodeSelector"]["sd.node-role"] == "system"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in values["tolerations"]
    assert values["serviceAccount"]["operator"] == {"create": True, "name": "keda-operator"}
    assert values["podIdentity"]["aws"]["irsa"]["enabled"] is False
    for component in ("operator", "metricServer", "webhooks"):
        assert values["resources"][component]["requests"]


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("gpu-nodepool", pool_values("sdruntime", "sdruntime")),
        ("sd-runtime", runtime_values("sdruntime", "sdwebui")),
        ("keda-sqs-scaler", scaler_values("sdruntime")),
    ],
)
def test_helm_lint_is_clean(chart, values):
    report = helm.lint(str(CHARTS_DIR / chart), values, strict=True, namespace="sdruntime")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_metadata(chart):
    with helm.Chart.load(str(CHARTS_DIR / chart)) as loaded:
        assert loaded.name == chart
        assert loaded.metadata["apiVersion"] == "v2"
        assert loaded.schema is not None
        assert loaded.schema["$schema"] == "http://json-schema.org/draft-07/schema#"


# --------------------------------------------------------------------------------------
# README values tables
# --------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target: Any = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _resolve(schema, target)
    return node


def value_paths(schema: dict[str, Any]) -> list[str]:
    """Documented paths: every property, descending into inline closed object schemas
    (an open object such as a securityContext is one row)."""
    paths: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, child in node.get("properties", {}).items():
            if key == "global":
                continue
            path = f"{prefix}{key}"
            if "properties" in child and child.get("additionalProperties") is False:
                walk(child, f"{path}.")
            else:
                paths.append(path)

    walk(schema, "")
    return paths


def documented_paths(readme: Path) -> set[str]:
    """The first cell of each row of the README's values table."""
    rows = set()
    in_table = False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("| name | default | meaning |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            break
        if in_table and line.startswith("| `"):
            rows.add(line.split("`")[1])
    return rows


@pytest.mark.parametrize("chart", CHARTS)
def test_readme_documents_every_value(chart):
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text(encoding="utf-8"))
    documented = documented_paths(CHARTS_DIR / chart / "README.md")
    assert documented, "README has no values table"
    missing = [
        p
        for p in value_paths(schema)
        if not any(d == p or d.startswith(f"{p}.") for d in documented)
    ]
    assert missing == []
    unknown = [
        d
        for d in documented
        if not any(d == p or d.startswith(f"{p}.") for p in value_paths(schema))
    ]
    assert unknown == []
