"""``KarpenterGpuPool``: Karpenter and the GPU node pools the runtimes run on.

Creates
    * the Karpenter controller's IAM role, assumed through EKS Pod Identity, with the
      Karpenter v1 controller permissions: instances, fleets, launch templates and instance
      profiles only when tagged for this cluster (``kubernetes.io/cluster/<name>: owned``,
      ``eks:eks-cluster-name``, ``karpenter.sh/nodepool``), ``iam:PassRole`` only on this
      pool's node role, region-bound reads;
    * the node IAM role (worker, ECR pull-only and SSM policies) and its ``EC2_LINUX``
      access entry;
    * the interruption queue (SQS, server-side encrypted, 5 minutes retention, TLS only)
      and four EventBridge rules feeding it, one per event kind so each event arrives once:
      spot interruption warnings, rebalance recommendations, AWS Health scheduled changes
      for EC2 and instance state changes towards stopping or termination;
    * Helm releases of the upstream ``karpenter-crd`` and ``karpenter`` charts
      (``oci://public.ecr.aws/karpenter``, pinned), values from ``helm-values/karpenter.yaml``
      deep-merged with the cluster name and endpoint, the interruption queue and the region;
      the controller runs on the system nodes;
    * the GPU pools: one release of the local chart ``charts/gpu-nodepool`` per runtime
      (``pool_model="dedicated"``, the default) or one shared release; each is an
      EC2NodeClass (Bottlerocket with a pinned alias, IMDSv2 hop limit 1, encrypted
      volumes, image-cache snapshot or RAID0 instance store with SOCI parallel pull) plus a
      spot NodePool (weight 100) and an on-demand fallback NodePool (weight 10).

CRDs: the ``karpenter-crd`` chart owns them (Helm upgrades templates, never a chart's
``crds/`` directory), and the ``karpenter`` release skips its own copy.

Spend cap: Karpenter limits are per NodePool. A pool may run at most ``spot_gpu_limit``
GPUs on spot and ``on_demand_gpu_limit`` on-demand, so a runtime's ceiling is the sum of
the enabled ones (``pool_for(runtime).gpu_limit``); the cluster's is the sum over pools.

A compatibility gate runs at synth: the Karpenter chart version must support the
cluster's Kubernetes version (:data:`KARPENTER_MINIMUM_FOR_KUBERNETES`).

Example::

    pool = KarpenterGpuPool(stack, "Karpenter", cluster=cluster, props=KarpenterGpuPoolProps(
        runtimes=(GpuPoolRuntime(name="sdruntime", task_timeout_seconds=600),),
    ))
    ref = pool.pool_for("sdruntime")   # node selector, tolerations, GPU cap, drain bound
"""

from __future__ import annotations

from constructs_lib.durations import duration_seconds, format_duration
from constructs_lib.karpenter.compatibility import (
    KARPENTER_MINIMUM_FOR_KUBERNETES,
    check_karpenter_compatibility,
    compatibility_problems,
)
from constructs_lib.karpenter.construct import (
    KARPENTER_REPOSITORY,
    KarpenterGpuPool,
    controller_placement_problems,
)
from constructs_lib.karpenter.iam import controller_statements
from constructs_lib.karpenter.interruption import INTERRUPTION_RULES
from constructs_lib.karpenter.pools import GpuPoolRef, planned_pools
from constructs_lib.karpenter.props import (
    DEFAULT_BOTTLEROCKET_ALIAS,
    DEFAULT_CHART_VERSION,
    NVIDIA_GPU_FAMILIES,
    DisruptionBudget,
    GpuPoolRuntime,
    KarpenterGpuPoolProps,
)

__all__ = [
    "DEFAULT_BOTTLEROCKET_ALIAS",
    "DEFAULT_CHART_VERSION",
    "INTERRUPTION_RULES",
    "KARPENTER_MINIMUM_FOR_KUBERNETES",
    "KARPENTER_REPOSITORY",
    "NVIDIA_GPU_FAMILIES",
    "DisruptionBudget",
    "GpuPoolRef",
    "GpuPoolRuntime",
    "KarpenterGpuPool",
    "KarpenterGpuPoolProps",
    "check_karpenter_compatibility",
    "compatibility_problems",
    "controller_placement_problems",
    "controller_statements",
    "duration_seconds",
    "format_duration",
    "planned_pools",
]
