"""The cluster's managed add-ons: which are required, their pinned versions, and how each
is created (before or after the system nodes, with its Pod Identity role)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType

from constructs_lib._cdktf import Construct, TerraformResource
from constructs_lib._providers import aws
from constructs_lib.iam import Role, Statement

REQUIRED_ADDONS = (
    "vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-mountpoint-s3-csi-driver",
)
CLOUDWATCH_ADDON = "amazon-cloudwatch-observability"
# EKS add-ons that need nothing beyond a pinned version (no IAM role, no configuration):
# what addon_versions may add to the required ones.
OPTIONAL_ADDONS = (
    "cert-manager", "eks-node-monitoring-agent", "kube-state-metrics", "metrics-server",
    "prometheus-node-exporter", "snapshot-controller",
)
# Pinned add-on versions for Kubernetes 1.35 (`aws eks describe-addon-versions
# --kubernetes-version 1.35 --addon-name <name>`).
DEFAULT_ADDON_VERSIONS: Mapping[str, str] = MappingProxyType({
    "vpc-cni": "v1.20.4-eksbuild.2",
    "coredns": "v1.12.4-eksbuild.1",
    "kube-proxy": "v1.35.0-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    "aws-mountpoint-s3-csi-driver": "v2.1.0-eksbuild.1",
})
# Created before the system node group: nodes need the CNI (and its credentials, from the
# Pod Identity agent) and kube-proxy to become Ready. The rest need running nodes.
BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")


def create_addon(scope: Construct, addon: str, version: str, *, cluster_name: str,
                 node_group: TerraformResource | None, role: Role | None = None,
                 service_account: str | None = None,
                 configuration: dict | None = None) -> TerraformResource:
    """One ``aws_eks_addon`` (construct ID ``Addon-<name>``); add-ons outside
    :data:`BEFORE_NODES` wait for ``node_group``."""
    ea = aws.eks_addon
    return ea.EksAddon(
        scope, f"Addon-{addon}",
        cluster_name=cluster_name,
        addon_name=addon,
        addon_version=version,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        configuration_values=(json.dumps(configuration, sort_keys=True)
                              if configuration else None),
        pod_identity_association=(
            [ea.EksAddonPodIdentityAssociation(role_arn=role.role_arn,
                                               service_account=service_account)]
            if role is not None else None),
        depends_on=None if addon in BEFORE_NODES else [node_group],
    )


def model_bucket_statements(bucket_arn: str, kms_key_arn: str | None) -> list[Statement]:
    """What the Mountpoint S3 CSI driver may do: list and read the model bucket, and decrypt
    with its key when it has one."""
    statements = [Statement(sid="ListModelBucket", actions=("s3:ListBucket",),
                            resources=(bucket_arn,)),
                  Statement(sid="ReadModels", actions=("s3:GetObject",),
                            resources=(f"{bucket_arn}/*",))]
    if kms_key_arn is not None:
        statements.append(Statement(sid="DecryptModels", actions=("kms:Decrypt",),
                                    resources=(kms_key_arn,)))
    return statements
