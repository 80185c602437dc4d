"""Rendered manifests of the example deployment, shared by the chart tests."""

from __future__ import annotations

import pytest

from tests.charts.example_values import RUNTIMES, pool_values, runtime_values, scaler_values
from tests.support.charts import CHARTS_DIR, Manifest, render_chart

SD_RUNTIME_CHART = CHARTS_DIR / "sd-runtime"
GPU_NODEPOOL_CHART = CHARTS_DIR / "gpu-nodepool"
KEDA_SQS_SCALER_CHART = CHARTS_DIR / "keda-sqs-scaler"


@pytest.fixture(scope="session")
def runtime_manifests() -> dict[str, list[Manifest]]:
    """``{runtime name: manifests}`` for both example runtimes, each released under its
    own name in its own namespace."""
    return {
        name: render_chart(SD_RUNTIME_CHART, runtime_values(name, rtype), name, name)
        for name, rtype in RUNTIMES.items()
    }


@pytest.fixture(scope="session")
def scaler_manifests() -> dict[str, list[Manifest]]:
    """``{runtime name: manifests}``: the keda-sqs-scaler release of each example runtime,
    in the runtime's namespace."""
    return {
        name: render_chart(KEDA_SQS_SCALER_CHART, scaler_values(name), f"{name}-scaler", name)
        for name in RUNTIMES
    }


@pytest.fixture(scope="session")
def pool_manifests() -> dict[str, list[Manifest]]:
    """``{pool name: manifests}``: one pool dedicated to each example runtime."""
    return {
        name: render_chart(
            GPU_NODEPOOL_CHART, pool_values(name, runtime=name), f"gpu-{name}", "karpenter"
        )
        for name in RUNTIMES
    }
