"""Property assertions on KedaSqsScaler, SdRuntime, ModelBucket and AgentImageRepository
as synthesized for the example configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sdaas.config import EXAMPLE_CONFIG, load_config, parse_config
from tests.runtime import stack as stack_lib
from tests.runtime.placeholders import resolve

RUNTIMES = ("sdruntime", "comfyui")
RUNTIME_GRANTS = ("ReadClaimChecks", "PublishResults", "ReadModels", "UpdateTaskStatus",
                  "WriteOutputs")
# The constructs these tests cover, by their construct path below the stack.


def values_of(stack, path: str) -> dict:
    (document,) = stack.resource("helm_release", path)["values"]
    return yaml.safe_load(resolve(stack.doc, document))


def statements(stack, path: str) -> list[dict]:
    return stack.data("aws_iam_policy_document", path)["statement"]


def queue_arn_ref(stack, runtime: str) -> str:
    return "${" + stack.address("aws_sqs_queue", f"Ingress/Runtime-{runtime}/Queue") + ".arn}"


# --- KEDA ----------------------------------------------------------------------------------


def test_keda_release_is_pinned_and_runs_on_the_system_nodes(runtime_stack, example_config):
    release = runtime_stack.resource("helm_release", "Keda/Release")
    assert release["chart"] == "keda"
    assert release["repository"] == "https://kedacore.github.io/charts"
    assert release["version"] == example_config.keda.chart_version
    assert re.fullmatch(r"2\.20\.\d+", release["version"])
    assert release["namespace"] == "keda" and release["create_namespace"] is True
    values = values_of(runtime_stack, "Keda/Release")
    assert values["nodeSelector"] == {"sd.node-role": "system"}
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in values["tolerations"]
    assert values["serviceAccount"]["operator"] == {"create": True, "name": "keda-operator"}
    assert values["podIdentity"]["aws"]["irsa"]["enabled"] is False
    assert values["crds"]["install"] is True
    association = runtime_stack.address(
        "aws_eks_pod_identity_association", "Keda/OperatorPodIdentity/Association")
    assert association in release["depends_on"]
    ready = {f"{r.terraform_resource_type}.{r.friendly_unique_id}"
             for r in runtime_stack.built.cluster.ready}
    assert ready and set(release["depends_on"]) == {*ready, association}


def test_keda_operator_identity_reads_only_the_runtime_queue_depths(runtime_stack):
    association = runtime_stack.resource(
        "aws_eks_pod_identity_association", "Keda/OperatorPodIdentity/Association")
    role_address = runtime_stack.address("aws_iam_role", "Keda/OperatorRole/Role")
    assert association["namespace"] == "keda"
    assert association["service_account"] == "keda-operator"
    assert association["role_arn"] == "${" + role_address + ".arn}"
    (trust,) = statements(runtime_stack, "Keda/OperatorRole/Trust")
    assert trust["actions"] == ["sts:AssumeRole", "sts:TagSession"]
    assert trust["principals"] == [{"type": "Service", "identifiers": ["pods.eks.amazonaws.com"]}]

    policies = runtime_stack.under("resource", "aws_iam_role_policy", "Keda")
    assert sorted(policies) == sorted(
        f"Keda/OperatorRole/ReadQueueDepth-{r}/Policy" for r in RUNTIMES)
    for runtime in RUNTIMES:
        document = f"Keda/OperatorRole/ReadQueueDepth-{runtime}/Document"
        assert statements(runtime_stack, document) == [
            {"sid": "ReadQueueDepth", "effect": "Allow", "actions": ["sqs:GetQueueAttributes"],
             "resources": [queue_arn_ref(runtime_stack, runtime)]}]
    assert runtime_stack.under("resource", "aws_iam_role_policy_attachment", "Keda") == {}


@pytest.mark.parametrize(("runtime", "messages"), [("sdruntime", 12), ("comfyui", 7)])
def test_scaler_release_targets_the_runtime_deployment(runtime_stack, runtime, messages):
    scaler = runtime_stack.resource("helm_release", f"Keda/Runtime-{runtime}/Release")
    workload = runtime_stack.resource("helm_release", f"Runtime-{runtime}/Release")
    assert scaler["namespace"] == workload["namespace"] == f"sdaas-{runtime}"
    assert scaler["name"] == f"{runtime}-scaler"
    assert scaler["chart"].startswith("assets/Chart-KedaSqsScaler/")
    values = values_of(runtime_stack, f"Keda/Runtime-{runtime}/Release")
    # The sd-runtime chart names its Deployment after the release.
    assert values["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": workload["name"]}
    assert values["messagesPerReplica"] == messages
    assert values["minReplicaCount"] == 0 and values["activationQueueLength"] == 0
    assert values["podIdentity"] == {"identityOwner": "keda"}
    assert {
        runtime_stack.address("helm_release", "Keda/Release"),
        runtime_stack.address("helm_release", f"Runtime-{runtime}/Release"),
        runtime_stack.address("helm_release", f"Runtime-{runtime}/Namespace"),
    } <= set(scaler["depends_on"])


def test_scaling_settings_follow_the_configuration(runtime_stack, example_config):
    scaler = runtime_stack.built.scaler
    for runtime in RUNTIMES:
        spec = example_config.runtime(runtime)
        scaled = scaler.scaled_runtime(runtime)
        assert scaled.max_replicas == spec.max_replicas
        assert scaled.messages_per_replica == int(spec.target_wait_seconds
                                                  // spec.seconds_per_image)
        assert scaled.cooldown_period_seconds == spec.task_timeout_seconds + 20
    with pytest.raises(KeyError, match="sdruntime, comfyui"):
        scaler.scaled_runtime("nope")


# --- SdRuntime -------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtime_role_is_made_only_of_grants(runtime_stack, runtime):
    prefix = f"Runtime-{runtime}/Role"
    policies = runtime_stack.under("resource", "aws_iam_role_policy", prefix)
    assert sorted(policies) == sorted(
        f"{prefix}/{grant}/Policy" for grant in (*RUNTIME_GRANTS, f"ConsumeTasks-{runtime}"))
    assert runtime_stack.under("resource", "aws_iam_role_policy_attachment", prefix) == {}
    (trust,) = statements(runtime_stack, f"{prefix}/Trust")
    assert trust["actions"] == ["sts:AssumeRole", "sts:TagSession"]
    assert trust["principals"] == [{"type": "Service", "identifiers": ["pods.eks.amazonaws.com"]}]

    consume = statements(runtime_stack, f"{prefix}/ConsumeTasks-{runtime}/Document")
    assert consume[0]["resources"] == [queue_arn_ref(runtime_stack, runtime)]
    other = next(r for r in RUNTIMES if r != runtime)
    everything = json.dumps([statements(runtime_stack, f"{prefix}/{g}/Document")
                             for g in (*RUNTIME_GRANTS, f"ConsumeTasks-{runtime}")])
    assert f"Runtime-{other}" not in everything  # never another runtime's queue
    for grant in (*RUNTIME_GRANTS, f"ConsumeTasks-{runtime}"):
        for statement in statements(runtime_stack, f"{prefix}/{grant}/Document"):
            if statement["effect"] == "Deny":  # the one Deny: no writes under _requests/
                assert (grant, statement["sid"]) == ("WriteOutputs", "DenyWriteClaimChecks")
                continue
            assert statement["effect"] == "Allow"
            assert all("*" not in action for action in statement["actions"])
            assert "*" not in statement["resources"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtime_reads_only_its_model_prefix(runtime_stack, runtime):
    bucket = "${" + runtime_stack.address("aws_s3_bucket", "ModelBucket/Bucket") + ".arn}"
    assert statements(runtime_stack, f"Runtime-{runtime}/Role/ReadModels/Document") == [
        {"sid": "ListModels", "effect": "Allow", "actions": ["s3:ListBucket"],
         "resources": [bucket],
         "condition": [{"test": "StringLike", "variable": "s3:prefix",
                        "values": [f"{runtime}/*"]}]},
        {"sid": "ReadModels", "effect": "Allow", "actions": ["s3:GetObject"],
         "resources": [f"{bucket}/{runtime}/*"]},
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtime_release_and_namespace(runtime_stack, runtime):
    release = runtime_stack.resource("helm_release", f"Runtime-{runtime}/Release")
    namespace_release = runtime_stack.resource("helm_release", f"Runtime-{runtime}/Namespace")
    namespace = values_of(runtime_stack, f"Runtime-{runtime}/Namespace")
    association = runtime_stack.resource(
        "aws_eks_pod_identity_association", f"Runtime-{runtime}/PodIdentity/Association")
    assert release["name"] == runtime
    assert release["namespace"] == namespace["name"] == f"sdaas-{runtime}"
    assert namespace_release["chart"].startswith("assets/Chart-Namespace/")
    assert release["chart"].startswith("assets/Chart-SdRuntime/")
    assert release["wait"] is False
    assert namespace["podSecurity"] == {"enforce": "baseline", "warn": "restricted"}
    assert namespace["labels"]["sd.runtime"] == runtime
    assert association["namespace"] == release["namespace"]
    values = values_of(runtime_stack, f"Runtime-{runtime}/Release")
    assert association["service_account"] == values["serviceAccount"]["name"] == "sd-runtime"
    depends = set(release["depends_on"])
    assert {
        runtime_stack.address("helm_release", f"Runtime-{runtime}/Namespace"),
        runtime_stack.address("aws_eks_pod_identity_association",
                              f"Runtime-{runtime}/PodIdentity/Association"),
        runtime_stack.address("helm_release", "Karpenter/Karpenter"),
    } <= depends
    assert runtime_stack.built.runtimes[runtime].checkpoint_prefix == (
        f"{runtime}/Stable-diffusion/" if runtime == "sdruntime" else f"{runtime}/checkpoints/")


# --- shared --------------------------------------------------------------------------------


def test_created_model_bucket_is_private_encrypted_versioned_and_tls_only(runtime_stack):
    bucket = runtime_stack.resource("aws_s3_bucket", "ModelBucket/Bucket")
    assert resolve(runtime_stack.doc, bucket["bucket"]) == "sdaas-models-123456789012-us-west-2"
    assert bucket["force_destroy"] is False
    (rule,) = runtime_stack.resource(
        "aws_s3_bucket_server_side_encryption_configuration", "ModelBucket/Encryption")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms"}
    assert rule["bucket_key_enabled"] is True
    versioning = runtime_stack.resource("aws_s3_bucket_versioning", "ModelBucket/Versioning")
    assert versioning["versioning_configuration"] == {"status": "Enabled"}
    block = runtime_stack.resource("aws_s3_bucket_public_access_block", "ModelBucket/PublicAccess")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy",
                                          "ignore_public_acls", "restrict_public_buckets"))
    (deny,) = statements(runtime_stack, "ModelBucket/PolicyDocument")
    assert deny["effect"] == "Deny"
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport",
                                  "values": ["false"]}]
    (lifecycle,) = runtime_stack.resource(
        "aws_s3_bucket_lifecycle_configuration", "ModelBucket/Lifecycle")["rule"]
    assert lifecycle["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]
    assert lifecycle["noncurrent_version_expiration"] == [{"noncurrent_days": 30}]
    assert "expiration" not in lifecycle  # models themselves never expire


def test_agent_repository_scans_on_push_with_immutable_tags(runtime_stack):
    repository = runtime_stack.resource("aws_ecr_repository", "AgentRepository/Repository")
    assert repository["name"] == "sdaas-queue-agent"
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert repository["image_scanning_configuration"] == {"scan_on_push": True}
    assert repository["encryption_configuration"] == [{"encryption_type": "KMS"}]
    policy = json.loads(runtime_stack.resource(
        "aws_ecr_lifecycle_policy", "AgentRepository/Lifecycle")["policy"])
    assert [r["selection"]["tagStatus"] for r in policy["rules"]] == ["untagged"]


def test_synthesis_is_deterministic_and_free_of_absolute_paths(runtime_stack, example_config,
                                                               tmp_path):
    again = stack_lib.synth(stack_lib.build(example_config, tmp_path))
    first = (runtime_stack.stack_dir / "cdk.tf.json").read_bytes()
    assert (again / "cdk.tf.json").read_bytes() == first
    text = first.decode()
    repo = str(Path(__file__).resolve().parents[2])
    assert repo not in text
    assert str(runtime_stack.stack_dir) not in text and str(tmp_path) not in text
    for release in runtime_stack.resources("helm_release").values():
        assert not release["chart"].startswith("/")


def test_existing_model_bucket_is_looked_up_and_its_key_granted(tmp_path):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    key = "arn:aws:kms:us-west-2:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    data["model_bucket"] = {"existing_bucket": "my-models", "existing_bucket_kms_key_arn": key}
    built = stack_lib.build(parse_config(data), tmp_path)
    doc = stack_lib.load(stack_lib.synth(built))
    assert not any("ModelBucket" in body["//"]["metadata"]["path"]
                   for body in doc["resource"].get("aws_s3_bucket", {}).values())
    (lookup_id,) = [rid for rid, body in doc["data"]["aws_s3_bucket"].items()
                    if body["//"]["metadata"]["path"].endswith("/ModelBucket/Bucket")]
    assert doc["data"]["aws_s3_bucket"][lookup_id]["bucket"] == "my-models"
    (document,) = [body for body in doc["data"]["aws_iam_policy_document"].values()
                   if body["//"]["metadata"]["path"].endswith(
                       "/Runtime-sdruntime/Role/ReadModels/Document")]
    bucket = f"${{data.aws_s3_bucket.{lookup_id}.arn}}"
    assert document["statement"][0]["resources"] == [bucket]
    assert document["statement"][1]["resources"] == [f"{bucket}/sdruntime/*"]
    assert document["statement"][2] == {"sid": "DecryptModels", "effect": "Allow",
                                        "actions": ["kms:Decrypt"], "resources": [key]}


def test_example_config_loads_with_its_runtime_settings():
    config = load_config(EXAMPLE_CONFIG)
    assert [r.name for r in config.runtimes] == list(RUNTIMES)
    assert config.keda.chart_version.startswith("2.20.")


def test_whole_bucket_runtime_reads_the_reference_layout(tmp_path):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["runtimes"][0]["model_prefix"] = ""
    built = stack_lib.build(parse_config(data), tmp_path)
    doc = stack_lib.load(stack_lib.synth(built))
    (document,) = [body for body in doc["data"]["aws_iam_policy_document"].values()
                   if body["//"]["metadata"]["path"].endswith(
                       "/Runtime-sdruntime/Role/ReadModels/Document")]
    listing, reading = document["statement"]
    assert "condition" not in listing
    assert reading["resources"][0].endswith(".arn}/*")
    (release,) = [body for body in doc["resource"]["helm_release"].values()
                  if body["//"]["metadata"]["path"] == "sdaas/Runtime-sdruntime/Release"]
    assert yaml.safe_load(release["values"][0])["models"]["prefix"] == ""
    assert built.runtimes["sdruntime"].checkpoint_prefix == "Stable-diffusion/"
