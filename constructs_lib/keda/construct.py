"""The :class:`KedaSqsScaler` construct (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from constructs_lib._cdktf import (
    Construct,
    TerraformResource,
)
from constructs_lib._providers import helm
from constructs_lib.charts import local_chart
from constructs_lib.helm_values import deep_merge, dump_values, load_values
from constructs_lib.iam import Statement
from constructs_lib.keda.props import (
    _DNS_LABEL,
    KEDA_CHART,
    KEDA_CHART_REPOSITORY,
    KEDA_OPERATOR_SERVICE_ACCOUNT,
    SCALER_CHART,
    KedaSqsScalerProps,
    RuntimeScaling,
    ScaleTarget,
    ScalingConsistencyError,
)
from constructs_lib.keda.scaled import ScaledRuntime, scaling_problems
from constructs_lib.tags import apply_tags

if TYPE_CHECKING:
    from constructs_lib.cluster import ExistingCluster, GpuEksCluster
    from constructs_lib.ingress import RuntimeQueueRef
    from constructs_lib.karpenter import GpuPoolRef


class KedaSqsScaler(Construct):
    """KEDA on the cluster, and a ScaledObject per runtime queue (see the module docstring)."""

    def __init__(self, scope: Construct, id_: str, *, cluster: GpuEksCluster | ExistingCluster,
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
        apply_tags(self, dict(props.tags))

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

        merged = scaler_values(self._props, runtime=runtime, queue_url=queue.queue_url,
                               region=self._cluster.region,
                               deployment_name=target.deployment_name,
                               task_timeout_seconds=task_timeout_seconds, scaling=scaling,
                               values=values)
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


def scaler_values(props: KedaSqsScalerProps, *, runtime: str, queue_url: str, region: str,
                  deployment_name: str, task_timeout_seconds: int, scaling: RuntimeScaling,
                  values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keda-sqs-scaler values of one runtime: ``helm-values/keda-sqs-scaler.yaml``, the
    generated ones, then ``values`` (merged last). In a stack ``queue_url`` and ``region``
    are Terraform references; :func:`scaling_problems` reads neither."""
    generated = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                           "name": deployment_name},
        "queue": {"url": queue_url},
        "aws": {"region": region},
        "runtimeName": runtime,
        "minReplicaCount": 0,
        "maxReplicaCount": scaling.max_replicas,
        "messagesPerReplica": scaling.target_messages_per_replica,
        "activationQueueLength": scaling.activation_queue_length,
        "pollingIntervalSeconds": (scaling.polling_interval_seconds
                                   or props.polling_interval_seconds),
        "cooldownPeriodSeconds": scaling.cooldown_for(task_timeout_seconds),
        "scaleDownStabilizationSeconds": scaling.scale_down_stabilization_seconds,
        "fallback": {
            "enabled": True,
            "failureThreshold": props.fallback_failure_threshold,
            "replicas": scaling.fallback_replicas,
        },
        "podIdentity": {"identityOwner": "keda"},
    }
    return deep_merge(deep_merge(load_values(SCALER_CHART), generated), values or {})


def _resources_under(scope: Construct) -> list[TerraformResource]:
    return [c for c in scope.node.find_all() if isinstance(c, TerraformResource)]


