"""Builds the stack the runtime tests synthesize: ServerlessIngress, the model bucket,
GpuEksCluster, KarpenterGpuPool, KedaSqsScaler, the agent repository and one SdRuntime per
configured runtime, wired the way sdaas.app wires them (providers minimal: the
tests synthesize, they never connect).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from constructs_lib import cluster as cluster_lib
from constructs_lib import karpenter as karpenter_lib
from constructs_lib import keda as keda_lib
from constructs_lib import runtime as runtime_lib
from constructs_lib._cdktf import App, LocalBackend, TerraformStack
from constructs_lib._providers import aws, helm
from constructs_lib.ingress import ServerlessIngress
from sdaas import props as props_lib
from sdaas.app import AWS_PROVIDER_CONSTRAINT
from sdaas.config import Config

RuntimePropsEdit = Callable[[runtime_lib.SdRuntimeProps], runtime_lib.SdRuntimeProps]
PoolPropsEdit = Callable[[karpenter_lib.KarpenterGpuPoolProps],
                         karpenter_lib.KarpenterGpuPoolProps]


@dataclass
class Built:
    app: App
    stack: TerraformStack
    ingress: ServerlessIngress
    cluster: cluster_lib.GpuEksCluster
    karpenter: karpenter_lib.KarpenterGpuPool
    scaler: keda_lib.KedaSqsScaler
    models: runtime_lib.ModelBucket
    repository: runtime_lib.AgentImageRepository
    runtimes: dict[str, runtime_lib.SdRuntime] = field(default_factory=dict)


def build(config: Config, outdir: Path | str, *, runtime_props: RuntimePropsEdit | None = None,
          pool_props: PoolPropsEdit | None = None) -> Built:
    """The whole stack for ``config``; the editors may rewrite each runtime's props and the
    GPU pools' props (to provoke consistency errors)."""
    app = App(outdir=str(outdir))
    stack = TerraformStack(app, config.name)
    LocalBackend(stack, path="terraform.tfstate")
    aws.provider.AwsProvider(stack, "aws", region=config.region)
    stack.add_override("terraform.required_providers.aws",
                       {"source": "hashicorp/aws", "version": AWS_PROVIDER_CONSTRAINT})
    # Provider configuration is main.py's job; these only have to exist for synthesis.
    helm.provider.HelmProvider(
        stack, "helm", kubernetes=helm.provider.HelmProviderKubernetes(host="https://cluster"))
    ingress = ServerlessIngress(stack, "Ingress", props=props_lib.ingress_props(config))
    models = runtime_lib.ModelBucket(stack, "ModelBucket",
                                     props=props_lib.model_bucket_props(config))
    cluster = cluster_lib.GpuEksCluster(stack, "Cluster", props=props_lib.cluster_props(
        config, model_bucket_arn=models.bucket_arn,
        model_bucket_kms_key_arn=models.kms_key_arn))
    karpenter_props = props_lib.karpenter_props(config)
    if pool_props is not None:
        karpenter_props = pool_props(karpenter_props)
    karpenter = karpenter_lib.KarpenterGpuPool(stack, "Karpenter", cluster=cluster,
                                               props=karpenter_props)
    scaler = keda_lib.KedaSqsScaler(stack, "Keda", cluster=cluster,
                                    props=props_lib.keda_props(config))
    repository = runtime_lib.AgentImageRepository(
        stack, "AgentRepository", props=props_lib.agent_repository_props(config))
    built = Built(app=app, stack=stack, ingress=ingress, cluster=cluster, karpenter=karpenter,
                  scaler=scaler, models=models, repository=repository)
    for spec in config.runtimes:
        props = props_lib.runtime_props(config, spec.name)
        if runtime_props is not None:
            props = runtime_props(props)
        built.runtimes[spec.name] = runtime_lib.SdRuntime(
            stack, f"Runtime-{spec.name}", cluster=cluster, ingress=ingress, pool=karpenter,
            scaler=scaler, model_bucket=models, agent_repository=repository, props=props,
        )
    return built


def synth(built: Built) -> Path:
    built.app.synth()
    return Path(built.app.outdir) / "stacks" / built.stack.node.id


def load(stack_dir: Path) -> dict[str, Any]:
    return json.loads((stack_dir / "cdk.tf.json").read_text(encoding="utf-8"))


def with_props(**changes: Any) -> RuntimePropsEdit:
    """A ``runtime_props`` editor applying ``changes`` to every runtime."""
    return lambda props: replace(props, **changes)
