"""CDKTF constructs of an asynchronous Stable Diffusion service on AWS.

The five constructs, their props and the reference types they exchange are importable from
here::

    from constructs_lib import (
        GpuEksCluster, KarpenterGpuPool, KedaSqsScaler, SdRuntime, ServerlessIngress,
        ServerlessIngressProps,
    )

Names load on first use (PEP 562): importing the package costs no more than importing
the one construct module a name lives in, and a name never used is never imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from constructs_lib._providers import AWS_PROVIDER_VERSIONS, HELM_PROVIDER_VERSIONS
    from constructs_lib.cluster import (
        ExistingCluster,
        ExistingVpcProps,
        GpuEksCluster,
        GpuEksClusterProps,
        KubernetesConnection,
        NewVpcProps,
    )
    from constructs_lib.iam import Grant, RoleRef
    from constructs_lib.ingress import (
        RuntimeQueueRef,
        RuntimeSpec,
        ServerlessIngress,
        ServerlessIngressProps,
    )
    from constructs_lib.karpenter import (
        DisruptionBudget,
        GpuPoolRef,
        GpuPoolRuntime,
        KarpenterGpuPool,
        KarpenterGpuPoolProps,
    )
    from constructs_lib.keda import (
        KedaSqsScaler,
        KedaSqsScalerProps,
        RuntimeScaling,
        ScaledRuntime,
        ScaleTarget,
        ScalingConsistencyError,
    )
    from constructs_lib.runtime import (
        AgentImageRepository,
        AgentImageRepositoryProps,
        ContainerImage,
        ModelBucket,
        ModelBucketProps,
        RuntimeConsistencyError,
        SdRuntime,
        SdRuntimeProps,
    )

# Public name -> the module defining it.
_EXPORTS: dict[str, str] = {
    # what a stack declares for the AWS provider
    "AWS_PROVIDER_VERSIONS": "constructs_lib._providers",
    "HELM_PROVIDER_VERSIONS": "constructs_lib._providers",
    # ServerlessIngress
    "ServerlessIngress": "constructs_lib.ingress.construct",
    "ServerlessIngressProps": "constructs_lib.ingress.props",
    "RuntimeSpec": "constructs_lib.ingress.props",
    "RuntimeQueueRef": "constructs_lib.ingress.props",
    # GpuEksCluster
    "GpuEksCluster": "constructs_lib.cluster.construct",
    "ExistingCluster": "constructs_lib.cluster.existing",
    "KubernetesConnection": "constructs_lib.cluster.base",
    "GpuEksClusterProps": "constructs_lib.cluster.props",
    "NewVpcProps": "constructs_lib.cluster.props",
    "ExistingVpcProps": "constructs_lib.cluster.props",
    # KarpenterGpuPool
    "KarpenterGpuPool": "constructs_lib.karpenter.construct",
    "KarpenterGpuPoolProps": "constructs_lib.karpenter.props",
    "GpuPoolRuntime": "constructs_lib.karpenter.props",
    "DisruptionBudget": "constructs_lib.karpenter.props",
    "GpuPoolRef": "constructs_lib.karpenter.pools",
    # KedaSqsScaler
    "KedaSqsScaler": "constructs_lib.keda.construct",
    "KedaSqsScalerProps": "constructs_lib.keda.props",
    "RuntimeScaling": "constructs_lib.keda.props",
    "ScaleTarget": "constructs_lib.keda.props",
    "ScalingConsistencyError": "constructs_lib.keda.props",
    "ScaledRuntime": "constructs_lib.keda.scaled",
    # SdRuntime and what runtimes share
    "SdRuntime": "constructs_lib.runtime.construct",
    "SdRuntimeProps": "constructs_lib.runtime.props",
    "RuntimeConsistencyError": "constructs_lib.runtime.props",
    "ContainerImage": "constructs_lib.runtime.image",
    "ModelBucket": "constructs_lib.runtime.model_bucket",
    "ModelBucketProps": "constructs_lib.runtime.model_bucket",
    "AgentImageRepository": "constructs_lib.runtime.repository",
    "AgentImageRepositoryProps": "constructs_lib.runtime.repository",
    # grants
    "Grant": "constructs_lib.iam",
    "RoleRef": "constructs_lib.iam",
}

__all__ = [
    "AWS_PROVIDER_VERSIONS",
    "HELM_PROVIDER_VERSIONS",
    "AgentImageRepository",
    "AgentImageRepositoryProps",
    "ContainerImage",
    "DisruptionBudget",
    "ExistingCluster",
    "ExistingVpcProps",
    "GpuEksCluster",
    "GpuEksClusterProps",
    "GpuPoolRef",
    "GpuPoolRuntime",
    "Grant",
    "KarpenterGpuPool",
    "KarpenterGpuPoolProps",
    "KedaSqsScaler",
    "KedaSqsScalerProps",
    "KubernetesConnection",
    "ModelBucket",
    "ModelBucketProps",
    "NewVpcProps",
    "RoleRef",
    "RuntimeConsistencyError",
    "RuntimeQueueRef",
    "RuntimeScaling",
    "RuntimeSpec",
    "ScaleTarget",
    "ScaledRuntime",
    "ScalingConsistencyError",
    "SdRuntime",
    "SdRuntimeProps",
    "ServerlessIngress",
    "ServerlessIngressProps",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'constructs_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
