"""``terraform validate`` of the example app with the real AWS provider.

The Helm and Kubernetes providers cannot be installed offline, so the in-cluster part is
removed first by :func:`tests.support.terraform.without_in_cluster`; the test proves that
only Helm/Kubernetes providers and resources were removed.
"""

from __future__ import annotations

import pytest

from tests.support.terraform import IN_CLUSTER_PREFIXES, validate_aws_part, without_in_cluster

pytestmark = [pytest.mark.terraform]


def test_helper_removes_only_in_cluster_parts():
    doc = {
        "provider": {"aws": [{}], "helm": [{}], "kubernetes": [{}]},
        "terraform": {"required_providers": {"aws": {}, "helm": {}, "kubernetes": {}}},
        "resource": {
            "helm_release": {"a": {}},
            "kubernetes_namespace": {"b": {}},
            "aws_sqs_queue": {"q": {"depends_on": ["helm_release.a", "aws_kms_key.k"]}},
        },
    }
    out, removed = without_in_cluster(doc)
    assert removed == ["helm_release.a", "kubernetes_namespace.b", "provider.helm",
                       "provider.kubernetes"]
    assert out["resource"] == {"aws_sqs_queue": {"q": {"depends_on": ["aws_kms_key.k"]}}}
    assert out["terraform"]["required_providers"] == {"aws": {}}
    assert "helm_release" in doc["resource"], "the input must not be modified"


def test_example_app_validates_with_the_real_aws_provider(synthesized, tmp_path):
    _, removed = without_in_cluster(synthesized.doc)
    for address in removed:
        kind = address.removeprefix("data.").split(".")[0]
        assert address.startswith("provider.") or kind.startswith(IN_CLUSTER_PREFIXES), address
    kept = {a for a in synthesized.addresses()} - set(removed)
    assert kept, "nothing left to validate"
    assert all(not a.removeprefix("data.").startswith(IN_CLUSTER_PREFIXES) for a in kept)
    report = validate_aws_part(synthesized.doc, synthesized.stack_dir, tmp_path / "stack")
    assert report["valid"] is True, report["diagnostics"]
    assert [d for d in report["diagnostics"] if d["severity"] == "error"] == []
