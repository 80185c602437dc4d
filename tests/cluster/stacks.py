"""Test stacks holding GpuEksCluster and KarpenterGpuPool, built by the application's own
builder (:func:`sdaas.app.build_stack`): the same providers, backend and props mapping as
``main.py``, with only these parts built and the props replaced where a test says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from constructs_lib._cdktf import App, TerraformStack
from constructs_lib.cluster import GpuEksCluster, GpuEksClusterProps
from constructs_lib.karpenter import KarpenterGpuPool, KarpenterGpuPoolProps
from sdaas import app as app_lib
from sdaas.config import EXAMPLE_CONFIG, Config, load_config

# Without the model bucket part, the cluster's Mountpoint driver reads this bucket.
MODEL_BUCKET_ARN = "arn:aws:s3:::sdaas-models-123456789012"


def build_stack(app: App, name: str, *, config: Config | None = None,
                cluster_props: GpuEksClusterProps | None = None,
                pool_props: KarpenterGpuPoolProps | None = None,
                emulator_endpoint: str | None = None) -> tuple[TerraformStack, GpuEksCluster,
                                                               KarpenterGpuPool | None]:
    """A stack named ``name`` with the cluster and (when given or derivable) the Karpenter
    pools: from ``config`` (the model bucket then being :data:`MODEL_BUCKET_ARN`), or from
    the props given, in a stack configured like the example's."""
    cluster_edit = ((lambda _: cluster_props) if cluster_props is not None
                    else (lambda props: replace(props, model_bucket_arn=MODEL_BUCKET_ARN)))
    with_pools = config is not None or pool_props is not None
    built = app_lib.build_stack(
        app, config or load_config(EXAMPLE_CONFIG),
        parts=app_lib.CLUSTER_AND_POOLS if with_pools else {app_lib.Part.CLUSTER},
        edits=app_lib.Edits(cluster=cluster_edit,
                            karpenter=None if pool_props is None else (lambda _: pool_props)),
        emulation=(None if emulator_endpoint is None
                   else app_lib.Emulation(endpoint=emulator_endpoint)),
        stack_name=name)
    assert built.cluster is not None
    return built.stack, built.cluster, built.karpenter


def synth_stack(outdir: Path, name: str, **kwargs) -> tuple[Path, GpuEksCluster,
                                                             KarpenterGpuPool | None]:
    """Synthesize one stack (assets included) to ``outdir``; return its directory."""
    app = App(outdir=str(outdir), skip_validation=False)
    _, cluster, pool = build_stack(app, name, **kwargs)
    app.synth()
    return outdir / "stacks" / name, cluster, pool
