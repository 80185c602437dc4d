"""What every construct running on a cluster asks of it, whoever owns the cluster: its
names and ARNs, the Pod Identity roles and associations, the system nodes, and how the
Helm provider reaches it. :class:`GpuEksCluster` and :class:`ExistingCluster` share it."""

from __future__ import annotations

from dataclasses import dataclass

from constructs_lib._cdktf import Construct, TerraformResource
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
    """The attributes and helpers every cluster construct offers (subclasses set them)."""

    # Set by the subclass before any helper runs.
    _account_id: str
    _region: str
    _partition: str

    @property
    def cluster_name(self) -> str:
        raise NotImplementedError

    @property
    def cluster_arn(self) -> str:
        raise NotImplementedError

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
