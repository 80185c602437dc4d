"""The :class:`SdRuntime` construct (see the package docstring) and the consistency checks
of its final chart values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from constructs_lib._cdktf import Construct, TerraformResource
from constructs_lib._providers import helm
from constructs_lib.charts import local_chart
from constructs_lib.helm_values import deep_merge, dump_values, load_values
from constructs_lib.keda import (
    KedaSqsScaler,
    ScaledRuntime,
    ScaleTarget,
    ScalingConsistencyError,
)
from constructs_lib.models import CHECKPOINT_DIRS
from constructs_lib.runtime.image import ContainerImage
from constructs_lib.runtime.model_bucket import ModelBucket
from constructs_lib.runtime.props import (
    NAMESPACE_CHART,
    RUNTIME_CHART,
    RuntimeConsistencyError,
    SdRuntimeProps,
)
from constructs_lib.runtime.repository import AgentImageRepository
from constructs_lib.tags import apply_tags
from task_contract import LONG_POLL_SECONDS
from task_contract.delivery import (
    VISIBILITY_TIMEOUT_SECONDS,
    default_heartbeat_seconds,
    heartbeat_fits,
)

if TYPE_CHECKING:
    from constructs_lib.cluster import ExistingCluster, GpuEksCluster
    from constructs_lib.ingress import ServerlessIngress
    from constructs_lib.karpenter import GpuPoolRef, KarpenterGpuPool


class SdRuntime(Construct):
    """One runtime's namespace, identity, chart release and scaler (module docstring)."""

    def __init__(self, scope: Construct, id_: str, *, cluster: GpuEksCluster | ExistingCluster,
                 ingress: ServerlessIngress, pool: KarpenterGpuPool, scaler: KedaSqsScaler,
                 model_bucket: ModelBucket, agent_repository: AgentImageRepository | None = None,
                 props: SdRuntimeProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        runtime = props.runtime
        namespace = props.effective_namespace
        service_account = props.service_account
        problems: list[str] = []

        try:
            queue = ingress.queue_for(runtime)
        except KeyError as exc:
            raise RuntimeConsistencyError(runtime, [str(exc.args[0])]) from None
        self._queue = queue
        try:
            pool_ref: GpuPoolRef | None = pool.pool_for(runtime)
        except (KeyError, ValueError) as exc:
            pool_ref = None
            problems.append(
                f"no GPU pool serves runtime {runtime!r} ({exc.args[0] if exc.args else exc}): "
                "add one to the Karpenter pools"
            )
        if props.agent_image is None and agent_repository is None:
            problems.append(
                "no agent image: pass agent_repository (the stack's ECR repository) or set "
                "agent_image"
            )

        # --- identity -----------------------------------------------------------------
        self._role = cluster.pod_identity_role(
            self, "Role",
            name=f"{props.name}-{runtime}-runtime",
            description=f"Pods of runtime {runtime}: queue agent and model volume",
        )
        ingress.grant_consume(self._role, runtime)
        ingress.grant_write_outputs(self._role)
        ingress.grant_update_status(self._role)
        ingress.grant_publish_results(self._role)
        ingress.grant_read_claim_checks(self._role)
        model_bucket.grant_read(self._role, prefix=props.effective_model_prefix)

        identity = Construct(self, "PodIdentity")
        association = {"namespace": namespace, "service_account": service_account}
        cluster.add_pod_identity(identity, "Association", role_arn=self._role.role_arn,
                                 **association)
        identity_resources = [c for c in identity.node.find_all()
                              if isinstance(c, TerraformResource)]

        # --- chart values ---------------------------------------------------------------
        visibility = queue.visibility_timeout_seconds
        values = runtime_chart_values(props, RuntimeBindings(
            runtime_type=queue.type, queue_url=queue.queue_url,
            visibility_timeout_seconds=visibility, result_topic_arn=ingress.result_topic_arn,
            output_bucket=ingress.output_bucket_name, task_table=ingress.task_table_name,
            task_ttl_days=ingress.task_ttl_days, region=cluster.region,
            model_bucket=model_bucket.bucket_name,
            agent_image=props.agent_image or (
                agent_repository.image(props.agent_image_tag) if agent_repository else None),
            pool=pool_ref,
        ))
        self._values = values
        problems.extend(runtime_problems(
            values, pool=pool_ref, queue_visibility_timeout_seconds=visibility,
            association=association, release_namespace=namespace,
        ))
        if pool_ref is None:
            raise RuntimeConsistencyError(runtime, problems)

        # --- Kubernetes ------------------------------------------------------------------
        # The namespace is a release of charts/namespace: every in-cluster object goes
        # through the Helm provider, so the stack needs no Kubernetes provider.
        self._namespace = helm.release.Release(
            self, "Namespace",
            name=f"{runtime}-namespace",
            chart=local_chart(self, NAMESPACE_CHART),
            namespace="default",
            values=[dump_values({
                "name": namespace,
                "labels": {"app.kubernetes.io/part-of": props.name, "sd.runtime": runtime},
                # The runtime images run as root; the agent alone is restricted.
                "podSecurity": {"enforce": "baseline", "warn": "restricted"},
            })],
            max_history=5,
            depends_on=list(cluster.ready),
        )
        self._release = helm.release.Release(
            self, "Release",
            name=runtime,
            chart=local_chart(self, RUNTIME_CHART),
            namespace=namespace,
            values=[dump_values(values)],
            # A rollout of GPU pods (node launch, image pull, model load) outlasts any
            # sensible apply timeout; readiness shows in the queue, not in the apply.
            wait=False,
            timeout=props.helm_timeout_seconds,
            max_history=5,
            # Karpenter outlives the runtime on destroy, so it can remove the GPU nodes.
            depends_on=[*cluster.ready, self._namespace, *identity_resources, pool.release,
                        *([pool_ref.release] if pool_ref.release is not None else [])],
        )

        # --- scaler ------------------------------------------------------------------------
        self._scaled: ScaledRuntime | None = None
        try:
            self._scaled = scaler.add_runtime(
                queue=queue,
                target=ScaleTarget(namespace=namespace, deployment_name=runtime,
                                   depends_on=(self._namespace, self._release)),
                pool=pool_ref,
                task_timeout_seconds=props.task_timeout_seconds,
                scaling=props.scaling,
                values=props.scaler_values,
            )
        except ScalingConsistencyError as exc:
            problems.extend(exc.problems)
        if problems:
            raise RuntimeConsistencyError(runtime, problems)
        apply_tags(self, dict(props.tags))

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> SdRuntimeProps:
        return self._props

    @property
    def runtime(self) -> str:
        return self._props.runtime

    @property
    def runtime_type(self) -> str:
        return self._queue.type

    @property
    def namespace(self) -> str:
        return self._props.effective_namespace

    @property
    def service_account(self) -> str:
        return self._props.service_account

    @property
    def deployment_name(self) -> str:
        return self._props.runtime

    @property
    def role_arn(self) -> str:
        return self._role.role_arn

    @property
    def role_name(self) -> str:
        return self._role.role_name

    @property
    def release(self) -> TerraformResource:
        return self._release

    @property
    def values(self) -> Mapping[str, Any]:
        """The sd-runtime chart values the release carries (references as tokens)."""
        return MappingProxyType(self._values)

    @property
    def scaled(self) -> ScaledRuntime:
        assert self._scaled is not None
        return self._scaled

    @property
    def model_prefix(self) -> str:
        return self._props.effective_model_prefix

    @property
    def checkpoint_prefix(self) -> str:
        """Key prefix (ending with '/') where this runtime looks for checkpoints."""
        directory = f"{CHECKPOINT_DIRS[self.runtime_type]}/"
        return f"{self.model_prefix}/{directory}" if self.model_prefix else directory


@dataclass(frozen=True, kw_only=True)
class RuntimeBindings:
    """What a runtime's chart values take from the constructs it joins: Terraform
    references in a stack; stand-ins when settings are checked before synth (the checks
    of :func:`runtime_problems` read only ``visibility_timeout_seconds`` and ``pool``)."""

    runtime_type: str
    queue_url: str
    visibility_timeout_seconds: int
    result_topic_arn: str
    output_bucket: str
    task_table: str
    task_ttl_days: int
    region: str
    model_bucket: str
    agent_image: ContainerImage | None
    pool: GpuPoolRef | None


def runtime_chart_values(props: SdRuntimeProps, bindings: RuntimeBindings) -> dict[str, Any]:
    """The sd-runtime values of one runtime: ``helm-values/sd-runtime.yaml``, the generated
    ones, then ``props.values`` (merged last)."""
    runtime_values: dict[str, Any] = {"name": props.runtime, "type": bindings.runtime_type}
    if props.image is not None:
        runtime_values["image"] = props.image.chart_values()
    if bindings.runtime_type == "sdwebui":
        runtime_values["dynamicModel"] = props.dynamic_model
        if props.models:
            runtime_values["sdModelCheckpoint"] = props.models[0]
    agent_image = bindings.agent_image
    generated: dict[str, Any] = {
        "runtime": runtime_values,
        "agent": {
            "image": agent_image.chart_values() if agent_image else {},
            "env": {
                "AGENT_VISIBILITY_TIMEOUT_SECONDS": bindings.visibility_timeout_seconds,
                "AGENT_HEARTBEAT_SECONDS": props.heartbeat_seconds,
                "AGENT_WAIT_TIME_SECONDS": LONG_POLL_SECONDS,
            },
        },
        "queue": {"url": bindings.queue_url},
        "results": {
            "topicArn": bindings.result_topic_arn,
            "bucket": bindings.output_bucket,
            "table": bindings.task_table,
            "taskTtlDays": bindings.task_ttl_days,
        },
        "aws": {"region": bindings.region},
        "models": {"bucket": bindings.model_bucket,
                   "prefix": (f"{props.effective_model_prefix}/"
                              if props.effective_model_prefix else "")},
        "serviceAccount": {"name": props.service_account},
        "autoscaled": True,
        "maxTaskSeconds": props.task_timeout_seconds,
        "shutdownMarginSeconds": props.shutdown_margin_seconds,
        "terminationGracePeriodSeconds": props.effective_grace_seconds,
    }
    if bindings.pool is not None:
        generated["nodePool"] = {
            "name": bindings.pool.name,
            "nodeSelector": dict(bindings.pool.node_selector),
            "tolerations": [dict(t) for t in bindings.pool.tolerations],
        }
    return deep_merge(deep_merge(load_values(RUNTIME_CHART), generated), props.values)


def runtime_problems(values: Mapping[str, Any], *, pool: GpuPoolRef | None,
                     queue_visibility_timeout_seconds: int,
                     association: Mapping[str, str], release_namespace: str) -> list[str]:
    """Every way the final sd-runtime values contradict the pool, the queue or the Pod
    Identity association (the checks that need no scaler)."""
    problems = []
    grace = int(values["terminationGracePeriodSeconds"])
    task = int(values["maxTaskSeconds"])
    margin = int(values["shutdownMarginSeconds"])
    if pool is not None and grace > pool.termination_grace_period_seconds:
        problems.append(
            f"the pod grace period ({grace} s) must be <= the terminationGracePeriod of pool "
            f"{pool.name!r} ({pool.termination_grace_period_seconds} s): Karpenter would kill "
            "a draining pod before its task ends"
        )
    if grace < task + margin:
        problems.append(
            f"the pod grace period ({grace} s) must be >= task_timeout_seconds + "
            f"shutdown_margin_seconds ({task + margin} s)"
        )
    env = (values.get("agent") or {}).get("env") or {}
    # What the agent uses when a value is not set (its defaults, from the task contract).
    try:
        agent_visibility = float(env.get("AGENT_VISIBILITY_TIMEOUT_SECONDS",
                                         VISIBILITY_TIMEOUT_SECONDS))
        heartbeat = float(env.get("AGENT_HEARTBEAT_SECONDS",
                                  default_heartbeat_seconds(agent_visibility)))
    except (TypeError, ValueError):
        return [*problems, "agent.env AGENT_HEARTBEAT_SECONDS and AGENT_VISIBILITY_TIMEOUT_SECONDS "
                f"must be numbers (got {env.get('AGENT_HEARTBEAT_SECONDS')!r} and "
                f"{env.get('AGENT_VISIBILITY_TIMEOUT_SECONDS')!r})"]
    if heartbeat >= queue_visibility_timeout_seconds:
        problems.append(
            f"heartbeat_seconds ({heartbeat:g}) must be < the queue's "
            f"visibility_timeout_seconds ({queue_visibility_timeout_seconds})"
        )
    if not heartbeat_fits(heartbeat, agent_visibility):
        problems.append(
            f"heartbeat_seconds ({heartbeat:g}) must be at most half the visibility timeout "
            f"the agent sets ({agent_visibility:g} s), so one late heartbeat cannot let the "
            "message reappear"
        )
    chart_account = (values.get("serviceAccount") or {}).get("name")
    if chart_account != association["service_account"]:
        problems.append(
            f"the Pod Identity association names service account "
            f"{association['service_account']!r} but the chart creates {chart_account!r}"
        )
    if release_namespace != association["namespace"]:
        problems.append(
            f"the Pod Identity association names namespace {association['namespace']!r} but "
            f"the chart is released in {release_namespace!r}"
        )
    image = (values.get("agent") or {}).get("image") or {}
    if image.get("tag") == "latest":
        problems.append("the agent image tag must name a version, not latest")
    return problems

