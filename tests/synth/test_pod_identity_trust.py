"""Every role EKS Pod Identity may assume trusts only this account and this cluster."""

from __future__ import annotations


def test_pod_identity_roles_trust_only_this_cluster(synthesized):
    trusts = [doc for doc in synthesized.data("aws_iam_policy_document").values()
              if any("pods.eks.amazonaws.com" in p["identifiers"]
                     for st in doc["statement"] for p in st.get("principals", []))]
    # vpc-cni, Mountpoint CSI driver, CloudWatch agent, Karpenter, KEDA and one per runtime
    assert len(trusts) == 7
    cluster_arn = "${aws_eks_cluster.Cluster_3DA9CCBA.arn}"
    for doc in trusts:
        (statement,) = doc["statement"]
        assert statement["actions"] == ["sts:AssumeRole", "sts:TagSession"]
        conditions = {(c["test"], c["variable"]): c["values"] for c in statement["condition"]}
        assert conditions[("ArnEquals", "aws:SourceArn")] == [cluster_arn], doc["//"]
        assert ("StringEquals", "aws:SourceAccount") in conditions
