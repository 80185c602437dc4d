"""What every construct running on a cluster asks of it, whoever owns the cluster: its
names and ARNs, the Pod Identity roles and associations, the system nodes, and how the
Helm provider reaches it. :class:`GpuEksCluster` and :class:`ExistingCluster` share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs_lib._cdktf import Construct, Fn, TerraformResource
from constructs_lib._providers import aws
from constructs_lib.iam import POD_IDENTITY_ACTIONS, POD_IDENTITY_PRINCIPAL, Condition, Role


@dataclass(frozen=True, kw_only=True)
class KubernetesConnection:
    """What ``main.py`` gives the Helm and Kubernetes providers to reach the cluster."""

    host: str
    cluster_ca_certificate: str  # PEM, decoded with Fn.base64decode
    exec_api_version: str
    exec_command: str
    exec_args: tuple[str, ...]


def aws_cli_connection(*, host: str, ca_certificate_pem: str, cluster_name: str,
                       region: str) -> KubernetesConnection:
    """A connection authenticated by a short-lived ``aws eks get-token`` token."""
    return KubernetesConnection(
        host=host,
        cluster_ca_certificate=ca_certificate_pem,
        exec_api_version="client.authentication.k8s.io/v1beta1",
        exec_command="aws",
        exec_args=("eks", "get-token", "--cluster-name", cluster_name, "--region", region),
    )


class ClusterBase(Construct):
    """The attributes and helpers every cluster construct offers.

    A subclass calls :meth:`_set_cluster` with the ``aws_eks_cluster`` it creates or looks
    up, and sets the account, region and partition it reads.
    """

    _account_id: str
    _region: str
    _partition: str
    _cluster: Any  # aws_eks_cluster resource or data source
    _physical_name: str
    _kubernetes_version: str
    _kubernetes: KubernetesConnection

    def _set_cluster(self, cluster: Any, *, physical_name: str,
                     kubernetes_version: str) -> None:
        self._cluster = cluster
        self._physical_name = physical_name
        self._kubernetes_version = kubernetes_version
        self._kubernetes = aws_cli_connection(
            host=cluster.endpoint,
            ca_certificate_pem=Fn.base64decode(self.cluster_certificate_authority_data),
            cluster_name=cluster.name, region=self._region)

    @property
    def physical_cluster_name(self) -> str:
        """The cluster's name as a plain string (known at synth, for IAM condition keys)."""
        return self._physical_name

    @property
    def cluster_name(self) -> str:
        return self._cluster.name

    @property
    def cluster_arn(self) -> str:
        return self._cluster.arn

    @property
    def cluster_endpoint(self) -> str:
        return self._cluster.endpoint

    @property
    def cluster_certificate_authority_data(self) -> str:
        """Base64-encoded CA bundle, as EKS returns it."""
        return self._cluster.certificate_authority.get(0).data

    @property
    def kubernetes_version(self) -> str:
        return self._kubernetes_version

    @property
    def kubernetes_connection(self) -> KubernetesConnection:
        """What the Helm and Kubernetes providers of the stack need to reach the cluster."""
        return self._kubernetes

    @property
    def region(self) -> str:
        return self._region

    @property
    def account_id(self) -> str:
        return self._account_id

    @property
    def partition(self) -> str:
        return self._partition

    def pod_identity_role(self, scope: Construct, id_: str, *, name: str,
                          description: str) -> Role:
        """A role that EKS Pod Identity may hand to pods of this cluster only.

        The trust policy admits ``pods.eks.amazonaws.com`` acting for this account and this
        cluster (``aws:SourceAccount``, ``aws:SourceArn``), so an association in another
        cluster cannot use the role. Grant it permissions, then ``add_pod_identity``.
        """
        return Role(
            scope, id_, name=name, assumed_by=POD_IDENTITY_PRINCIPAL,
            assume_actions=POD_IDENTITY_ACTIONS, description=description,
            assume_conditions=(
                Condition(test="StringEquals", variable="aws:SourceAccount",
                          values=(self.account_id,)),
                Condition(test="ArnEquals", variable="aws:SourceArn",
                          values=(self.cluster_arn,)),
            ),
        )

    def add_pod_identity(self, scope: Construct, id_: str, *, namespace: str,
                         service_account: str, role_arn: str) -> TerraformResource:
        """Let pods of ``namespace/service_account`` assume ``role_arn`` (EKS Pod Identity).

        Creates an ``aws_eks_pod_identity_association`` under ``scope`` and returns it.
        """
        return aws.eks_pod_identity_association.EksPodIdentityAssociation(
            scope, id_, cluster_name=self.cluster_name, namespace=namespace,
            service_account=service_account, role_arn=role_arn,
        )


__all__ = ["ClusterBase", "KubernetesConnection", "aws_cli_connection"]
