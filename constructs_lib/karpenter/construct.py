"""The :class:`KarpenterGpuPool` construct (see the package docstring)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from constructs_lib._cdktf import (
    Annotations,
    AssetType,
    Construct,
    TerraformAsset,
    TerraformResource,
)
from constructs_lib._providers import aws, helm
from constructs_lib.assets import chart_dir
from constructs_lib.durations import format_duration
from constructs_lib.helm_values import deep_merge, dump_values, load_values
from constructs_lib.iam import (
    Condition,
    Role,
    Statement,
    deny_insecure_transport,
    render_statements,
    service_principal,
)
from constructs_lib.karpenter.compatibility import check_karpenter_compatibility
from constructs_lib.karpenter.iam import controller_statements
from constructs_lib.karpenter.interruption import INTERRUPTION_RULES
from constructs_lib.karpenter.pools import GpuPoolRef, PoolPlan, plan_pools, pool_ref
from constructs_lib.karpenter.props import KarpenterGpuPoolProps
from constructs_lib.tags import apply_tags
from constructs_lib.teardown import destroy_step

if TYPE_CHECKING:
    from constructs_lib.cluster import ExistingCluster, GpuEksCluster


KARPENTER_REPOSITORY = "oci://public.ecr.aws/karpenter"
GPU_NODEPOOL_CHART = "gpu-nodepool"
# Families whose GPUs need a newer NVIDIA driver than the Bottlerocket NVIDIA variants
# ship: nodes would join without a usable GPU.
NEWER_DRIVER_FAMILY_RE = re.compile(r"^g7")


class KarpenterGpuPool(Construct):
    """Karpenter (identity, interruption handling, Helm release) and the GPU pools."""

    def __init__(self, scope: Construct, id_: str, *, cluster: GpuEksCluster | ExistingCluster,
                 props: KarpenterGpuPoolProps) -> None:
        super().__init__(scope, id_)
        check_karpenter_compatibility(props.chart_version, cluster.kubernetes_version)
        self._props = props
        self._cluster = cluster
        self._pools = {pool.name: pool for pool in plan_pools(props)}
        self._pool_of_runtime = {r: pool.name for pool in self._pools.values()
                                 for r in pool.runtimes}
        name = props.name
        newer = sorted({f for pool in self._pools.values() for f in pool.instance_families
                        if NEWER_DRIVER_FAMILY_RE.match(f)})
        if newer:
            Annotations.of(self).add_warning(
                f"instance families {', '.join(newer)}: their GPUs need a newer NVIDIA driver "
                f"than the Bottlerocket NVIDIA variants ship (as of {props.bottlerocket_alias}); "
                "nodes may join without a usable GPU. Check the Bottlerocket release notes "
                "for driver support before enabling them.")

        # --- node role --------------------------------------------------------------------
        managed = f"arn:{cluster.partition}:iam::aws:policy"
        self._node_role = Role(self, "NodeRole", name=f"{name}-karpenter-node",
                               assumed_by=service_principal("ec2.amazonaws.com"),
                               description=f"GPU nodes Karpenter launches for {name}")
        for key, policy in (("WorkerNodePolicy", "AmazonEKSWorkerNodePolicy"),
                            ("RegistryPullOnly", "AmazonEC2ContainerRegistryPullOnly"),
                            ("SsmManagedInstance", "AmazonSSMManagedInstanceCore")):
            self._node_role.attach_managed(key, f"{managed}/{policy}")
        self._node_access = aws.eks_access_entry.EksAccessEntry(
            self, "NodeAccessEntry", cluster_name=cluster.cluster_name,
            principal_arn=self._node_role.role_arn, type="EC2_LINUX")

        # --- interruption queue and rules ---------------------------------------------------
        self._queue = aws.sqs_queue.SqsQueue(
            self, "InterruptionQueue", name=f"{name}-karpenter-interruption",
            message_retention_seconds=300, sqs_managed_sse_enabled=True,
        )
        rules = []
        for key, suffix, description, pattern in INTERRUPTION_RULES:
            rule = aws.cloudwatch_event_rule.CloudwatchEventRule(
                self, key, name=f"{name}-karpenter-{suffix}", description=description,
                event_pattern=json.dumps(pattern, sort_keys=True, separators=(",", ":")),
            )
            aws.cloudwatch_event_target.CloudwatchEventTarget(
                self, f"{key}Target", rule=rule.name, arn=self._queue.arn,
                target_id="KarpenterInterruptionQueue",
            )
            rules.append(rule)
        queue_policy = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
            self, "InterruptionQueuePolicyDocument", statement=render_statements([
                Statement(
                    sid="EventBridgeDelivers", actions=("sqs:SendMessage",),
                    resources=(self._queue.arn,),
                    principals=(service_principal("events.amazonaws.com"),),
                    conditions=(Condition(test="ArnEquals", variable="aws:SourceArn",
                                          values=tuple(r.arn for r in rules)),),
                ),
                deny_insecure_transport((self._queue.arn,), "sqs"),
            ]),
        )
        queue_policy = aws.sqs_queue_policy.SqsQueuePolicy(
            self, "InterruptionQueuePolicy", queue_url=self._queue.url, policy=queue_policy.json)

        # --- controller identity ----------------------------------------------------------
        self._controller_role = cluster.pod_identity_role(
            self, "ControllerRole", name=f"{name}-karpenter-controller",
            description=f"Karpenter controller of {cluster.physical_cluster_name}")
        for key, statements in controller_statements(
                cluster_name=cluster.physical_cluster_name, cluster_arn=cluster.cluster_arn,
                region=cluster.region, account_id=cluster.account_id,
                partition=cluster.partition, node_role_arn=self._node_role.role_arn,
                queue_arn=self._queue.arn).items():
            self._controller_role.add_policy(key, statements)

        # --- Karpenter releases -----------------------------------------------------------
        values = deep_merge(load_values("karpenter"), {
            "settings": {
                "clusterName": cluster.cluster_name,
                "clusterEndpoint": cluster.cluster_endpoint,
                "interruptionQueue": self._queue.name,
            },
            # IMDS is out of reach of pods (hop limit 1): the SDK takes the region from here.
            "controller": {"env": [{"name": "AWS_REGION", "value": cluster.region}]},
            "nodeSelector": cluster.system_node_selector,
        })
        placement = controller_placement_problems(
            values, system_nodes=cluster.system_node_count)
        if placement:
            raise ValueError("; ".join(placement))
        service_account = values["serviceAccount"]["name"]
        association = cluster.add_pod_identity(
            self, "ControllerPodIdentity", namespace=props.namespace,
            service_account=service_account, role_arn=self._controller_role.role_arn)
        self._crd_release = helm.release.Release(
            self, "KarpenterCrd", name="karpenter-crd", repository=KARPENTER_REPOSITORY,
            chart="karpenter-crd", version=props.chart_version, namespace=props.namespace,
            max_history=5, cleanup_on_fail=True, wait=True, timeout=300,
            depends_on=cluster.ready,
        )
        # Destroyed right after the controller: deletes the instance profiles and launch
        # templates Karpenter created outside Terraform.
        leftovers = destroy_step(
            self, "DeleteLeftovers", script="delete-karpenter-leftovers.sh",
            args={"cluster": cluster.cluster_name, "region": cluster.region},
            depends_on=cluster.ready,
        )
        self._release = helm.release.Release(
            self, "Karpenter", name="karpenter", repository=KARPENTER_REPOSITORY,
            chart="karpenter", version=props.chart_version, namespace=props.namespace,
            skip_crds=True,  # owned by the karpenter-crd release
            values=[dump_values(values)],
            max_history=5, cleanup_on_fail=True, wait=True, timeout=600,
            depends_on=[*cluster.ready, self._crd_release, association, queue_policy,
                        leftovers],
        )

        # --- GPU pools --------------------------------------------------------------------
        chart = TerraformAsset(self, "GpuNodePoolChart", path=str(chart_dir(GPU_NODEPOOL_CHART)),
                               type=AssetType.DIRECTORY)
        pool_defaults = load_values("gpu-nodepool")
        # Destroyed after every pool and before the controller: waits until Karpenter has
        # terminated the nodes it launched (terminating stragglers after the timeout).
        longest_drain = max(p.termination_grace_period_seconds for p in self._pools.values())
        self._wait_for_nodes = destroy_step(
            self, "WaitForNodes", script="wait-for-karpenter-nodes.sh",
            args={"cluster": cluster.cluster_name, "region": cluster.region,
                  "timeout_seconds": str(longest_drain + 300)},
            depends_on=[self._release],
        )
        self._pool_releases: dict[str, TerraformResource] = {}
        for pool in self._pools.values():
            self._pool_releases[pool.name] = helm.release.Release(
                self, f"Pool-{pool.name}", name=f"gpu-{pool.name}", chart=chart.path,
                namespace=props.namespace,
                values=[dump_values(deep_merge(pool_defaults, self._pool_values(pool)))],
                # On destroy, Helm waits for the NodePools' finalizers: Karpenter drains and
                # terminates the pool's nodes first, which may take the drain bound.
                max_history=5, cleanup_on_fail=True, wait=True,
                timeout=pool.termination_grace_period_seconds + 300,
                # Destroyed before the controller, which then terminates the pool's nodes.
                depends_on=[self._release, self._node_access, self._wait_for_nodes],
            )
        apply_tags(self, dict(props.tags))

    def _pool_values(self, pool: PoolPlan) -> dict[str, Any]:
        props = self._props
        return {
            "poolName": pool.name,
            "clusterName": self._cluster.cluster_name,
            "nodeRole": self._node_role.role_name,
            "runtime": pool.runtime,
            "amiAlias": props.bottlerocket_alias,
            "allowLatestAmi": props.allow_latest_ami,
            "instanceFamilies": list(pool.instance_families),
            "spot": {"enabled": props.spot, "gpuLimit": pool.spot_gpu_limit},
            "onDemand": {"enabled": props.on_demand_fallback,
                         "gpuLimit": pool.on_demand_gpu_limit},
            "disruption": {"consolidateAfter": props.consolidate_after,
                           "budgets": [b.values() for b in props.disruption_budgets]},
            "expireAfter": props.expire_after,
            "terminationGracePeriod": format_duration(pool.termination_grace_period_seconds),
            "volumes": {"dataVolumeSize": f"{props.node_volume_gib}Gi"},
            "imageCache": {"snapshotID": pool.image_cache_snapshot_id or "",
                           "volumeInitializationRate": pool.volume_initialization_rate_mibps},
            "instanceStore": {"enabled": props.instance_store_raid0,
                              "soci": {"enabled": props.soci_parallel_pull}},
            "tags": {"sd-async/stack": props.name, **dict(props.tags)},
        }

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> KarpenterGpuPoolProps:
        return self._props

    @property
    def release(self) -> TerraformResource:
        """The ``karpenter`` helm_release (for ``depends_on``)."""
        return self._release

    @property
    def crd_release(self) -> TerraformResource:
        return self._crd_release

    @property
    def pool_releases(self) -> dict[str, TerraformResource]:
        return dict(self._pool_releases)

    @property
    def pool_names(self) -> tuple[str, ...]:
        return tuple(self._pools)

    @property
    def node_role_name(self) -> str:
        return self._node_role.role_name

    @property
    def node_role_arn(self) -> str:
        return self._node_role.role_arn

    @property
    def controller_role_arn(self) -> str:
        return self._controller_role.role_arn

    @property
    def interruption_queue_name(self) -> str:
        return self._queue.name

    @property
    def interruption_queue_arn(self) -> str:
        return self._queue.arn

    def pool_for(self, runtime: str) -> GpuPoolRef:
        """The GPU pool serving ``runtime``."""
        try:
            pool = self._pools[self._pool_of_runtime[runtime]]
        except KeyError:
            raise KeyError(f"no GPU pool for runtime {runtime!r}; configured: "
                           f"{', '.join(self._pool_of_runtime)}") from None
        return pool_ref(self._props, pool, release=self._pool_releases.get(pool.name))



def controller_placement_problems(values: Mapping[str, Any], *, system_nodes: int,
                                  nodes_setting: str = "system_node_desired_size") -> list[str]:
    """Why the Karpenter release with ``values`` could never be ready on ``system_nodes``
    system nodes (empty: it can); ``nodes_setting`` names where the node count is set."""
    replicas = int(values.get("replicas", 1))
    if replicas > system_nodes:
        # The chart keeps replicas on different nodes (required pod anti-affinity), and
        # only system nodes may run the controller: the release would never be ready.
        return [f"helm-values/karpenter.yaml runs {replicas} Karpenter replicas, each on its "
                f"own system node, but the system node group has {system_nodes}: raise "
                f"{nodes_setting} to {replicas}, or lower replicas there"]
    return []
