"""The local charts rendered with exactly the values the synthesized helm_release
resources carry (Terraform references replaced by realistic placeholders), validated
strictly against the KEDA CRDs and the Kubernetes 1.35 schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runtime.placeholders import ACCOUNT, REGION, resolve, resolve_all
from tests.support.charts import Manifest, find_one, render_chart, validate_strict

RUNTIMES = {"sdruntime": "sdwebui", "comfyui": "comfyui"}


def _release(runtime_stack, path_suffix: str) -> dict[str, Any]:
    return runtime_stack.resource("helm_release", path_suffix)


def _render(runtime_stack, path_suffix: str) -> tuple[dict[str, Any], list[Manifest]]:
    release = _release(runtime_stack, path_suffix)
    (document,) = release["values"]
    values = yaml.safe_load(resolve(runtime_stack.doc, document))
    chart = runtime_stack.stack_dir / release["chart"]
    assert chart.is_dir(), f"{release['chart']} is not in the synthesized stack"
    manifests = render_chart(chart, values, release["name"], release["namespace"])
    return values, manifests


@pytest.fixture(scope="module")
def rendered(runtime_stack) -> dict[str, dict[str, tuple[dict[str, Any], list[Manifest]]]]:
    out = {}
    for runtime in RUNTIMES:
        out[runtime] = {
            "runtime": _render(runtime_stack, f"Runtime-{runtime}/Release"),
            "scaler": _render(runtime_stack, f"Keda/Runtime-{runtime}/Release"),
        }
    return out


def pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    return find_one(manifests, "Deployment")["spec"]["template"]["spec"]


def container(manifests: list[Manifest], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(manifests)["containers"] if c["name"] == name]
    return found


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_both_releases_render_and_validate_strictly(upstream_crds, rendered, runtime):
    for part in ("runtime", "scaler"):
        _, manifests = rendered[runtime][part]
        validate_strict(manifests, crds=upstream_crds)
    kinds = sorted(m["kind"] for m in rendered[runtime]["runtime"][1])
    expected = ["Deployment", "PersistentVolume", "PersistentVolumeClaim",
                "PodDisruptionBudget", "Role", "RoleBinding", "ServiceAccount"]
    if RUNTIMES[runtime] == "sdwebui":
        expected = sorted([*expected, "ConfigMap"])
    assert kinds == expected
    assert sorted(m["kind"] for m in rendered[runtime]["scaler"][1]) == [
        "ScaledObject", "TriggerAuthentication"]


def test_chart_paths_are_relative_assets_in_the_stack(runtime_stack):
    for release in runtime_stack.resources("helm_release").values():
        chart = release["chart"]
        if chart.startswith("assets/"):
            assert not Path(chart).is_absolute()
            assert (runtime_stack.stack_dir / chart / "Chart.yaml").is_file()
    charts = {r["chart"] for r in runtime_stack.resources("helm_release").values()}
    # one asset per local chart, shared by the releases of every runtime
    assert len({c for c in charts if c.startswith("assets/Chart-SdRuntime/")}) == 1
    assert len({c for c in charts if c.startswith("assets/Chart-KedaSqsScaler/")}) == 1


@pytest.mark.parametrize(("runtime", "queue_length"), [("sdruntime", "12"), ("comfyui", "7")])
def test_scaled_object_targets_the_runtime_deployment_with_in_flight_messages(
    rendered, runtime, queue_length, example_config
):
    _, runtime_manifests = rendered[runtime]["runtime"]
    _, scaler_manifests = rendered[runtime]["scaler"]
    deployment = find_one(runtime_manifests, "Deployment")
    scaled = find_one(scaler_manifests, "ScaledObject")
    spec = scaled["spec"]

    assert scaled["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": deployment["metadata"]["name"]}
    assert deployment["spec"]["replicas"] == 0  # KEDA owns the count
    assert spec["minReplicaCount"] == 0
    assert spec["maxReplicaCount"] == example_config.runtime(runtime).max_replicas
    assert spec["pollingInterval"] == example_config.keda.polling_interval_seconds
    task = example_config.runtime(runtime).task_timeout_seconds
    assert spec["cooldownPeriod"] == task + 20
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300}
    assert spec["fallback"]["replicas"] == 1
    assert spec["fallback"]["failureThreshold"] == 3

    (trigger,) = spec["triggers"]
    assert "scaleOnInFlight" not in trigger
    metadata = trigger["metadata"]
    assert metadata["scaleOnInFlight"] == "true"
    assert metadata["queueLength"] == queue_length  # floor(60 / seconds_per_image)
    assert metadata["activationQueueLength"] == "0"
    assert metadata["queueURL"] == (
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/sdaas-{runtime}-tasks")
    agent = container(runtime_manifests, "queue-agent")
    agent_env = {e["name"]: e.get("value") for e in agent["env"]}
    assert metadata["queueURL"] == agent_env["SQS_QUEUE_URL"]
    assert metadata["awsRegion"] == agent_env["AWS_REGION"] == REGION

    auth = find_one(scaler_manifests, "TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert auth["spec"]["podIdentity"] == {"provider": "aws", "identityOwner": "keda"}


def test_model_volumes_pair_one_pv_with_one_claim_for_each_runtime(rendered, runtime_stack):
    bucket = resolve(runtime_stack.doc, runtime_stack.resource("aws_s3_bucket",
                                                               "ModelBucket/Bucket")["bucket"])
    pv_names, handles, claims = set(), set(), set()
    for runtime, parts in rendered.items():
        _, manifests = parts["runtime"]
        pv = find_one(manifests, "PersistentVolume")
        claim = find_one(manifests, "PersistentVolumeClaim")
        pv_names.add(pv["metadata"]["name"])
        handles.add(pv["spec"]["csi"]["volumeHandle"])
        claims.add((claim["metadata"]["namespace"], claim["metadata"]["name"]))
        assert claim["spec"]["volumeName"] == pv["metadata"]["name"]
        assert pv["spec"]["claimRef"] == {"namespace": claim["metadata"]["namespace"],
                                          "name": claim["metadata"]["name"]}
        assert pv["spec"]["storageClassName"] == claim["spec"]["storageClassName"] == ""
        assert pv["spec"]["accessModes"] == claim["spec"]["accessModes"] == ["ReadOnlyMany"]
        assert pv["spec"]["csi"]["volumeAttributes"]["bucketName"] == bucket
        assert f"prefix {runtime}/" in pv["spec"]["mountOptions"]
        assert "read-only" in pv["spec"]["mountOptions"]
        (volume,) = [v for v in pod_spec(manifests)["volumes"] if v["name"] == "models"]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert len(pv_names) == len(handles) == len(claims) == len(RUNTIMES)


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_probes_grace_and_pool_placement(rendered, runtime, example_config):
    _, manifests = rendered[runtime]["runtime"]
    spec = pod_spec(manifests)
    task = example_config.runtime(runtime).task_timeout_seconds
    assert spec["terminationGracePeriodSeconds"] == task + 30 + 60
    runtime_container = container(manifests, "runtime")
    path = "/sdapi/v1/memory" if RUNTIMES[runtime] == "sdwebui" else "/system_stats"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert runtime_container[probe]["httpGet"] == {"path": path, "port": "http"}
    startup = runtime_container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    pre_stop = runtime_container["lifecycle"]["preStop"]["exec"]["command"][2]
    assert f"deadline = time.monotonic() + {task + 60}" in pre_stop
    agent = container(manifests, "queue-agent")
    assert agent["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert agent["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert agent["securityContext"]["runAsNonRoot"] is True
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in agent["env"]}
    assert env["AGENT_TASK_TIMEOUT_SECONDS"] == str(task)
    assert env["AGENT_HEARTBEAT_SECONDS"] == "30"
    assert env["AGENT_VISIBILITY_TIMEOUT_SECONDS"] == str(
        example_config.queue.visibility_timeout_seconds)
    assert env["RUNTIME_NAME"] == runtime
    assert env["RUNTIME_TYPE"] == RUNTIMES[runtime]
    assert agent["image"] == (
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sdaas-queue-agent:"
        f"{example_config.runtime(runtime).agent_image_tag}")
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "sd.runtime", "operator": "Equal", "value": runtime, "effect": "NoSchedule"},
    ]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "sd.pool", "operator": "In", "values": [runtime]}]}]
    pdb = find_one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == find_one(manifests, "Deployment")["spec"]["selector"]


def test_sdwebui_loads_its_first_configured_model(rendered, example_config):
    _, manifests = rendered["sdruntime"]["runtime"]
    env = {e["name"]: e.get("value") for e in container(manifests, "runtime")["env"]}
    assert env["SD_MODEL_CHECKPOINT"] == example_config.runtime("sdruntime").models[0]
    assert env["DYNAMIC_SD_MODEL"] == "false"


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_pod_identity_association_names_the_chart_service_account(
    rendered, runtime_stack, runtime
):
    _, manifests = rendered[runtime]["runtime"]
    association = resolve_all(runtime_stack.doc, runtime_stack.resource(
        "aws_eks_pod_identity_association", f"Runtime-{runtime}/PodIdentity/Association"))
    account = find_one(manifests, "ServiceAccount")
    assert association["namespace"] == account["metadata"]["namespace"] == f"sdaas-{runtime}"
    assert association["service_account"] == account["metadata"]["name"]
    assert pod_spec(manifests)["serviceAccountName"] == account["metadata"]["name"]
    assert association["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/sdaas-{runtime}-runtime"
