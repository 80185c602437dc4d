"""charts/sd-runtime: render with the example runtimes, validate strictly, check behaviour."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.charts.conftest import SD_RUNTIME_CHART
from tests.charts.example_values import REGION, RUNTIMES, runtime_values
from tests.support.charts import (
    ChartRenderError,
    Manifest,
    find,
    find_one,
    render_chart,
    validate_strict,
)

AGENT_ENV_NAMES = {
    "SQS_QUEUE_URL",
    "SNS_TOPIC_ARN",
    "S3_BUCKET",
    "TASK_TABLE",
    "RUNTIME_TYPE",
    "RUNTIME_NAME",
    "API_BASE_URL",
    "DYNAMIC_SD_MODEL",
    "AWS_REGION",
}


def render(name: str = "sdruntime", rtype: str = "sdwebui", **overrides: Any) -> list[Manifest]:
    return render_chart(SD_RUNTIME_CHART, runtime_values(name, rtype, **overrides), name, name)


def pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    return find_one(manifests, "Deployment")["spec"]["template"]["spec"]


def container(manifests: list[Manifest], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(manifests)["containers"] if c["name"] == name]
    return found


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_renders_and_validates_strictly(runtime_manifests, runtime):
    manifests = runtime_manifests[runtime]
    validate_strict(manifests)
    kinds = sorted(m["kind"] for m in manifests)
    expected = [
        "Deployment",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    if RUNTIMES[runtime] == "sdwebui":
        expected = sorted([*expected, "ConfigMap"])
    assert kinds == expected


def test_deployment_starts_at_zero_replicas_for_its_autoscaler(runtime_manifests):
    for manifests in runtime_manifests.values():
        assert find_one(manifests, "Deployment")["spec"]["replicas"] == 0
        # The chart no longer carries KEDA objects: charts/keda-sqs-scaler does.
        assert find(manifests, "ScaledObject") == find(manifests, "TriggerAuthentication") == []


def test_without_an_autoscaler_the_deployment_gets_fixed_replicas():
    manifests = render(autoscaled=False, replicas=2)
    validate_strict(manifests)
    assert find_one(manifests, "Deployment")["spec"]["replicas"] == 2


def test_the_chart_has_no_keda_templates():
    templates = sorted(p.name for p in (SD_RUNTIME_CHART / "templates").iterdir())
    assert not any("keda" in name or "scaled" in name for name in templates), templates


def test_model_volumes_pair_one_pv_with_one_claim_per_runtime(runtime_manifests):
    handles, pv_names = set(), set()
    for runtime, manifests in runtime_manifests.items():
        pv = find_one(manifests, "PersistentVolume")
        claim = find_one(manifests, "PersistentVolumeClaim")
        csi = pv["spec"]["csi"]
        handles.add(csi["volumeHandle"])
        pv_names.add(pv["metadata"]["name"])

        assert csi["driver"] == "s3.csi.aws.com"
        assert csi["volumeAttributes"]["bucketName"] == "sd-async-models-123456789012"
        assert csi["volumeAttributes"]["authenticationSource"] == "pod"
        assert csi["volumeAttributes"]["cache"] == "emptyDir"
        assert csi["volumeAttributes"]["cacheEmptyDirSizeLimit"] == "20Gi"
        assert pv["spec"]["storageClassName"] == ""
        assert claim["spec"]["storageClassName"] == ""
        assert claim["spec"]["volumeName"] == pv["metadata"]["name"]
        assert pv["spec"]["claimRef"] == {
            "namespace": claim["metadata"]["namespace"],
            "name": claim["metadata"]["name"],
        }
        assert pv["spec"]["accessModes"] == claim["spec"]["accessModes"] == ["ReadOnlyMany"]
        options = pv["spec"]["mountOptions"]
        assert "read-only" in options
        assert f"region {REGION}" in options
        assert f"prefix {runtime}/" in options
        assert not any(o.startswith(("allow-delete", "allow-overwrite")) for o in options)

        spec = pod_spec(manifests)
        (models,) = [v for v in spec["volumes"] if v["name"] == "models"]
        assert models["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        (mount,) = [
            m for m in container(manifests, "runtime")["volumeMounts"] if m["name"] == "models"
        ]
        assert mount == {"name": "models", "mountPath": "/opt/ml/code/models", "readOnly": True}
    assert len(handles) == len(runtime_manifests) == len(pv_names)


def test_model_volume_without_prefix_mounts_the_whole_bucket_read_only():
    manifests = render(models={"prefix": ""})
    options = find_one(manifests, "PersistentVolume")["spec"]["mountOptions"]
    assert "read-only" in options
    assert not any(o.startswith("prefix") for o in options)


@pytest.mark.parametrize(
    ("runtime", "path"), [("sdruntime", "/sdapi/v1/memory"), ("comfyui", "/system_stats")]
)
def test_runtime_probes_use_the_runtime_endpoint_on_8080(runtime_manifests, runtime, path):
    c = container(runtime_manifests[runtime], "runtime")
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # model load time


def test_runtime_requests_one_gpu(runtime_manifests):
    for manifests in runtime_manifests.values():
        resources = container(manifests, "runtime")["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == 1
        assert "nvidia.com/gpu" not in container(manifests, "queue-agent")["resources"].get(
            "limits", {}
        )


def test_sdwebui_reads_safetensors_without_mmap(runtime_manifests):
    manifests = runtime_manifests["sdruntime"]
    config = find_one(manifests, "ConfigMap")
    assert json.loads(config["data"]["config.json"]) == {"disable_mmap_load_safetensors": True}
    runtime = container(manifests, "runtime")
    assert env_of(runtime)["CONFIG_FILE"] == "/var/lib/sd-runtime/config.json"
    (init,) = pod_spec(manifests)["initContainers"]
    assert init["command"][-1] == "cp /etc/sd-runtime/config.json /var/lib/sd-runtime/config.json"
    assert {m["mountPath"] for m in runtime["volumeMounts"]} >= {"/var/lib/sd-runtime"}


def test_sdwebui_settings_merge_keeps_mmap_disabled():
    manifests = render(
        runtime={
            "webuiSettings": {"sd_checkpoint_cache": 1, "disable_mmap_load_safetensors": False}
        }
    )
    config = json.loads(find_one(manifests, "ConfigMap")["data"]["config.json"])
    assert config == {"disable_mmap_load_safetensors": True, "sd_checkpoint_cache": 1}


def test_comfyui_disables_mmap_and_keeps_extra_arguments():
    manifests = render("comfyui", "comfyui", runtime={"extraArgs": "--highvram"})
    validate_strict(manifests)
    assert env_of(container(manifests, "runtime"))["EXTRA_CMD_ARG"] == "--disable-mmap --highvram"
    assert find(manifests, "ConfigMap") == []
    assert "initContainers" not in pod_spec(manifests)


def test_sdwebui_static_model_and_extra_arguments():
    manifests = render(
        runtime={"sdModelCheckpoint": "v1-5-pruned-emaonly.safetensors", "extraArgs": "--xformers"}
    )
    env = env_of(container(manifests, "runtime"))
    assert env["SD_MODEL_CHECKPOINT"] == "v1-5-pruned-emaonly.safetensors"
    assert env["EXTRA_CMD_ARG"] == "--xformers"
    assert env["API_ONLY"] == "true"


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_default_images_are_the_reference_guidance_images(runtime_manifests, runtime):
    rtype = RUNTIMES[runtime]
    image = container(runtime_manifests[runtime], "runtime")["image"]
    assert image == f"public.ecr.aws/bingjiao/sd-on-eks/{rtype}:latest"
    assert container(runtime_manifests[runtime], "queue-agent")["image"] == (
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/sd-async/queue-agent:0.1.0"
    )


def test_images_can_be_overridden_and_pinned_by_digest():
    digest = "sha256:" + "a" * 64
    manifests = render(
        runtime={"image": {"repository": "example.com/webui", "digest": digest}},
        agent={"image": {"tag": "0.2.0"}},
    )
    assert container(manifests, "runtime")["image"] == f"example.com/webui@{digest}"
    assert container(manifests, "queue-agent")["image"].endswith("/sd-async/queue-agent:0.2.0")


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_agent_environment_follows_the_architecture_contract(runtime_manifests, runtime):
    env = env_of(container(runtime_manifests[runtime], "queue-agent"))
    assert AGENT_ENV_NAMES <= set(env)
    assert (
        env["SQS_QUEUE_URL"]
        == f"https://sqs.{REGION}.amazonaws.com/123456789012/sd-async-{runtime}"
    )
    assert env["SNS_TOPIC_ARN"] == f"arn:aws:sns:{REGION}:123456789012:sd-async-results"
    assert env["S3_BUCKET"] == "sd-async-output-123456789012"
    assert env["TASK_TABLE"] == "sd-async-tasks"
    assert env["RUNTIME_TYPE"] == RUNTIMES[runtime]
    assert env["RUNTIME_NAME"] == runtime
    assert env["API_BASE_URL"] == "http://127.0.0.1:8080"
    assert env["DYNAMIC_SD_MODEL"] == "false"
    assert env["AWS_REGION"] == REGION
    assert env["AGENT_HEALTH_PORT"] == "8081"
    assert env["AGENT_TASK_TIMEOUT_SECONDS"] == env["AGENT_SHUTDOWN_GRACE_SECONDS"] == "600"
    assert env["AGENT_POD_ANNOTATION"] == "true"
    assert env["TASK_TTL_DAYS"] == "30"
    assert "AWS_ENDPOINT_URL" not in env
    downward = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container(runtime_manifests[runtime], "queue-agent")["env"]
        if "valueFrom" in e
    }
    assert downward == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


def test_only_the_agent_gets_an_api_token_to_annotate_its_pod(runtime_manifests):
    manifests = runtime_manifests["sdruntime"]
    spec = pod_spec(manifests)
    assert spec["automountServiceAccountToken"] is False
    assert find_one(manifests, "ServiceAccount")["automountServiceAccountToken"] is False
    api_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    agent_mounts = {m["mountPath"]: m for m in container(manifests, "queue-agent")["volumeMounts"]}
    assert agent_mounts[api_dir]["readOnly"] is True
    runtime_mounts = {m["mountPath"] for m in container(manifests, "runtime")["volumeMounts"]}
    assert api_dir not in runtime_mounts
    (volume,) = [v for v in spec["volumes"] if v["name"] == agent_mounts[api_dir]["name"]]
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"

    role = find_one(manifests, "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]
    binding = find_one(manifests, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sdruntime-runtime", "namespace": "sdruntime"}
    ]


def test_pod_annotation_can_be_turned_off():
    manifests = render(agent={"podAnnotation": {"enabled": False}})
    validate_strict(manifests)
    assert find(manifests, "Role") == find(manifests, "RoleBinding") == []
    agent = container(manifests, "queue-agent")
    assert env_of(agent)["AGENT_POD_ANNOTATION"] == "false"
    assert [m["name"] for m in agent["volumeMounts"]] == ["agent-tmp"]
    assert "POD_NAME" not in env_of(agent)


def test_task_and_shutdown_budgets_follow_max_task_seconds():
    manifests = render(maxTaskSeconds=1800, terminationGracePeriodSeconds=1900)
    env = env_of(container(manifests, "queue-agent"))
    assert env["AGENT_TASK_TIMEOUT_SECONDS"] == env["AGENT_SHUTDOWN_GRACE_SECONDS"] == "1800"
    assert pod_spec(manifests)["terminationGracePeriodSeconds"] == 1900


def test_agent_settings_pass_through_and_optional_variables():
    manifests = render(
        agent={"env": {"AGENT_MAX_ATTEMPTS": 3, "AGENT_VISIBILITY_TIMEOUT_SECONDS": "120"}},
        results={"table": ""},
        runtime={"dynamicModel": True},
        aws={"endpointUrl": "http://127.0.0.1:5000"},
    )
    validate_strict(manifests)
    env = env_of(container(manifests, "queue-agent"))
    assert env["AGENT_MAX_ATTEMPTS"] == "3"
    assert env["AGENT_VISIBILITY_TIMEOUT_SECONDS"] == "120"
    assert "TASK_TABLE" not in env
    assert env["DYNAMIC_SD_MODEL"] == "true"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env_of(container(manifests, "runtime"))["DYNAMIC_SD_MODEL"] == "true"


@pytest.mark.parametrize("port", [8081, 9090])
def test_agent_probes_use_its_health_server(port):
    manifests = render(agent={"healthPort": port})
    agent = container(manifests, "queue-agent")
    assert agent["ports"] == [{"name": "agent-health", "containerPort": port, "protocol": "TCP"}]
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "agent-health"}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "agent-health"}
    assert env_of(agent)["AGENT_HEALTH_PORT"] == str(port)
    script = container(manifests, "runtime")["lifecycle"]["preStop"]["exec"]["command"][2]
    assert f"http://127.0.0.1:{port}/idle" in script


def test_agent_runs_non_root_with_a_read_only_root_filesystem(runtime_manifests):
    for manifests in runtime_manifests.values():
        agent = container(manifests, "queue-agent")
        ctx = agent["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["runAsUser"] > 0
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "agent-tmp", "mountPath": "/tmp"} in agent["volumeMounts"]
        (tmp,) = [v for v in pod_spec(manifests)["volumes"] if v["name"] == "agent-tmp"]
        assert "emptyDir" in tmp


def test_service_account_is_created_with_the_configured_name(runtime_manifests):
    for runtime, manifests in runtime_manifests.items():
        account = find_one(manifests, "ServiceAccount")
        assert account["metadata"] == {
            **account["metadata"],
            "name": f"{runtime}-runtime",
            "namespace": runtime,
        }
        assert pod_spec(manifests)["serviceAccountName"] == f"{runtime}-runtime"


def test_pods_tolerate_the_gpu_and_runtime_taints_and_need_their_pool(runtime_manifests):
    for runtime, manifests in runtime_manifests.items():
        spec = pod_spec(manifests)
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
            "tolerations"
        ]
        assert {
            "key": "sd.runtime",
            "operator": "Equal",
            "value": runtime,
            "effect": "NoSchedule",
        } in spec["tolerations"]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {"matchExpressions": [{"key": "sd.pool", "operator": "In", "values": [runtime]}]}
        ]


def test_pool_node_selector_and_tolerations_replace_the_defaults():
    tolerations = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "sd.pool", "operator": "Equal", "value": "shared", "effect": "NoSchedule"},
    ]
    manifests = render(
        nodePool={
            "name": "shared",
            "nodeSelector": {"sd.pool": "shared", "karpenter.sh/capacity-type": "spot"},
            "tolerations": tolerations,
        },
        extraTolerations=[{"key": "example.com/maintenance", "operator": "Exists"}],
    )
    validate_strict(manifests)
    spec = pod_spec(manifests)
    assert spec["tolerations"] == [
        *tolerations,
        {"key": "example.com/maintenance", "operator": "Exists"},
    ]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                {"key": "sd.pool", "operator": "In", "values": ["shared"]},
            ]
        }
    ]


def test_shared_pool_drops_the_runtime_toleration():
    manifests = render(nodePool={"name": "shared", "dedicated": False})
    tolerations = pod_spec(manifests)["tolerations"]
    assert [t["key"] for t in tolerations] == ["nvidia.com/gpu"]


def test_grace_period_covers_the_longest_task(runtime_manifests):
    spec = pod_spec(runtime_manifests["sdruntime"])
    assert spec["terminationGracePeriodSeconds"] == 900
    assert spec["terminationGracePeriodSeconds"] >= 600 + 30
    script = container(runtime_manifests["sdruntime"], "runtime")["lifecycle"]["preStop"]["exec"][
        "command"
    ]
    assert script[:2] == ["python3", "-c"]
    assert "deadline = time.monotonic() + 870" in script[2]
    assert "lifecycle" not in container(runtime_manifests["sdruntime"], "queue-agent")


def test_pdb_selects_the_runtime_pods(runtime_manifests):
    manifests = runtime_manifests["comfyui"]
    pdb = find_one(manifests, "PodDisruptionBudget")["spec"]
    deployment = find_one(manifests, "Deployment")["spec"]
    assert pdb["selector"] == deployment["selector"]
    assert pdb["maxUnavailable"] == 1
    labels = deployment["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in pdb["selector"]["matchLabels"].items())


# --------------------------------------------------------------------------------------
# The preStop hook itself, run against a local stand-in for the agent's health server
# --------------------------------------------------------------------------------------


class _AgentHealth(http.server.BaseHTTPRequestHandler):
    busy_requests = 0  # how many requests answer 503 (busy) before /idle says 200
    requests = 0
    missing = False  # no /idle (404); the agent exits after answering exit_after requests
    exit_after = 0
    exited: threading.Event
    server: http.server.ThreadingHTTPServer

    def do_GET(self):
        cls = type(self)
        cls.requests += 1
        if cls.missing:
            status = 404
        else:
            status = 503 if cls.requests <= cls.busy_requests else 200
        self.send_response(status)
        self.end_headers()
        if cls.missing and cls.requests == cls.exit_after:
            threading.Thread(target=cls.exit, daemon=True).start()

    @classmethod
    def exit(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()
        cls.exited.set()

    def log_message(self, *args):
        pass


@pytest.fixture
def agent_health() -> Iterator[tuple[int, type[_AgentHealth]]]:
    handler = type("Handler", (_AgentHealth,), {"busy_requests": 0, "requests": 0,
                                                 "exited": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _pre_stop_script(port: int) -> str:
    manifests = render(agent={"healthPort": port})
    return container(manifests, "runtime")["lifecycle"]["preStop"]["exec"]["command"][2]


def test_pre_stop_waits_while_the_agent_is_busy(agent_health):
    port, handler = agent_health
    handler.busy_requests = 2
    subprocess.run([sys.executable, "-c", _pre_stop_script(port)], check=True, timeout=120)
    # asked until /idle said 200, then returned at once (neither earlier nor at its deadline)
    assert handler.requests == 3


def test_pre_stop_returns_at_once_when_the_agent_is_idle(agent_health):
    port, handler = agent_health
    subprocess.run([sys.executable, "-c", _pre_stop_script(port)], check=True, timeout=60)
    assert handler.requests == 1


def test_pre_stop_without_an_idle_endpoint_waits_for_the_agent_to_exit(agent_health):
    port, handler = agent_health
    handler.missing = True  # an agent without /idle answers 404: wait until it exits
    handler.exit_after = 2
    subprocess.run([sys.executable, "-c", _pre_stop_script(port)], check=True, timeout=120)
    assert handler.exited.is_set()  # returned only once the agent was gone,
    assert handler.requests >= 2  # not at the first 404


def test_pre_stop_returns_when_the_agent_has_exited():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    # The script's own deadline is the grace period (870 s): returning within the timeout
    # means it did not wait it out.
    result = subprocess.run(
        [sys.executable, "-c", _pre_stop_script(closed_port)], check=False, timeout=120
    )
    assert result.returncode == 0


# --------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("runtime", "name"), "name"),
        (("runtime", "type"), "type"),
        (("agent", "image"), "image"),
        (("queue", "url"), "url"),
        (("results", "topicArn"), "topicArn"),
        (("results", "bucket"), "bucket"),
        (("aws", "region"), "region"),
        (("models", "bucket"), "bucket"),
        (("serviceAccount", "name"), "name"),
        (("nodePool", "name"), "name"),
    ],
)
def test_missing_required_values_fail_rendering(path, message):
    values = runtime_values("sdruntime", "sdwebui")
    parent = values
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(ChartRenderError, match=message) as info:
        render_chart(SD_RUNTIME_CHART, values, "sdruntime", "sdruntime")
    assert "schema" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"terminationGracePeriodSeconds": 300},
            r"terminationGracePeriodSeconds \(300\) must be >= maxTaskSeconds",
        ),
        ({"maxTaskSeconds": 3600}, "must be >= maxTaskSeconds"),
        ({"runtime": {"type": "invokeai"}}, "type"),
        ({"runtime": {"name": "Bad_Name"}}, "name"),
        ({"agent": {"env": {"LOG_LEVEL": "debug"}}}, "LOG_LEVEL"),
        ({"agent": {"env": {"AGENT_HEALTH_PORT": "9000"}}}, "AGENT_HEALTH_PORT"),
        ({"agent": {"env": {"AGENT_TASK_TIMEOUT_SECONDS": "60"}}}, "AGENT_TASK_TIMEOUT_SECONDS"),
        ({"agent": {"env": {"AGENT_POD_ANNOTATION": "false"}}}, "AGENT_POD_ANNOTATION"),
        ({"agent": {"healthPort": 8080}}, "healthPort"),
        ({"agent": {"securityContext": {"runAsNonRoot": False}}}, "runAsNonRoot"),
        (
            {"agent": {"securityContext": {"readOnlyRootFilesystem": False}}},
            "readOnlyRootFilesystem",
        ),
        ({"models": {"prefix": "models"}}, "prefix"),
        ({"models": {"prefix": "/models/"}}, "prefix"),
        ({"models": {"extraMountOptions": ["allow-delete"]}}, "extraMountOptions"),
        ({"queue": {"url": "sd-async-sdruntime"}}, "url"),
        ({"scaling": {"enabled": True}}, "scaling"),
        ({"results": {"taskTtlDays": 0}}, "taskTtlDays"),
        ({"nodePool": {"tolerations": [{"key": "a", "operator": "Sometimes"}]}}, "operator"),
        ({"replica": 1}, "replica"),
    ],
)
def test_invalid_values_fail_rendering(overrides, message):
    with pytest.raises(ChartRenderError, match=message):
        render(**overrides)


def test_comfyui_refuses_sdwebui_model_settings():
    with pytest.raises(ChartRenderError, match="sdwebui runtimes only"):
        render("comfyui", "comfyui", runtime={"sdModelCheckpoint": "model.safetensors"})
