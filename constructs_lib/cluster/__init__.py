"""``GpuEksCluster``: the network and the EKS cluster the GPU runtimes run in.

Creates
    * a VPC (or uses an existing one, see :class:`ExistingVpcProps`): private and public
      subnets in ``az_count`` zones, an internet gateway, NAT gateways (a single one by
      default, or one per zone), an S3 gateway endpoint (ECR image layers never cross the
      NAT), optional interface endpoints (ECR api/dkr, STS, SQS, SNS, CloudWatch Logs:
      ``DEFAULT_INTERFACE_ENDPOINTS``) so the remaining AWS calls need not either, VPC
      flow logs, and a default security group that admits nothing; the private subnets
      carry ``karpenter.sh/discovery: <cluster name>`` (existing subnets get the tag too);
    * a customer-managed KMS key (rotation on) for Kubernetes secrets envelope encryption
      and the cluster's log groups;
    * the EKS cluster: pinned Kubernetes version, authentication mode ``API`` with access
      entries (the identity running Terraform, when ``cluster_creator_admin``, and every
      ``admin_role_arns`` entry, each with ``AmazonEKSClusterAdminPolicy``), all five
      control-plane log types into a log group with retention, private endpoint always on,
      the public endpoint only with a CIDR allowlist;
    * a cluster security group and a node security group (tagged for Karpenter discovery)
      with the rules nodes and control plane need;
    * the system managed node group: on-demand, ``system_node_desired_size`` nodes
      (Graviton ``t4g.medium`` by default; the AL2023 AMI type follows the instance type's
      architecture), labelled ``sd.node-role=system`` (where Karpenter, KEDA and CoreDNS
      run), IMDSv2 with hop limit 1 and an encrypted root volume;
    * managed add-ons with pinned versions: vpc-cni (its own Pod Identity role),
      kube-proxy, eks-pod-identity-agent, coredns (on the system nodes),
      aws-mountpoint-s3-csi-driver (its Pod Identity role may only read the model bucket)
      and amazon-cloudwatch-observability (unless ``cloudwatch_observability_version`` is
      None): Container Insights metrics (GPU metrics from the NVIDIA DCGM exporter on GPU
      nodes), container logs through Fluent Bit, and the containers' embedded-metric lines
      as CloudWatch metrics; its log groups ``/aws/containerinsights/<cluster>/...`` are
      created first with ``container_log_retention_days`` and the KMS key, and its Pod
      Identity role may write to them only.

A cluster created elsewhere serves ``KarpenterGpuPool``, ``KedaSqsScaler`` and ``SdRuntime``
too: ``GpuEksCluster.from_attributes(scope, "Cluster", cluster_name=..., kubernetes_version=...)``
looks it up and creates nothing (:class:`ExistingCluster` says what it must run).

It configures no provider. ``kubernetes_connection`` carries what ``main.py`` needs for the
Helm and Kubernetes providers (endpoint, CA, an ``aws eks get-token`` exec command).

Example::

    cluster = GpuEksCluster(stack, "Cluster", props=GpuEksClusterProps(
        name="sdaas",
        endpoint_public_access_cidrs=("203.0.113.0/24",),
        admin_role_arns=("arn:aws:iam::123456789012:role/platform-admin",),
        model_bucket_arn=models.arn,
    ))
    Release(stack, "Keda", ..., depends_on=cluster.ready)
"""

from __future__ import annotations

from constructs_lib.cluster.addons import (
    CONTAINER_LOG_KINDS,
    DEFAULT_ADDON_VERSIONS,
    DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION,
    OPTIONAL_ADDONS,
    REQUIRED_ADDONS,
)
from constructs_lib.cluster.base import KubernetesConnection
from constructs_lib.cluster.construct import GpuEksCluster
from constructs_lib.cluster.existing import ExistingCluster
from constructs_lib.cluster.props import (
    CLUSTER_LOG_TYPES,
    DEFAULT_INTERFACE_ENDPOINTS,
    DISCOVERY_TAG,
    SYSTEM_NODE_AMI_TYPES,
    SYSTEM_NODE_SELECTOR,
    ExistingVpcProps,
    GpuEksClusterProps,
    NewVpcProps,
    instance_architecture,
)
from constructs_lib.durations import LOG_RETENTION_DAYS

__all__ = [
    "CLUSTER_LOG_TYPES",
    "CONTAINER_LOG_KINDS",
    "DEFAULT_ADDON_VERSIONS",
    "DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION",
    "DEFAULT_INTERFACE_ENDPOINTS",
    "DISCOVERY_TAG",
    "LOG_RETENTION_DAYS",
    "OPTIONAL_ADDONS",
    "REQUIRED_ADDONS",
    "SYSTEM_NODE_AMI_TYPES",
    "SYSTEM_NODE_SELECTOR",
    "ExistingCluster",
    "ExistingVpcProps",
    "GpuEksCluster",
    "GpuEksClusterProps",
    "KubernetesConnection",
    "NewVpcProps",
    "instance_architecture",
]
