"""The GPU pools a :class:`KarpenterGpuPool` creates: one per runtime or one shared,
and the reference a runtime's pods use to reach theirs."""

from __future__ import annotations

from dataclasses import dataclass

from constructs_lib._cdktf import (
    TerraformResource,
)
from constructs_lib.durations import duration_seconds
from constructs_lib.karpenter.props import (
    GPU_TAINT_KEY,
    POOL_LABEL,
    RUNTIME_TAINT_KEY,
    SHARED_POOL_NAME,
    GpuPoolRuntime,
    KarpenterGpuPoolProps,
)


@dataclass(frozen=True, kw_only=True)
class GpuPoolRef:
    """How a runtime's pods reach their GPU pool (for SdRuntime and KedaSqsScaler).

    ``gpu_limit`` is the most GPUs the pool can run at once (spot plus on-demand NodePool
    limits); with one GPU per pod it bounds the runtime's replicas (a shared pool's bound
    is shared by all its runtimes). ``termination_grace_period_seconds`` is the longest a
    node drain waits: the runtime's ``terminationGracePeriodSeconds`` must not exceed it.
    """

    name: str
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]
    gpu_limit: int
    termination_grace_period_seconds: int
    # The pool's NodePool release: a runtime depends on it, so on destroy the runtime's
    # pods go (and finish their tasks) before the pool's nodes are drained.
    release: TerraformResource | None = None


@dataclass(frozen=True, kw_only=True)
class PoolPlan:
    name: str
    runtime: str  # "" for the shared pool
    runtimes: tuple[str, ...]
    instance_families: tuple[str, ...]
    spot_gpu_limit: int
    on_demand_gpu_limit: int
    image_cache_snapshot_id: str | None
    volume_initialization_rate_mibps: int | None
    termination_grace_period_seconds: int


def plan_pools(props: KarpenterGpuPoolProps) -> list[PoolPlan]:
    def grace(runtimes: tuple[GpuPoolRuntime, ...]) -> int:
        if props.termination_grace_period is not None:
            return duration_seconds(props.termination_grace_period)
        longest = max(r.task_timeout_seconds for r in runtimes)
        seconds = longest + props.shutdown_margin_seconds
        return -(-seconds // 60) * 60  # whole minutes, rounded up

    if props.pool_model == "shared":
        return [PoolPlan(
            name=SHARED_POOL_NAME, runtime="", runtimes=tuple(r.name for r in props.runtimes),
            instance_families=props.instance_families, spot_gpu_limit=props.spot_gpu_limit,
            on_demand_gpu_limit=props.on_demand_gpu_limit,
            image_cache_snapshot_id=props.image_cache_snapshot_id,
            volume_initialization_rate_mibps=props.volume_initialization_rate_mibps,
            termination_grace_period_seconds=grace(props.runtimes),
        )]
    return [
        PoolPlan(
            name=r.name, runtime=r.name, runtimes=(r.name,),
            instance_families=r.instance_families or props.instance_families,
            spot_gpu_limit=r.spot_gpu_limit or props.spot_gpu_limit,
            on_demand_gpu_limit=r.on_demand_gpu_limit or props.on_demand_gpu_limit,
            image_cache_snapshot_id=r.image_cache_snapshot_id or props.image_cache_snapshot_id,
            volume_initialization_rate_mibps=(r.volume_initialization_rate_mibps
                                              or props.volume_initialization_rate_mibps),
            termination_grace_period_seconds=grace((r,)),
        )
        for r in props.runtimes
    ]



def pool_ref(props: KarpenterGpuPoolProps, pool: PoolPlan,
             release: TerraformResource | None = None) -> GpuPoolRef:
    """How the runtimes of ``pool`` reach it; ``gpu_limit`` sums the enabled NodePools."""
    tolerations: list[dict[str, str]] = [
        {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    if pool.runtime:
        tolerations.append({"key": RUNTIME_TAINT_KEY, "operator": "Equal",
                            "value": pool.runtime, "effect": "NoSchedule"})
    return GpuPoolRef(
        name=pool.name,
        node_selector={POOL_LABEL: pool.name},
        tolerations=tuple(tolerations),
        gpu_limit=((pool.spot_gpu_limit if props.spot else 0)
                   + (pool.on_demand_gpu_limit if props.on_demand_fallback else 0)),
        termination_grace_period_seconds=pool.termination_grace_period_seconds,
        release=release,
    )


def planned_pools(props: KarpenterGpuPoolProps) -> dict[str, GpuPoolRef]:
    """The pool of every runtime, as :meth:`KarpenterGpuPool.pool_for` gives it, without a
    stack (no ``release``): for checking settings before synth."""
    return {runtime: pool_ref(props, pool)
            for pool in plan_pools(props) for runtime in pool.runtimes}
