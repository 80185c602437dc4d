"""One runtime's ScaledObject and TriggerAuthentication (a release of the local
``keda-sqs-scaler`` chart) and the consistency checks of its values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from constructs_lib._cdktf import (
    Construct,
    TerraformResource,
)
from constructs_lib._providers import helm
from constructs_lib.helm_values import dump_values
from task_contract import LONG_POLL_SECONDS

if TYPE_CHECKING:
    from constructs_lib.karpenter import GpuPoolRef


class ScaledRuntime(Construct):
    """One runtime's keda-sqs-scaler release (created by :meth:`KedaSqsScaler.add_runtime`)."""

    def __init__(self, scope: Construct, id_: str, *, runtime: str, namespace: str,
                 values: dict[str, Any], chart: str, depends_on: Sequence[TerraformResource],
                 timeout_seconds: int) -> None:
        super().__init__(scope, id_)
        self._runtime = runtime
        self._values = values
        self._release = helm.release.Release(
            self, "Release",
            name=f"{runtime}-scaler",
            chart=chart,
            namespace=namespace,
            values=[dump_values(values)],
            atomic=True,
            cleanup_on_fail=True,
            timeout=timeout_seconds,
            max_history=5,
            depends_on=list(depends_on),
        )

    @property
    def runtime(self) -> str:
        return self._runtime

    @property
    def release(self) -> TerraformResource:
        return self._release

    @property
    def values(self) -> Mapping[str, Any]:
        """The chart values the release carries (references as Terraform tokens)."""
        return MappingProxyType(self._values)

    @property
    def max_replicas(self) -> int:
        return int(self._values["maxReplicaCount"])

    @property
    def messages_per_replica(self) -> int:
        return int(self._values["messagesPerReplica"])

    @property
    def cooldown_period_seconds(self) -> int:
        return int(self._values["cooldownPeriodSeconds"])


def scaling_problems(values: Mapping[str, Any], *, pool: GpuPoolRef,
                     task_timeout_seconds: int) -> list[str]:
    """Every way the keda-sqs-scaler values contradict the pool or the task timeout."""
    problems = []
    maximum = int(values["maxReplicaCount"])
    if maximum > pool.gpu_limit:
        problems.append(
            f"max_replicas ({maximum}) must be <= the GPU limit of pool {pool.name!r} "
            f"({pool.gpu_limit}): each replica needs one GPU, replicas above the limit stay "
            "Pending"
        )
    cooldown = int(values["cooldownPeriodSeconds"])
    needed = task_timeout_seconds + LONG_POLL_SECONDS
    if cooldown < needed:
        problems.append(
            f"cooldown_period_seconds ({cooldown}) must be >= task_timeout_seconds + the "
            f"{LONG_POLL_SECONDS} s long poll ({needed}): scaling to zero must not stop a "
            "replica in the middle of its last task"
        )
    fallback = values.get("fallback") or {}
    if fallback.get("enabled") and int(fallback.get("replicas", 0)) > maximum:
        problems.append(
            f"fallback_replicas ({fallback.get('replicas')}) must be <= max_replicas ({maximum})"
        )
    if int(values.get("minReplicaCount", 0)) > maximum:
        problems.append(
            f"min replicas ({values.get('minReplicaCount')}) must be <= max_replicas ({maximum})"
        )
    return problems


