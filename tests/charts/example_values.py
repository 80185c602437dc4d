"""Realistic generated values for the example deployment's two runtimes, shaped like what
the SdRuntime and KarpenterGpuPool constructs merge into helm-values/<release>.yaml."""

from __future__ import annotations

from typing import Any

from tests.support.charts import HELM_VALUES_DIR, deep_merge, load_values_file

ACCOUNT = "123456789012"
REGION = "us-west-2"
CLUSTER = "sd-async"
RUNTIMES = {"sdruntime": "sdwebui", "comfyui": "comfyui"}
AGENT_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sd-async/queue-agent"


def runtime_generated(name: str, runtime_type: str) -> dict[str, Any]:
    """Values SdRuntime generates for one runtime (everything the chart requires)."""
    return {
        "runtime": {"name": name, "type": runtime_type},
        "agent": {"image": {"repository": AGENT_IMAGE, "tag": "0.1.0"}},
        "queue": {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{CLUSTER}-{name}"},
        "results": {
            "topicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{CLUSTER}-results",
            "bucket": f"{CLUSTER}-output-{ACCOUNT}",
            "table": f"{CLUSTER}-tasks",
        },
        "aws": {"region": REGION},
        "models": {"bucket": f"{CLUSTER}-models-{ACCOUNT}", "prefix": f"{name}/"},
        "serviceAccount": {"name": f"{name}-runtime"},
        "nodePool": {"name": name},
    }


def runtime_values(name: str, runtime_type: str, **overrides: Any) -> dict[str, Any]:
    """helm-values/sd-runtime.yaml deep-merged with the generated values and overrides."""
    merged = deep_merge(
        load_values_file(HELM_VALUES_DIR / "sd-runtime.yaml"), runtime_generated(name, runtime_type)
    )
    return deep_merge(merged, overrides)


def scaler_generated(name: str) -> dict[str, Any]:
    """Values KedaSqsScaler generates for one runtime's keda-sqs-scaler release."""
    return {
        "scaleTargetRef": {"name": name},
        "queue": {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{CLUSTER}-{name}"},
        "aws": {"region": REGION},
        "runtimeName": name,
        "maxReplicaCount": 4,
        "messagesPerReplica": 1,
        "pollingIntervalSeconds": 15,
        "cooldownPeriodSeconds": 620,
        "scaleDownStabilizationSeconds": 300,
    }


def scaler_values(name: str, **overrides: Any) -> dict[str, Any]:
    """helm-values/keda-sqs-scaler.yaml deep-merged with the generated values and overrides."""
    merged = deep_merge(
        load_values_file(HELM_VALUES_DIR / "keda-sqs-scaler.yaml"), scaler_generated(name)
    )
    return deep_merge(merged, overrides)


def pool_generated(pool: str, runtime: str = "") -> dict[str, Any]:
    """Values KarpenterGpuPool generates for one pool."""
    return {
        "poolName": pool,
        "clusterName": CLUSTER,
        "nodeRole": f"{CLUSTER}-karpenter-node",
        "runtime": runtime,
        "tags": {"Project": "sd-async", "CostCenter": "gen-ai"},
    }


def pool_values(pool: str, runtime: str = "", **overrides: Any) -> dict[str, Any]:
    """helm-values/gpu-nodepool.yaml deep-merged with the generated values and overrides."""
    merged = deep_merge(
        load_values_file(HELM_VALUES_DIR / "gpu-nodepool.yaml"), pool_generated(pool, runtime)
    )
    return deep_merge(merged, overrides)
