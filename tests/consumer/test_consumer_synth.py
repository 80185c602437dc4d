"""The consumer project of ``examples/``, synthesized in this process: its own app, stack,
provider blocks and resources, composing the five constructs into its VPC and granting its
own role; every taggable resource the constructs create carries their ``tags`` although
the consumer's provider has no ``default_tags``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.provider_schema import assembly_of, schema_of
from tests.support.terraform import Terraform, without_in_cluster, write_stack

CONSTRUCT_PATHS = ("platform/Ingress/", "platform/Models/", "platform/Cluster/",
                   "platform/Karpenter/", "platform/Keda/", "platform/AgentRepository/",
                   "platform/Runtime-sdxl/")
TAGS = {"team": "platform", "cost-center": "cc-4711"}


def _path(body: dict) -> str:
    return body["//"]["metadata"]["path"]


def _by_path(doc: dict, rtype: str, path: str) -> tuple[str, dict]:
    hits = [(name, body) for name, body in doc["resource"].get(rtype, {}).items()
            if _path(body) == path]
    assert len(hits) == 1, f"{len(hits)} {rtype} at {path}"
    return hits[0]


@pytest.fixture(scope="module")
def doc(consumer_synth) -> dict:
    return consumer_synth.doc


def test_the_consumer_owns_the_provider_backend_and_its_own_resources(doc):
    (aws,) = doc["provider"]["aws"]
    assert aws == {"region": "eu-west-1"}  # no default_tags
    assert "helm" in doc["provider"]
    assert doc["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}
    assert [_path(b) for b in doc["resource"]["aws_vpc"].values()] == ["platform/Vpc"]
    # Provider modules the library never uses, imported both ways by the consumer.
    assert [b["name"] for b in doc["resource"]["aws_ssm_parameter"].values()] == [
        "/platform/sd/api-endpoint"]
    assert len(doc["resource"]["aws_cloudwatch_dashboard"]) == 1


def test_the_cluster_goes_into_the_consumers_vpc(doc):
    vpc_name, _ = _by_path(doc, "aws_vpc", "platform/Vpc")
    subnets = sorted(f"${{aws_subnet.{name}.id}}" for name, body in doc["resource"][
        "aws_subnet"].items() if _path(body).startswith("platform/Private"))
    assert len(subnets) == 2
    _, cluster = _by_path(doc, "aws_eks_cluster", "platform/Cluster/Cluster")
    assert sorted(cluster["vpc_config"]["subnet_ids"]) == subnets
    _, nodes = _by_path(doc, "aws_eks_node_group", "platform/Cluster/SystemNodeGroup")
    assert sorted(nodes["subnet_ids"]) == subnets
    for group in doc["resource"]["aws_security_group"].values():
        assert group["vpc_id"] == f"${{aws_vpc.{vpc_name}.id}}"
    assert "aws_ec2_tag" not in doc["resource"]  # the consumer tags its own subnets


def test_the_five_constructs_are_composed(doc):
    paths = {_path(b) for kind in doc["resource"].values() for b in kind.values()}
    for prefix in CONSTRUCT_PATHS:
        assert any(p.startswith(prefix) for p in paths), prefix
    releases = {b["name"] for b in doc["resource"]["helm_release"].values()}
    assert {"karpenter", "karpenter-crd", "gpu-sdxl", "keda", "sdxl", "sdxl-namespace",
            "sdxl-scaler"} == releases


def test_the_consumers_role_may_submit_tasks_and_read_results(doc):
    role_name, _ = _by_path(doc, "aws_iam_role", "platform/ReportingServiceRole")
    policies = {b["name"]: b for b in doc["resource"]["aws_iam_role_policy"].values()
                if _path(b).startswith("platform/ReportingServiceRole/")}
    assert sorted(policies) == ["ReadResults", "SubmitTasks"]
    for policy in policies.values():
        assert policy["role"] == f"${{aws_iam_role.{role_name}.name}}"
    documents = {_path(b).split("/")[2]: b["statement"]
                 for b in doc["data"]["aws_iam_policy_document"].values()
                 if _path(b).startswith("platform/ReportingServiceRole/")}
    topic, _ = _by_path(doc, "aws_sns_topic", "platform/Ingress/InputTopic")
    submit = {s["sid"]: s for s in documents["SubmitTasks"]}
    assert submit["PublishTasks"]["actions"] == ["sns:Publish"]
    assert submit["PublishTasks"]["resources"] == [f"${{aws_sns_topic.{topic}.arn}}"]
    read = {s["sid"]: s for s in documents["ReadResults"]}
    assert read["ReadTasks"]["actions"] == ["dynamodb:GetItem"]
    assert read["ReadOutputs"]["actions"] == ["s3:GetObject"]
    outputs = json.loads(json.dumps(doc["output"]["reporting_policies"]))
    assert outputs["value"] == ["SubmitTasks", "ReadResults"]


@pytest.fixture(scope="module")
def five() -> dict:
    import cdktf_cdktf_provider_aws._jsii as jsii_module

    return schema_of(assembly_of(Path(jsii_module.__file__).parent.parent))


def test_every_taggable_resource_of_the_constructs_carries_their_tags(doc, five):
    taggable = {t for t, spec in five["resource"].items() if "tags" in spec["arguments"]}
    checked, missing = 0, []
    for rtype, resources in doc["resource"].items():
        for body in resources.values():
            path = _path(body)
            if not path.startswith(CONSTRUCT_PATHS) or rtype not in taggable:
                continue
            checked += 1
            tags = body.get("tags") or {}
            if any(tags.get(k) != v for k, v in TAGS.items()):
                missing.append(f"{rtype} at {path}")
    assert missing == []
    assert checked > 60
    # A resource's own tags win on a shared key, the others are added.
    _, node_sg = _by_path(doc, "aws_security_group", "platform/Cluster/NodeSecurityGroup")
    assert node_sg["tags"]["Name"] == "platform-eks-nodes"
    # The consumer's own resources are untouched: no provider default_tags at work.
    _, vpc = _by_path(doc, "aws_vpc", "platform/Vpc")
    assert vpc["tags"] == {"Name": "platform"}
    # Instances the cluster launches outside Terraform carry them too.
    _, template = _by_path(doc, "aws_launch_template", "platform/Cluster/SystemNodeLaunchTemplate")
    for spec in template["tag_specifications"]:
        assert TAGS.items() <= spec["tags"].items()


@pytest.mark.terraform
def test_the_aws_part_validates_with_the_real_provider(consumer_synth, tmp_path):
    aws_only, removed = without_in_cluster(consumer_synth.doc)
    assert "provider.helm" in removed
    assert all(a.startswith(("helm_", "provider.")) for a in removed)
    workdir = write_stack(aws_only, consumer_synth.stack_dir, tmp_path / "stack")
    tf = Terraform(workdir)
    tf.init()
    result = json.loads(tf.run("validate", "-json").stdout)
    assert result["valid"] is True, result["diagnostics"]
