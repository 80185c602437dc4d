"""charts/keda-sqs-scaler: render for the example runtimes, validate strictly, check behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.conftest import KEDA_SQS_SCALER_CHART
from tests.charts.example_values import ACCOUNT, CLUSTER, REGION, RUNTIMES, scaler_values
from tests.support.charts import (
    ChartRenderError,
    Manifest,
    find_one,
    render_chart,
    validate_strict,
)


def render(name: str = "sdruntime", **overrides: Any) -> list[Manifest]:
    return render_chart(
        KEDA_SQS_SCALER_CHART, scaler_values(name, **overrides), f"{name}-scaler", name
    )


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_renders_and_validates_strictly(upstream_crds, scaler_manifests, runtime):
    manifests = scaler_manifests[runtime]
    validate_strict(manifests, crds=upstream_crds)
    assert sorted((m["kind"], m["metadata"]["name"]) for m in manifests) == [
        ("ScaledObject", f"{runtime}-scaler"),
        ("TriggerAuthentication", f"{runtime}-scaler-aws"),
    ]
    for manifest in manifests:
        assert manifest["metadata"]["namespace"] == runtime
        assert manifest["metadata"]["labels"]["sd.runtime"] == runtime


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_scaled_object_scales_the_named_deployment_to_zero_on_its_queue(
    scaler_manifests, runtime
):
    manifests = scaler_manifests[runtime]
    scaled = find_one(manifests, "ScaledObject")["spec"]
    auth = find_one(manifests, "TriggerAuthentication")

    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": runtime}
    assert scaled["minReplicaCount"] == 0
    assert scaled["maxReplicaCount"] == 4
    assert scaled["pollingInterval"] == 15
    assert scaled["cooldownPeriod"] == 620
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert scaled["fallback"] == {
        "failureThreshold": 3,
        "replicas": 1,
        "behavior": "currentReplicasIfHigher",
    }

    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert "scaleOnInFlight" not in trigger  # a trigger field would be ignored by KEDA
    assert trigger["metadata"] == {
        "queueURL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{CLUSTER}-{runtime}",
        "awsRegion": REGION,
        "queueLength": "1",
        "activationQueueLength": "0",
        "scaleOnInFlight": "true",
    }
    # KEDA reads trigger metadata as strings only.
    assert all(isinstance(v, str) for v in trigger["metadata"].values())


def test_trigger_authentication_uses_keda_pod_identity(scaler_manifests):
    auth = find_one(scaler_manifests["sdruntime"], "TriggerAuthentication")
    assert auth["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "keda"}}


def test_trigger_authentication_with_role_arn_drops_identity_owner(upstream_crds):
    role = f"arn:aws:iam::{ACCOUNT}:role/{CLUSTER}-keda-sdruntime"
    manifests = render(podIdentity={"roleArn": role})
    validate_strict(manifests, crds=upstream_crds)
    auth = find_one(manifests, "TriggerAuthentication")
    assert auth["spec"]["podIdentity"] == {"provider": "aws", "roleArn": role}


def test_settings_reach_the_scaled_object(upstream_crds):
    manifests = render(
        maxReplicaCount=8,
        messagesPerReplica=12,
        activationQueueLength=2,
        pollingIntervalSeconds=30,
        cooldownPeriodSeconds=900,
        scaleDownStabilizationSeconds=60,
        fallback={"replicas": 2, "failureThreshold": 5, "behavior": "static"},
    )
    validate_strict(manifests, crds=upstream_crds)
    spec = find_one(manifests, "ScaledObject")["spec"]
    assert (spec["maxReplicaCount"], spec["pollingInterval"], spec["cooldownPeriod"]) == (
        8,
        30,
        900,
    )
    assert spec["fallback"] == {"failureThreshold": 5, "replicas": 2, "behavior": "static"}
    metadata = spec["triggers"][0]["metadata"]
    assert (metadata["queueLength"], metadata["activationQueueLength"]) == ("12", "2")
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60


def test_fallback_can_be_turned_off(upstream_crds):
    manifests = render(fallback={"enabled": False})
    validate_strict(manifests, crds=upstream_crds)
    assert "fallback" not in find_one(manifests, "ScaledObject")["spec"]


def test_no_runtime_label_without_a_runtime_name():
    manifests = render(runtimeName="")
    for manifest in manifests:
        assert "sd.runtime" not in manifest["metadata"]["labels"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("scaleTargetRef", "name"), "name"),
        (("queue", "url"), "url"),
        (("aws", "region"), "region"),
    ],
)
def test_missing_required_values_fail_rendering(path, message):
    values = scaler_values("sdruntime")
    del values[path[0]][path[1]]
    with pytest.raises(ChartRenderError, match=message) as info:
        render_chart(KEDA_SQS_SCALER_CHART, values, "sdruntime-scaler", "sdruntime")
    assert "schema" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"minReplicaCount": 5}, r"minReplicaCount \(5\) must be <= maxReplicaCount \(4\)"),
        ({"fallback": {"replicas": 9}}, r"fallback.replicas \(9\) must be <= maxReplicaCount"),
        ({"messagesPerReplica": 0}, "messagesPerReplica"),
        ({"maxReplicaCount": 0}, "maxReplicaCount"),
        ({"scaleDownStabilizationSeconds": 7200}, "scaleDownStabilizationSeconds"),
        ({"fallback": {"behavior": "sometimes"}}, "behavior"),
        ({"podIdentity": {"identityOwner": "operator"}}, "identityOwner"),
        ({"queue": {"url": "sd-async-sdruntime"}}, "url"),
        ({"scaleOnInFlight": True}, "scaleOnInFlight"),
    ],
)
def test_invalid_values_fail_rendering(overrides, message):
    with pytest.raises(ChartRenderError, match=message):
        render(**overrides)


def test_fallback_replicas_above_max_are_allowed_when_fallback_is_off(upstream_crds):
    manifests = render(fallback={"enabled": False, "replicas": 9})
    validate_strict(manifests, crds=upstream_crds)
