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


# --- whole configurations, for the upstream releases ---------------------------------------

# The configurations whose plans the upstream charts are rendered for: the example, and one
# taking the other branches (a shared GPU pool, an existing VPC).
VARIANT_CHANGES = {
    "karpenter": {"pool_model": "shared"},
    "cluster": {"vpc": None, "existing_vpc": {
        "vpc_id": "vpc-0123456789abcdef0",
        "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    }},
}
PLAN_NAMES = ("example", "shared-pool-existing-vpc")


@pytest.fixture(scope="session")
def plans(synthesized, tmp_path_factory):
    """``{name: Plan}``: each configuration synthesized once per session (the example's
    plan is the session's ``synthesized`` one)."""
    from constructs_lib.helm_values import deep_merge
    from tests.support.plans import Plan, example_config_data, synth_config

    example = Plan(name=synthesized.stack_dir.name, stack_dir=synthesized.stack_dir,
                   doc=synthesized.doc)
    data = deep_merge(example_config_data(), VARIANT_CHANGES)
    data["cluster"].pop("vpc")
    variant = synth_config(data, tmp_path_factory.mktemp("variant-plan"))
    return dict(zip(PLAN_NAMES, (example, variant), strict=True))
