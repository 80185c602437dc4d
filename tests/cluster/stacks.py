"""Test stacks holding GpuEksCluster and KarpenterGpuPool, built like ``main.py`` builds
the service (providers configured at the stack, never in the constructs).

``build_stack`` is the one place the tests assemble the two constructs; the provider
wiring mirrors what ``sdaas/app.py`` does for the Helm and Kubernetes providers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from constructs_lib._cdktf import App, LocalBackend, TerraformStack
from constructs_lib._providers import aws, helm
from constructs_lib.cluster import GpuEksCluster, GpuEksClusterProps
from constructs_lib.karpenter import KarpenterGpuPool, KarpenterGpuPoolProps
from sdaas.app import AWS_PROVIDER_CONSTRAINT
from sdaas.config import Config
from sdaas.props import cluster_props as cluster_props_from_config
from sdaas.props import karpenter_props as pool_props_from_config

MODEL_BUCKET_ARN = "arn:aws:s3:::sdaas-models-123456789012"


# Services the cluster and Karpenter parts call, pointed at the emulator when emulated.
EMULATED_SERVICES = ("ec2", "eks", "events", "iam", "kms", "logs", "sqs", "sts")


def configure_providers(stack: TerraformStack, cluster: GpuEksCluster, region: str,
                        emulator_endpoint: str | None = None) -> None:
    """AWS provider for the region; Helm provider reaching the cluster with an exec token."""
    prov = aws.provider
    kwargs: dict[str, Any] = {"region": region}
    if emulator_endpoint is not None:
        kwargs.update(
            access_key="testing",
            secret_key="testing",
            skip_credentials_validation=True, skip_metadata_api_check="true",
            skip_region_validation=True,
            endpoints=[prov.AwsProviderEndpoints(
                **{service: emulator_endpoint for service in EMULATED_SERVICES})],
        )
    prov.AwsProvider(stack, "aws", **kwargs)
    # As sdaas.app does: any compatible provider release, not the bindings' exact one.
    stack.add_override("terraform.required_providers.aws",
                       {"source": "hashicorp/aws", "version": AWS_PROVIDER_CONSTRAINT})
    conn = cluster.kubernetes_connection
    hp = helm.provider
    hp.HelmProvider(stack, "helm", kubernetes=hp.HelmProviderKubernetes(
        host=conn.host,
        cluster_ca_certificate=conn.cluster_ca_certificate,
        exec=hp.HelmProviderKubernetesExec(api_version=conn.exec_api_version,
                                           command=conn.exec_command,
                                           args=list(conn.exec_args)),
    ))


def build_stack(app: App, name: str, *, config: Config | None = None,
                cluster_props: GpuEksClusterProps | None = None,
                pool_props: KarpenterGpuPoolProps | None = None,
                region: str = "us-west-2",
                emulator_endpoint: str | None = None) -> tuple[TerraformStack, GpuEksCluster,
                                                    KarpenterGpuPool | None]:
    """A stack with the cluster and (when given or derivable) the Karpenter pools."""
    stack = TerraformStack(app, name)
    LocalBackend(stack, path="terraform.tfstate")  # relative: no machine path in the output
    if config is not None:
        cluster_props = cluster_props or cluster_props_from_config(
            config, model_bucket_arn=MODEL_BUCKET_ARN)
        pool_props = pool_props or pool_props_from_config(config)
    cluster = GpuEksCluster(stack, "Cluster", props=cluster_props)
    configure_providers(stack, cluster, region, emulator_endpoint)
    pool = None
    if pool_props is not None:
        pool = KarpenterGpuPool(stack, "Karpenter", cluster=cluster, props=pool_props)
    return stack, cluster, pool


def synth_stack(outdir: Path, name: str, **kwargs) -> tuple[Path, GpuEksCluster,
                                                             KarpenterGpuPool | None]:
    """Synthesize one stack (assets included) to ``outdir``; return its directory."""
    app = App(outdir=str(outdir), skip_validation=False)
    _, cluster, pool = build_stack(app, name, **kwargs)
    app.synth()
    return outdir / "stacks" / name, cluster, pool
