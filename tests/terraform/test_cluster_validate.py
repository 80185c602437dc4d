"""``terraform validate`` of the AWS part of GpuEksCluster and KarpenterGpuPool with the
real AWS provider from the offline mirror (``TF_PLUGIN_DIR``), for the example
configuration and for a variant taking the other branches (existing VPC, shared pool,
CloudWatch add-on, admin roles, unpinned zones). The in-cluster part (Helm releases) is
taken out with the documented helper and checked by rendering the pool chart instead
(tests/cluster/test_pool_chart.py)."""

from __future__ import annotations

import json

import pytest

from constructs_lib.cluster import ExistingVpcProps, GpuEksClusterProps
from constructs_lib.karpenter import GpuPoolRuntime, KarpenterGpuPoolProps
from tests.cluster.stacks import synth_stack
from tests.support.terraform import plugin_dir, validate_aws_part, without_in_cluster

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

VARIANT = {
    "cluster_props": GpuEksClusterProps(
        name="variant",
        vpc=ExistingVpcProps(vpc_id="vpc-0123456789abcdef0",
                             private_subnet_ids=("subnet-0aaaaaaaaaaaaaaa1",
                                                 "subnet-0bbbbbbbbbbbbbbb2")),
        endpoint_public_access_cidrs=("203.0.113.0/24",),
        admin_role_arns=("arn:aws:iam::123456789012:role/admin",),
        cloudwatch_observability_version="v4.1.0-eksbuild.1",
        model_bucket_arn="arn:aws:s3:::models-bucket",
        model_bucket_kms_key_arn="arn:aws:kms:us-west-2:123456789012:key/1111-2222",
    ),
    "pool_props": KarpenterGpuPoolProps(
        name="variant", pool_model="shared", instance_store_raid0=True,
        runtimes=(GpuPoolRuntime(name="a", task_timeout_seconds=60),)),
}


@pytest.fixture(scope="module", params=["example", "variant"])
def synthesized(request, tmp_path_factory, example_config):
    plugin_dir()  # skip (or fail) before synthesizing when there is no provider mirror
    outdir = tmp_path_factory.mktemp(f"cluster-validate-{request.param}")
    if request.param == "example":
        stack_dir, _, _ = synth_stack(outdir, "sdaas", config=example_config)
    else:
        stack_dir, _, _ = synth_stack(outdir, "variant", **VARIANT)
    return stack_dir, json.loads((stack_dir / "cdk.tf.json").read_text())


def test_only_the_helm_releases_are_left_out(synthesized):
    _, doc = synthesized
    aws_only, removed = without_in_cluster(doc)
    releases = sorted(f"helm_release.{rid}" for rid in doc["resource"]["helm_release"])
    assert sorted(a for a in removed if not a.startswith("provider.")) == releases
    assert "provider.helm" in removed
    assert {"aws_eks_cluster", "aws_eks_node_group", "aws_eks_addon", "aws_eks_access_entry",
            "aws_eks_pod_identity_association", "aws_cloudwatch_event_rule",
            "aws_sqs_queue"} <= set(aws_only["resource"])
    assert "helm_release." not in json.dumps(aws_only)


def test_terraform_validate_accepts_the_aws_part(synthesized, tmp_path):
    stack_dir, doc = synthesized
    report = validate_aws_part(doc, stack_dir, tmp_path / "stack")
    assert report["valid"] is True, report["diagnostics"]
    assert [d for d in report["diagnostics"] if d["severity"] in ("error", "warning")] == []
