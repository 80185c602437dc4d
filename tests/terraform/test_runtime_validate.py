"""The in-cluster part of the whole service (ServerlessIngress, model bucket, cluster,
Karpenter, KEDA, runtimes, agent repository) that ``terraform validate`` leaves out.

The runtime tests build their stack with the app's builder, so it is ``main.py``'s document:
``terraform validate`` of its AWS part runs once, in test_validate.py. The in-cluster part
(Helm and Kubernetes providers, which are not available offline) is taken out with the
documented helper and checked by rendering the charts instead
(tests/runtime/test_synthesized_charts.py)."""

from __future__ import annotations

import json

import pytest

from tests.support.terraform import without_in_cluster

pytestmark = [pytest.mark.terraform]


def test_only_the_in_cluster_part_is_left_out(synthesized):
    doc = synthesized.doc
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
