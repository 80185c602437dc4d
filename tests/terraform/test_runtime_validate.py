"""``terraform validate`` of the AWS part of the runtime stack (ServerlessIngress, model
bucket, cluster, Karpenter, KEDA, runtimes, agent repository) with the real AWS provider
from the offline mirror. The in-cluster part (Helm and Kubernetes providers, which are not
available offline) is taken out with the documented helper and checked by rendering the
charts instead (tests/runtime/test_synthesized_charts.py)."""

from __future__ import annotations

import json

import pytest

from tests.runtime import stack as stack_lib
from tests.support.terraform import plugin_dir, validate_aws_part, without_in_cluster

pytestmark = [pytest.mark.terraform, pytest.mark.slow]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, example_config):
    plugin_dir()  # skip (or fail in CI) before synthesizing when there is no mirror
    built = stack_lib.build(example_config, tmp_path_factory.mktemp("runtime-validate"))
    stack_dir = stack_lib.synth(built)
    return stack_dir, stack_lib.load(stack_dir)


def test_only_the_in_cluster_part_is_left_out(synthesized):
    _, doc = synthesized
    aws_only, removed = without_in_cluster(doc)
    in_cluster = sorted(
        f"{rtype}.{rid}" for rtype, items in doc["resource"].items()
        if rtype.startswith(("helm_", "kubernetes_")) for rid in items)
    assert sorted(a for a in removed if not a.startswith("provider.")) == in_cluster
    for runtime in ("sdruntime", "comfyui"):
        assert any(f"Runtime-{runtime}_Release" in a for a in in_cluster)
        assert any(f"Keda_Runtime-{runtime}_Release" in a for a in in_cluster)
    kept = {rtype for rtype in aws_only["resource"]}
    assert {"aws_eks_pod_identity_association", "aws_iam_role", "aws_iam_role_policy",
            "aws_ecr_repository", "aws_s3_bucket"} <= kept
    assert not any(t.startswith(("helm_", "kubernetes_")) for t in kept)
    # nothing left that depends on a removed resource
    assert "helm_release." not in json.dumps(aws_only)


def test_terraform_validate_accepts_the_aws_part(synthesized, tmp_path):
    stack_dir, doc = synthesized
    report = validate_aws_part(doc, stack_dir, tmp_path / "stack")
    assert report["valid"] is True, report["diagnostics"]
    assert [d for d in report["diagnostics"] if d["severity"] == "error"] == []
