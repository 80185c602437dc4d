"""charts/namespace: the Namespace that SdRuntime releases before each runtime chart."""

from __future__ import annotations

import pytest
import yaml

from constructs_lib.assets import CHARTS_DIR
from tests.support.charts import ChartRenderError, find_one, render_chart, validate_strict

CHART = CHARTS_DIR / "namespace"


def test_renders_a_valid_namespace_with_pod_security_labels():
    manifests = render_chart(CHART, {"name": "sdaas-sdruntime",
                                     "labels": {"sd.runtime": "sdruntime"}},
                             "sdruntime-namespace", "default")
    validate_strict(manifests)
    namespace = find_one(manifests, "Namespace", "sdaas-sdruntime")
    assert namespace["metadata"]["labels"] == {
        "sd.runtime": "sdruntime",
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    assert len(manifests) == 1


@pytest.mark.parametrize("values", [
    {},
    {"name": "Not_A_Label"},
    {"name": "ok", "podSecurity": {"enforce": "lenient"}},
    {"name": "ok", "extra": 1},
])
def test_refuses_bad_values(values):
    with pytest.raises(ChartRenderError):
        render_chart(CHART, values, "x-namespace", "default")


def test_the_synthesized_namespace_values_render(synthesized):
    releases = [r for r in synthesized.resources("helm_release").values()
                if r["//"]["metadata"]["path"].endswith("/Namespace")]
    assert len(releases) == 2
    for release in releases:
        (document,) = release["values"]
        manifests = render_chart(CHART, yaml.safe_load(document), release["name"], "default")
        validate_strict(manifests)
        assert find_one(manifests, "Namespace")["metadata"]["name"].startswith("sdaas-")
