"""An EKS cluster owned elsewhere, as the constructs that run on a cluster see it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from constructs_lib._cdktf import Construct, TerraformResource, Token
from constructs_lib._providers import aws
from constructs_lib.cluster.base import ClusterBase
from constructs_lib.cluster.props import CLUSTER_NAME_RE, K8S_VERSION_RE, SYSTEM_NODE_SELECTOR


class ExistingCluster(ClusterBase):
    """An EKS cluster created outside this stack, looked up by name (``aws_eks_cluster``
    data source), for :class:`KarpenterGpuPool`, :class:`KedaSqsScaler` and
    :class:`SdRuntime` to run on. It creates nothing. Build it with
    ``GpuEksCluster.from_attributes``.

    The cluster must use access entries (authentication mode ``API`` or
    ``API_AND_CONFIG_MAP``), run the ``eks-pod-identity-agent`` add-on, and, for
    ``SdRuntime``, the Mountpoint for Amazon S3 CSI driver allowed to read the model bucket.
    ``system_node_selector`` labels the nodes where the controllers run;
    ``system_node_count`` is how many there are (Karpenter's replicas must fit). ``ready``
    (default: nothing) is what in-cluster releases wait for, for example the node group or
    add-ons the owner's stack creates.
    """

    def __init__(self, scope: Construct, id_: str, *, cluster_name: str,
                 kubernetes_version: str,
                 system_node_selector: Mapping[str, str] = SYSTEM_NODE_SELECTOR,
                 system_node_count: int = 2,
                 ready: Sequence[TerraformResource] = ()) -> None:
        problems = []
        if Token.is_unresolved(cluster_name) or not CLUSTER_NAME_RE.match(cluster_name):
            problems.append("cluster_name must be the cluster's literal name (IAM conditions "
                            f"and tags name it; got {cluster_name!r})")
        if not K8S_VERSION_RE.match(kubernetes_version):
            problems.append(f'kubernetes_version must look like "1.35" (got '
                            f'"{kubernetes_version}")')
        if not system_node_selector:
            problems.append("system_node_selector must name at least one node label")
        if system_node_count < 1:
            problems.append(f"system_node_count must be >= 1 (got {system_node_count})")
        if problems:
            raise ValueError("ExistingCluster: " + "; ".join(problems))
        super().__init__(scope, id_)
        self._selector = MappingProxyType(dict(system_node_selector))
        self._node_count = system_node_count
        self._ready = list(ready)
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Caller")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        region = aws.data_aws_region.DataAwsRegion(self, "Region")
        self._account_id = identity.account_id
        self._partition = partition.partition
        self._region = region.id  # the region's name in every AWS provider 5.x and 6.x
        self._set_cluster(aws.data_aws_eks_cluster.DataAwsEksCluster(
            self, "Cluster", name=cluster_name), physical_name=cluster_name,
            kubernetes_version=kubernetes_version)

    @property
    def system_node_selector(self) -> dict[str, str]:
        return dict(self._selector)

    @property
    def system_node_count(self) -> int:
        return self._node_count

    @property
    def ready(self) -> list[TerraformResource]:
        return list(self._ready)

