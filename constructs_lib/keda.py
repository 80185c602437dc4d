"""``KedaSqsScaler``: KEDA, and one queue-driven scaler per runtime.

Creates
    * the KEDA Helm release (upstream chart ``kedacore/keda``, pinned 2.20.x, values from
      ``helm-values/keda.yaml``) in its own namespace, operator, metrics server and webhooks
      on the cluster's system nodes;
    * the operator's IAM role, assumed through EKS Pod Identity by the ``keda-operator``
      service account, allowed nothing but ``sqs:GetQueueAttributes`` on the queues it
      scales (one inline policy per runtime);
    * per runtime (:meth:`KedaSqsScaler.add_runtime`): a release of the local chart
      ``charts/keda-sqs-scaler`` in the runtime's namespace: a ``TriggerAuthentication``
      (pod identity provider ``aws``, the operator's role) and a ``ScaledObject`` on the
      runtime's Deployment (0..``max_replicas``; ``queueLength`` = messages per replica;
      ``scaleOnInFlight: "true"`` inside the trigger metadata; ``activationQueueLength`` 0;
      a cooldown that covers the longest task plus the long poll; an HPA scale-down
      stabilization window; a fallback).

``SdRuntime`` calls :meth:`KedaSqsScaler.add_runtime` for its own runtime; use it directly to
scale another Deployment on a queue.

Example::

    scaler = KedaSqsScaler(stack, "Keda", cluster=cluster, props=KedaSqsScalerProps(name="sdaas"))
    scaler.add_runtime(
        queue=ingress.queue_for("sdruntime"),
        target=ScaleTarget(namespace="sdaas-sdruntime", deployment_name="sdruntime"),
        pool=karpenter.pool_for("sdruntime"),
        task_timeout_seconds=600,
        scaling=RuntimeScaling(max_replicas=4, seconds_per_image=5, target_wait_seconds=60),
    )
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from constructs_lib._cdktf import (
    AssetType,
    Construct,
    TerraformAsset,
    TerraformResource,
    TerraformStack,
)
from constructs_lib._providers import helm
from constructs_lib.helm_values import deep_merge, dump_values, load_values
from constructs_lib.iam import Statement
from task_contract import LONG_POLL_SECONDS

if TYPE_CHECKING:
    from constructs_lib.cluster import GpuEksCluster
    from constructs_lib.ingress import RuntimeQueueRef
    from constructs_lib.karpenter import GpuPoolRef

KEDA_CHART_REPOSITORY = "https://kedacore.github.io/charts"
KEDA_CHART = "keda"
KEDA_OPERATOR_SERVICE_ACCOUNT = "keda-operator"
SCALER_CHART = "keda-sqs-scaler"
CHARTS_DIR = Path(__file__).resolve().parent.parent / "charts"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CHART_VERSION = re.compile(r"^2\.20\.\d+$")


class ScalingConsistencyError(ValueError):
    """A runtime's scaling settings contradict its task timeout or its GPU pool."""

    def __init__(self, runtime: str, problems: list[str]) -> None:
        self.runtime = runtime
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"runtime {runtime!r}: {len(problems)} scaling problem(s):\n{lines}")


def local_chart(scope: Construct, chart: str) -> str:
    """Relative path (``assets/...``) of ``charts/<chart>`` in the synthesized stack.

    One asset per chart and stack, whatever the number of releases using it. The asset's
    path depends only on the chart's contents, so the synthesized JSON is byte-stable and
    a chart change rolls out to every release of it.
    """
    stack = TerraformStack.of(scope)
    asset_id = "Chart-" + "".join(part.capitalize() for part in chart.split("-"))
    asset = stack.node.try_find_child(asset_id)
    if asset is None:
        directory = CHARTS_DIR / chart
        if not (directory / "Chart.yaml").is_file():
            raise FileNotFoundError(f"no local chart {chart!r} in charts/")
        asset = TerraformAsset(stack, asset_id, path=str(directory), type=AssetType.DIRECTORY)
    return asset.path


@dataclass(frozen=True, kw_only=True)
class KedaSqsScalerProps:
    """KEDA's release and defaults for every runtime it scales.

    ``values`` are extra values for the upstream chart, merged last over
    ``helm-values/keda.yaml`` and the generated ones.
    """

    name: str = "sdaas"
    chart_version: str = "2.20.2"
    namespace: str = "keda"
    polling_interval_seconds: int = 5
    fallback_failure_threshold: int = 3
    helm_timeout_seconds: int = 600
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not _CHART_VERSION.match(self.chart_version):
            problems.append(
                f"chart_version must be an exact 2.20.x release like 2.20.2 "
                f"(got {self.chart_version!r})"
            )
        if not _DNS_LABEL.match(self.namespace):
            problems.append(f"namespace must be a DNS label (got {self.namespace!r})")
        if not 1 <= self.polling_interval_seconds <= 300:
            problems.append(
                f"polling_interval_seconds must be 1..300 (got {self.polling_interval_seconds})"
            )
        if self.fallback_failure_threshold < 1:
            problems.append(
                f"fallback_failure_threshold must be >= 1 (got {self.fallback_failure_threshold})"
            )
        if self.helm_timeout_seconds < 60:
            problems.append(
                f"helm_timeout_seconds must be >= 60 (got {self.helm_timeout_seconds})"
            )
        if problems:
            raise ValueError("KedaSqsScalerProps: " + "; ".join(problems))
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


@dataclass(frozen=True, kw_only=True)
class RuntimeScaling:
    """How one runtime scales on its queue.

    The target number of messages per replica (KEDA ``queueLength``) follows from the wait
    a task may have before a replica starts it: ``floor(target_wait_seconds /
    seconds_per_image)``, at least 1; ``messages_per_replica`` overrides it.
    ``cooldown_period_seconds`` defaults to the task timeout plus the queue's long poll.
    """

    max_replicas: int = 4
    seconds_per_image: float = 5.0
    target_wait_seconds: float = 60.0
    messages_per_replica: int | None = None
    activation_queue_length: int = 0
    cooldown_period_seconds: int | None = None
    scale_down_stabilization_seconds: int = 300
    fallback_replicas: int = 1
    polling_interval_seconds: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.max_replicas < 1:
            problems.append(f"max_replicas must be >= 1 (got {self.max_replicas})")
        if self.seconds_per_image <= 0 or self.target_wait_seconds <= 0:
            problems.append(
                "seconds_per_image and target_wait_seconds must be > 0 (got "
                f"{self.seconds_per_image} and {self.target_wait_seconds})"
            )
        if self.messages_per_replica is not None and self.messages_per_replica < 1:
            problems.append(
                f"messages_per_replica must be >= 1 (got {self.messages_per_replica})"
            )
        if self.activation_queue_length < 0:
            problems.append(
                f"activation_queue_length must be >= 0 (got {self.activation_queue_length})"
            )
        if self.cooldown_period_seconds is not None and self.cooldown_period_seconds < 0:
            problems.append(
                f"cooldown_period_seconds must be >= 0 (got {self.cooldown_period_seconds})"
            )
        if not 0 <= self.scale_down_stabilization_seconds <= 3600:
            problems.append(
                "scale_down_stabilization_seconds must be 0..3600 "
                f"(got {self.scale_down_stabilization_seconds})"
            )
        if not 0 <= self.fallback_replicas <= max(self.max_replicas, 0):
            problems.append(
                f"fallback_replicas must be 0..max_replicas (got {self.fallback_replicas}, "
                f"max_replicas={self.max_replicas})"
            )
        if self.polling_interval_seconds is not None and not (
            1 <= self.polling_interval_seconds <= 300
        ):
            problems.append(
                f"polling_interval_seconds must be 1..300 (got {self.polling_interval_seconds})"
            )
        if problems:
            raise ValueError("RuntimeScaling: " + "; ".join(problems))

    @property
    def target_messages_per_replica(self) -> int:
        """KEDA ``queueLength``: the override, else floor(target wait / seconds per image)."""
        if self.messages_per_replica is not None:
            return self.messages_per_replica
        return max(1, math.floor(self.target_wait_seconds / self.seconds_per_image))

    def cooldown_for(self, task_timeout_seconds: int) -> int:
        """``cooldown_period_seconds``, else the longest task plus the long poll."""
        if self.cooldown_period_seconds is not None:
            return self.cooldown_period_seconds
        return task_timeout_seconds + LONG_POLL_SECONDS


@dataclass(frozen=True, kw_only=True)
class ScaleTarget:
    """The Deployment a scaler drives: its namespace and name, and what must exist first
    (the workload's release, its namespace)."""

    namespace: str
    deployment_name: str
    depends_on: tuple[TerraformResource, ...] = ()


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


class KedaSqsScaler(Construct):
    """KEDA on the cluster, and a ScaledObject per runtime queue (see the module docstring)."""

    def __init__(self, scope: Construct, id_: str, *, cluster: GpuEksCluster,
                 props: KedaSqsScalerProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or KedaSqsScalerProps()
        self._props = props
        self._cluster = cluster
        self._runtimes: dict[str, ScaledRuntime] = {}

        self._role = cluster.pod_identity_role(
            self, "OperatorRole",
            name=f"{props.name}-keda-operator",
            description="KEDA operator: reads the depth of the runtime queues",
        )
        identity = Construct(self, "OperatorPodIdentity")
        cluster.add_pod_identity(
            identity, "Association",
            namespace=props.namespace,
            service_account=KEDA_OPERATOR_SERVICE_ACCOUNT,
            role_arn=self._role.role_arn,
        )
        # The operator must start with its credentials in place: EKS Pod Identity injects
        # them when a pod is created, so the association comes before the release.
        identity_resources = _resources_under(identity)

        generated = {
            "nodeSelector": dict(cluster.system_node_selector),
            "serviceAccount": {
                "operator": {"create": True, "name": KEDA_OPERATOR_SERVICE_ACCOUNT},
            },
            "podIdentity": {"aws": {"irsa": {"enabled": False}}},
        }
        values = deep_merge(deep_merge(load_values("keda"), generated), props.values)
        self._check_operator_values(values)
        self._values = values
        self._release = helm.release.Release(
            self, "Release",
            name="keda",
            repository=KEDA_CHART_REPOSITORY,
            chart=KEDA_CHART,
            version=props.chart_version,
            namespace=props.namespace,
            create_namespace=True,
            values=[dump_values(values)],
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            timeout=props.helm_timeout_seconds,
            max_history=5,
            depends_on=[*cluster.ready, *identity_resources],
        )

    def _check_operator_values(self, values: Mapping[str, Any]) -> None:
        account = (values.get("serviceAccount") or {}).get("operator") or {}
        problems = []
        if account.get("name") != KEDA_OPERATOR_SERVICE_ACCOUNT:
            problems.append(
                f"serviceAccount.operator.name must stay {KEDA_OPERATOR_SERVICE_ACCOUNT!r} "
                f"(the Pod Identity association names it; got {account.get('name')!r})"
            )
        irsa = (((values.get("podIdentity") or {}).get("aws") or {}).get("irsa") or {})
        if irsa.get("enabled"):
            problems.append("podIdentity.aws.irsa.enabled must stay false (EKS Pod Identity)")
        if problems:
            raise ValueError("KedaSqsScaler values: " + "; ".join(problems))

    # --- per runtime -------------------------------------------------------------------
    def add_runtime(self, *, queue: RuntimeQueueRef, target: ScaleTarget, pool: GpuPoolRef,
                    task_timeout_seconds: int, scaling: RuntimeScaling | None = None,
                    values: Mapping[str, Any] | None = None) -> ScaledRuntime:
        """Scale ``target`` on ``queue``; grant the operator read access to its depth.

        Raises :class:`ScalingConsistencyError` listing every problem when the scaling
        contradicts the task timeout or the pool (``max_replicas`` above its GPU limit,
        a cooldown shorter than the longest task plus the long poll).
        """
        scaling = scaling or RuntimeScaling()
        runtime = queue.runtime
        if runtime in self._runtimes:
            raise ValueError(f"KedaSqsScaler: runtime {runtime!r} is already scaled")
        if not _DNS_LABEL.match(target.namespace):
            raise ValueError(
                f"KedaSqsScaler: namespace must be a DNS label (got {target.namespace!r})"
            )

        generated = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": target.deployment_name},
            "queue": {"url": queue.queue_url},
            "aws": {"region": self._cluster.region},
            "runtimeName": runtime,
            "minReplicaCount": 0,
            "maxReplicaCount": scaling.max_replicas,
            "messagesPerReplica": scaling.target_messages_per_replica,
            "activationQueueLength": scaling.activation_queue_length,
            "pollingIntervalSeconds": (scaling.polling_interval_seconds
                                       or self._props.polling_interval_seconds),
            "cooldownPeriodSeconds": scaling.cooldown_for(task_timeout_seconds),
            "scaleDownStabilizationSeconds": scaling.scale_down_stabilization_seconds,
            "fallback": {
                "enabled": True,
                "failureThreshold": self._props.fallback_failure_threshold,
                "replicas": scaling.fallback_replicas,
            },
            "podIdentity": {"identityOwner": "keda"},
        }
        merged = deep_merge(deep_merge(load_values(SCALER_CHART), generated), values or {})
        problems = scaling_problems(merged, pool=pool, task_timeout_seconds=task_timeout_seconds)
        if problems:
            raise ScalingConsistencyError(runtime, problems)

        self._role.add_policy(f"ReadQueueDepth-{runtime}", [
            Statement(sid="ReadQueueDepth", actions=("sqs:GetQueueAttributes",),
                      resources=(queue.queue_arn,)),
        ])
        scaled = ScaledRuntime(
            self, f"Runtime-{runtime}",
            runtime=runtime,
            namespace=target.namespace,
            values=merged,
            chart=local_chart(self, SCALER_CHART),
            # KEDA's CRDs and webhook first, then the workload it scales.
            depends_on=[self._release, *target.depends_on],
            timeout_seconds=300,
        )
        self._runtimes[runtime] = scaled
        return scaled

    # --- attributes ----------------------------------------------------------------------
    @property
    def props(self) -> KedaSqsScalerProps:
        return self._props

    @property
    def namespace(self) -> str:
        return self._props.namespace

    @property
    def operator_service_account(self) -> str:
        return KEDA_OPERATOR_SERVICE_ACCOUNT

    @property
    def operator_role_arn(self) -> str:
        return self._role.role_arn

    @property
    def operator_role_name(self) -> str:
        return self._role.role_name

    @property
    def release(self) -> TerraformResource:
        """The KEDA helm_release (CRDs, operator, webhooks)."""
        return self._release

    @property
    def values(self) -> Mapping[str, Any]:
        """The values of the KEDA release."""
        return MappingProxyType(self._values)

    @property
    def runtimes(self) -> Mapping[str, ScaledRuntime]:
        return MappingProxyType(self._runtimes)

    def scaled_runtime(self, runtime: str) -> ScaledRuntime:
        try:
            return self._runtimes[runtime]
        except KeyError:
            raise KeyError(
                f"runtime {runtime!r} is not scaled; scaled: {', '.join(self._runtimes) or 'none'}"
            ) from None


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


def _resources_under(scope: Construct) -> list[TerraformResource]:
    return [c for c in scope.node.find_all() if isinstance(c, TerraformResource)]


__all__ = [
    "KEDA_CHART_REPOSITORY",
    "KEDA_OPERATOR_SERVICE_ACCOUNT",
    "KedaSqsScaler",
    "KedaSqsScalerProps",
    "RuntimeScaling",
    "ScaleTarget",
    "ScaledRuntime",
    "ScalingConsistencyError",
    "local_chart",


    "scaling_problems",
]
