"""``KarpenterGpuPool``: Karpenter and the GPU node pools the runtimes run on.

Creates
    * the Karpenter controller's IAM role, assumed through EKS Pod Identity, with the
      Karpenter v1 controller permissions: instances, fleets, launch templates and instance
      profiles only when tagged for this cluster (``kubernetes.io/cluster/<name>: owned``,
      ``eks:eks-cluster-name``, ``karpenter.sh/nodepool``), ``iam:PassRole`` only on this
      pool's node role, region-bound reads;
    * the node IAM role (worker, ECR pull-only and SSM policies) and its ``EC2_LINUX``
      access entry;
    * the interruption queue (SQS, server-side encrypted, 5 minutes retention, TLS only)
      and four EventBridge rules feeding it, one per event kind so each event arrives once:
      spot interruption warnings, rebalance recommendations, AWS Health scheduled changes
      for EC2 and instance state changes towards stopping or termination;
    * Helm releases of the upstream ``karpenter-crd`` and ``karpenter`` charts
      (``oci://public.ecr.aws/karpenter``, pinned), values from ``helm-values/karpenter.yaml``
      deep-merged with the cluster name and endpoint, the interruption queue and the region;
      the controller runs on the system nodes;
    * the GPU pools: one release of the local chart ``charts/gpu-nodepool`` per runtime
      (``pool_model="dedicated"``, the default) or one shared release; each is an
      EC2NodeClass (Bottlerocket with a pinned alias, IMDSv2 hop limit 1, encrypted
      volumes, image-cache snapshot or RAID0 instance store with SOCI parallel pull) plus a
      spot NodePool (weight 100) and an on-demand fallback NodePool (weight 10).

CRDs: the ``karpenter-crd`` chart owns them (Helm upgrades templates, never a chart's
``crds/`` directory), and the ``karpenter`` release skips its own copy.

Spend cap: Karpenter limits are per NodePool. A pool may run at most ``spot_gpu_limit``
GPUs on spot and ``on_demand_gpu_limit`` on-demand, so a runtime's ceiling is the sum of
the enabled ones (``pool_for(runtime).gpu_limit``); the cluster's is the sum over pools.

A compatibility gate runs at synth: the Karpenter chart version must support the
cluster's Kubernetes version (:data:`KARPENTER_MINIMUM_FOR_KUBERNETES`).

Example::

    pool = KarpenterGpuPool(stack, "Karpenter", cluster=cluster, props=KarpenterGpuPoolProps(
        runtimes=(GpuPoolRuntime(name="sdruntime", task_timeout_seconds=600),),
    ))
    ref = pool.pool_for("sdruntime")   # node selector, tolerations, GPU cap, drain bound
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from constructs_lib._cdktf import (
    Annotations,
    AssetType,
    Construct,
    TerraformAsset,
    TerraformResource,
)
from constructs_lib._providers import aws, helm
from constructs_lib.helm_values import REPO_ROOT, deep_merge, dump_values, load_values
from constructs_lib.iam import (
    Condition,
    Principal,
    Role,
    Statement,
    render_statements,
    service_principal,
)
from constructs_lib.teardown import destroy_step

if TYPE_CHECKING:
    from constructs_lib.cluster import GpuEksCluster
    from constructs_lib.config import Config

KARPENTER_REPOSITORY = "oci://public.ecr.aws/karpenter"
DEFAULT_CHART_VERSION = "1.14.1"
DEFAULT_BOTTLEROCKET_ALIAS = "bottlerocket@v1.54.0"
DEFAULT_INSTANCE_FAMILIES = ("g6", "g6e", "g5")
GPU_NODEPOOL_CHART_DIR = REPO_ROOT / "charts" / "gpu-nodepool"
GPU_TAINT_KEY = "nvidia.com/gpu"
RUNTIME_TAINT_KEY = "sd.runtime"
POOL_LABEL = "sd.pool"
SHARED_POOL_NAME = "shared"
# Lowest Karpenter chart that supports each Kubernetes minor version
# (https://karpenter.sh/docs/upgrading/compatibility/).
KARPENTER_MINIMUM_FOR_KUBERNETES = {
    "1.29": "0.34.0",
    "1.30": "0.37.0",
    "1.31": "1.0.5",
    "1.32": "1.2.0",
    "1.33": "1.5.0",
    "1.34": "1.6.0",
    "1.35": "1.9.0",
    "1.36": "1.13.0",
}
# Families whose GPUs need a newer NVIDIA driver than the Bottlerocket NVIDIA variants
# ship: nodes would join without a usable GPU.
NEWER_DRIVER_FAMILY_RE = re.compile(r"^g7")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FAMILY_RE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*$")
_ALIAS_RE = re.compile(r"^bottlerocket@(latest|v\d+\.\d+\.\d+)$")
_SEMVER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SNAPSHOT_RE = re.compile(r"^snap-[0-9a-f]{8,17}$")
_BUDGET_NODES_RE = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")
_BUDGET_REASONS = ("Underutilized", "Empty", "Drifted")
# Tag keys Karpenter sets itself or refuses on an EC2NodeClass, and the chart's own.
_RESERVED_TAG_KEYS = ("karpenter.sh/nodepool", "karpenter.sh/nodeclaim",
                      "karpenter.k8s.aws/ec2nodeclass", "eks:eks-cluster-name",
                      POOL_LABEL, RUNTIME_TAINT_KEY)


# --- durations and versions ----------------------------------------------------------------


def duration_seconds(value: str) -> int:
    """Seconds in a Karpenter duration such as ``"1h30m"`` (``ValueError`` otherwise)."""
    match = _DURATION_RE.match(value)
    if not value or not match:
        raise ValueError(f'"{value}" is not a duration like "90s", "15m" or "1h30m"')
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """``900`` -> ``"15m"``, ``3690`` -> ``"1h1m30s"`` (the inverse of duration_seconds)."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive (got {seconds} s)")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def _version(text: str) -> tuple[int, int, int]:
    match = _SEMVER_RE.match(text)
    if not match:
        raise ValueError(f'"{text}" is not a version like 1.14.1')
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def check_karpenter_compatibility(chart_version: str, kubernetes_version: str) -> None:
    """Raise ``ValueError`` unless Karpenter ``chart_version`` supports ``kubernetes_version``."""
    if not _SEMVER_RE.match(chart_version):
        raise ValueError(f'karpenter chart_version must be an exact version like '
                         f'{DEFAULT_CHART_VERSION} (got "{chart_version}")')
    if _version(chart_version) < (1, 0, 0):
        raise ValueError(f"karpenter chart_version {chart_version} predates the karpenter.sh/v1 "
                         "API that charts/gpu-nodepool uses: use 1.0.0 or later")
    minimum = KARPENTER_MINIMUM_FOR_KUBERNETES.get(kubernetes_version)
    if minimum is None:
        known = ", ".join(KARPENTER_MINIMUM_FOR_KUBERNETES)
        raise ValueError(
            f"Kubernetes {kubernetes_version} is not in Karpenter's compatibility table "
            f"(known: {known}); check https://karpenter.sh/docs/upgrading/compatibility/ "
            "and add it to KARPENTER_MINIMUM_FOR_KUBERNETES")
    if _version(chart_version) < _version(minimum):
        raise ValueError(
            f"karpenter chart_version {chart_version} does not support Kubernetes "
            f"{kubernetes_version}: it needs {minimum} or later (or a lower kubernetes_version)")


# --- props ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DisruptionBudget:
    """A Karpenter disruption budget: at most ``nodes`` (``"10%"`` or ``"2"``) disrupted at
    once, optionally only during ``schedule`` (cron) for ``duration`` and for ``reasons``."""

    nodes: str
    schedule: str | None = None
    duration: str | None = None
    reasons: tuple[Literal["Underutilized", "Empty", "Drifted"], ...] = ()

    def problems(self, where: str) -> list[str]:
        out = []
        if not _BUDGET_NODES_RE.match(self.nodes):
            out.append(f'{where}.nodes must be a count or a percentage like "10%" '
                       f'(got "{self.nodes}")')
        if (self.schedule is None) != (self.duration is None):
            out.append(f"{where}: schedule and duration go together")
        if self.duration is not None and not re.fullmatch(r"(\d+h)?(\d+m)?", self.duration):
            out.append(f'{where}.duration must be hours and minutes like "8h" or "1h30m" '
                       f'(got "{self.duration}")')
        bad = [r for r in self.reasons if r not in _BUDGET_REASONS]
        if bad:
            out.append(f"{where}.reasons: unknown {', '.join(bad)} "
                       f"(allowed: {', '.join(_BUDGET_REASONS)})")
        return out

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": self.nodes}
        if self.schedule is not None:
            out["schedule"] = self.schedule
            out["duration"] = self.duration
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True, kw_only=True)
class GpuPoolRuntime:
    """A runtime the GPU pools serve: its name, its longest task, and (dedicated pools)
    settings that differ from the pool-wide defaults of :class:`KarpenterGpuPoolProps`."""

    name: str
    task_timeout_seconds: int
    instance_families: tuple[str, ...] | None = None
    spot_gpu_limit: int | None = None
    on_demand_gpu_limit: int | None = None
    image_cache_snapshot_id: str | None = None
    volume_initialization_rate_mibps: int | None = None

    def has_overrides(self) -> bool:
        return any(v is not None for v in (
            self.instance_families, self.spot_gpu_limit, self.on_demand_gpu_limit,
            self.image_cache_snapshot_id, self.volume_initialization_rate_mibps))


@dataclass(frozen=True, kw_only=True)
class KarpenterGpuPoolProps:
    """Settings of :class:`KarpenterGpuPool`. Only ``runtimes`` is required."""

    runtimes: tuple[GpuPoolRuntime, ...]
    name: str = "sdaas"
    namespace: str = "kube-system"
    chart_version: str = DEFAULT_CHART_VERSION
    pool_model: Literal["dedicated", "shared"] = "dedicated"
    instance_families: tuple[str, ...] = DEFAULT_INSTANCE_FAMILIES
    spot: bool = True
    on_demand_fallback: bool = True
    spot_gpu_limit: int = 8
    on_demand_gpu_limit: int = 4
    bottlerocket_alias: str = DEFAULT_BOTTLEROCKET_ALIAS
    allow_latest_ami: bool = False
    node_volume_gib: int = 200
    image_cache_snapshot_id: str | None = None
    volume_initialization_rate_mibps: int | None = None
    instance_store_raid0: bool = False
    soci_parallel_pull: bool = True
    consolidate_after: str = "5m"
    disruption_budgets: tuple[DisruptionBudget, ...] = (DisruptionBudget(nodes="10%"),)
    expire_after: str = "720h"
    termination_grace_period: str | None = None
    shutdown_margin_seconds: int = 300
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("runtimes", "instance_families", "disruption_budgets", "tags"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = self._problems()
        if problems:
            raise ValueError("KarpenterGpuPoolProps: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems: list[str] = []
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,18}[a-z0-9]", self.name):
            problems.append("name must be 2-20 characters of lowercase letters, digits and "
                            f'\'-\', starting with a letter (got "{self.name}")')
        if not _DNS_LABEL_RE.match(self.namespace):
            problems.append(f'namespace must be a DNS label (got "{self.namespace}")')
        if not _SEMVER_RE.match(self.chart_version):
            problems.append(f"chart_version must be an exact version like "
                            f'{DEFAULT_CHART_VERSION} (got "{self.chart_version}")')
        if self.pool_model not in ("dedicated", "shared"):
            problems.append(f'pool_model must be dedicated or shared (got "{self.pool_model}")')
        if not self.runtimes:
            problems.append("runtimes must name at least one runtime")
        names = [r.name for r in self.runtimes]
        if len(set(names)) != len(names):
            problems.append(f"runtime names must be unique (got {', '.join(names)})")
        for runtime in self.runtimes:
            where = f"runtimes[{runtime.name}]"
            if not (_DNS_LABEL_RE.match(runtime.name) and len(runtime.name) <= 40):
                problems.append(f"{where}: the name must be a DNS label of at most 40 "
                                "characters (it names the runtime's NodePools)")
            if runtime.task_timeout_seconds < 1:
                problems.append(f"{where}.task_timeout_seconds must be >= 1 "
                                f"(got {runtime.task_timeout_seconds})")
            if runtime.has_overrides() and self.pool_model == "shared":
                problems.append(f"{where}: per-runtime pool settings need "
                                'pool_model="dedicated" (the shared pool has one set)')
            if runtime.instance_families is not None:
                problems.extend(_family_problems(runtime.instance_families,
                                                 f"{where}.instance_families"))
            for limit in ("spot_gpu_limit", "on_demand_gpu_limit"):
                value = getattr(runtime, limit)
                if value is not None and value < 1:
                    problems.append(f"{where}.{limit} must be >= 1 (got {value})")
            if runtime.image_cache_snapshot_id or runtime.volume_initialization_rate_mibps:
                # Checked with the pool-wide values the runtime does not override.
                problems.extend(_storage_problems(
                    where,
                    snapshot=runtime.image_cache_snapshot_id or self.image_cache_snapshot_id,
                    rate=(runtime.volume_initialization_rate_mibps
                          or self.volume_initialization_rate_mibps),
                    raid0=self.instance_store_raid0))
        problems.extend(_family_problems(self.instance_families, "instance_families"))
        if not (self.spot or self.on_demand_fallback):
            problems.append("enable spot, on_demand_fallback or both: a pool needs a NodePool")
        for limit in ("spot_gpu_limit", "on_demand_gpu_limit"):
            if getattr(self, limit) < 1:
                problems.append(f"{limit} must be >= 1 (got {getattr(self, limit)})")
        if not _ALIAS_RE.match(self.bottlerocket_alias):
            problems.append("bottlerocket_alias must be bottlerocket@vX.Y.Z "
                            f'(got "{self.bottlerocket_alias}")')
        elif self.bottlerocket_alias.endswith("@latest") and not self.allow_latest_ami:
            problems.append("bottlerocket_alias bottlerocket@latest replaces every GPU node on "
                            "each Bottlerocket release: pin bottlerocket@vX.Y.Z, or set "
                            "allow_latest_ami=True to accept that")
        if not 20 <= self.node_volume_gib <= 16384:
            problems.append(f"node_volume_gib must be 20..16384 (got {self.node_volume_gib})")
        problems.extend(_storage_problems(
            "", snapshot=self.image_cache_snapshot_id,
            rate=self.volume_initialization_rate_mibps, raid0=self.instance_store_raid0))
        for field_name in ("consolidate_after", "expire_after"):
            value = getattr(self, field_name)
            if value == "Never":
                continue
            try:
                if duration_seconds(value) == 0:
                    raise ValueError
            except ValueError:
                problems.append(f'{field_name} must be a duration like "5m" or "720h", or '
                                f'"Never" (got "{value}")')
        for i, budget in enumerate(self.disruption_budgets):
            problems.extend(budget.problems(f"disruption_budgets[{i}]"))
        if not 0 <= self.shutdown_margin_seconds <= 3600:
            problems.append("shutdown_margin_seconds must be 0..3600 "
                            f"(got {self.shutdown_margin_seconds})")
        if self.termination_grace_period is not None:
            try:
                grace = duration_seconds(self.termination_grace_period)
            except ValueError as exc:
                problems.append(f"termination_grace_period: {exc}")
            else:
                for runtime in self.runtimes:
                    need = runtime.task_timeout_seconds + self.shutdown_margin_seconds
                    if grace < need:
                        problems.append(
                            f"termination_grace_period {self.termination_grace_period} "
                            f"({grace} s) is shorter than runtime {runtime.name}'s longest "
                            f"task ({runtime.task_timeout_seconds} s) plus the shutdown "
                            f"margin ({self.shutdown_margin_seconds} s): a node drain would "
                            f"kill running tasks; use at least {format_duration(need)}")
        for key, value in self.tags:
            if not key:
                problems.append("tags: a tag key is empty")
            elif key in _RESERVED_TAG_KEYS or key.startswith(("kubernetes.io/cluster",
                                                               "aws:")):
                problems.append(f'tags: "{key}" is set by Karpenter or the pool chart; '
                                "choose another key")
            if len(key) > 128 or len(str(value)) > 256:
                problems.append(f'tags: "{key[:40]}" is longer than EC2 allows '
                                "(key 128, value 256 characters)")
        return problems


def _family_problems(families: tuple[str, ...], where: str) -> list[str]:
    out = []
    if not families:
        out.append(f"{where} must name at least one instance family (e.g. g6)")
    for family in families:
        if not _FAMILY_RE.match(family):
            out.append(f'{where}: "{family}" is not an EC2 instance family like g6 or g6e')
    if len(set(families)) != len(families):
        out.append(f"{where} lists a family twice")
    return out


def _storage_problems(where: str, *, snapshot: str | None, rate: int | None,
                      raid0: bool) -> list[str]:
    prefix = f"{where}." if where else ""
    out = []
    if snapshot is not None and not _SNAPSHOT_RE.match(snapshot):
        out.append(f'{prefix}image_cache_snapshot_id must look like snap-0123456789abcdef0 '
                   f'(got "{snapshot}")')
    if snapshot and raid0:
        out.append(f"{prefix}image_cache_snapshot_id and instance_store_raid0 cannot be "
                   "combined: the snapshot is restored on the EBS data volume, and RAID0 moves "
                   "container storage to the instance store, hiding it; choose one")
    if rate is not None:
        if not snapshot:
            out.append(f"{prefix}volume_initialization_rate_mibps needs "
                       "image_cache_snapshot_id (it is the snapshot's restore rate)")
        if not 100 <= rate <= 300:
            out.append(f"{prefix}volume_initialization_rate_mibps must be 100..300 "
                       f"(got {rate})")
    return out


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
class _Pool:
    name: str
    runtime: str  # "" for the shared pool
    runtimes: tuple[str, ...]
    instance_families: tuple[str, ...]
    spot_gpu_limit: int
    on_demand_gpu_limit: int
    image_cache_snapshot_id: str | None
    volume_initialization_rate_mibps: int | None
    termination_grace_period_seconds: int


def _pools(props: KarpenterGpuPoolProps) -> list[_Pool]:
    def grace(runtimes: tuple[GpuPoolRuntime, ...]) -> int:
        if props.termination_grace_period is not None:
            return duration_seconds(props.termination_grace_period)
        longest = max(r.task_timeout_seconds for r in runtimes)
        seconds = longest + props.shutdown_margin_seconds
        return -(-seconds // 60) * 60  # whole minutes, rounded up

    if props.pool_model == "shared":
        return [_Pool(
            name=SHARED_POOL_NAME, runtime="", runtimes=tuple(r.name for r in props.runtimes),
            instance_families=props.instance_families, spot_gpu_limit=props.spot_gpu_limit,
            on_demand_gpu_limit=props.on_demand_gpu_limit,
            image_cache_snapshot_id=props.image_cache_snapshot_id,
            volume_initialization_rate_mibps=props.volume_initialization_rate_mibps,
            termination_grace_period_seconds=grace(props.runtimes),
        )]
    return [
        _Pool(
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


# --- the construct -----------------------------------------------------------------------


class KarpenterGpuPool(Construct):
    """Karpenter (identity, interruption handling, Helm release) and the GPU pools."""

    def __init__(self, scope: Construct, id_: str, *, cluster: GpuEksCluster,
                 props: KarpenterGpuPoolProps) -> None:
        super().__init__(scope, id_)
        check_karpenter_compatibility(props.chart_version, cluster.kubernetes_version)
        self._props = props
        self._cluster = cluster
        self._pools = {pool.name: pool for pool in _pools(props)}
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
                Statement(
                    sid="DenyInsecureTransport", effect="Deny", actions=("sqs:*",),
                    resources=(self._queue.arn,),
                    principals=(Principal(type="*", identifiers=("*",)),),
                    conditions=(Condition(test="Bool", variable="aws:SecureTransport",
                                          values=("false",)),),
                ),
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
        replicas = int(values.get("replicas", 1))
        system_nodes = cluster.props.system_node_desired_size
        if replicas > system_nodes:
            # The chart keeps replicas on different nodes (required pod anti-affinity), and
            # only system nodes may run the controller: the release would never be ready.
            raise ValueError(
                f"helm-values/karpenter.yaml runs {replicas} Karpenter replicas, each on its "
                f"own system node, but the system node group has {system_nodes}: raise "
                "system_node_desired_size or lower replicas")
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
        chart = TerraformAsset(self, "GpuNodePoolChart", path=str(GPU_NODEPOOL_CHART_DIR),
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

    def _pool_values(self, pool: _Pool) -> dict[str, Any]:
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
        tolerations: list[dict[str, str]] = [
            {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
        if pool.runtime:
            tolerations.append({"key": RUNTIME_TAINT_KEY, "operator": "Equal",
                                "value": pool.runtime, "effect": "NoSchedule"})
        props = self._props
        return GpuPoolRef(
            name=pool.name,
            node_selector={POOL_LABEL: pool.name},
            tolerations=tuple(tolerations),
            gpu_limit=((pool.spot_gpu_limit if props.spot else 0)
                       + (pool.on_demand_gpu_limit if props.on_demand_fallback else 0)),
            termination_grace_period_seconds=pool.termination_grace_period_seconds,
            release=self._pool_releases.get(pool.name),
        )


# EventBridge rules feeding the interruption queue: one per kind of event, with disjoint
# patterns (different source or detail-type), so each event is delivered once.
INTERRUPTION_RULES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("SpotInterruptionRule", "spot-interruption",
     "Karpenter: EC2 spot interruption warnings (2 minutes' notice)",
     {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
    ("RebalanceRule", "rebalance",
     "Karpenter: EC2 instance rebalance recommendations",
     {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]}),
    ("ScheduledChangeRule", "scheduled-change",
     "Karpenter: AWS Health scheduled changes to EC2 instances",
     {"source": ["aws.health"], "detail-type": ["AWS Health Event"],
      "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}}),
    ("InstanceStateChangeRule", "instance-state-change",
     "Karpenter: EC2 instances stopping or terminating",
     {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
      "detail": {"state": ["stopping", "stopped", "shutting-down", "terminated"]}}),
)


def controller_statements(*, cluster_name: str, cluster_arn: str, region: str,
                          account_id: str, partition: str, node_role_arn: str,
                          queue_arn: str) -> dict[str, list[Statement]]:
    """The Karpenter v1 controller policy, as inline policies keyed by name.

    Follows the upstream ``cloudformation.yaml`` of Karpenter v1: writes only on resources
    tagged for this cluster, ``iam:PassRole`` only on the node role, reads bound to the
    region. ``*`` resources only where the action has no resource-level permission.
    """
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    created = tuple(f"{ec2}:{account_id}:{kind}/*" for kind in (
        "fleet", "instance", "volume", "network-interface", "launch-template",
        "spot-instances-request"))
    profiles = (f"arn:{partition}:iam::{account_id}:instance-profile/*",)

    def eq(variable: str, *values: str) -> Condition:
        return Condition(test="StringEquals", variable=variable, values=values)

    def like(variable: str) -> Condition:
        return Condition(test="StringLike", variable=variable, values=("*",))

    request_tagged = (eq(f"aws:RequestTag/{owned}", "owned"),
                      eq("aws:RequestTag/eks:eks-cluster-name", cluster_name),
                      like("aws:RequestTag/karpenter.sh/nodepool"))
    resource_tagged = (eq(f"aws:ResourceTag/{owned}", "owned"),
                       like("aws:ResourceTag/karpenter.sh/nodepool"))
    return {
        "ControllerNodeLifecycle": [
            Statement(sid="AllowScopedEC2InstanceAccessActions",
                      actions=("ec2:RunInstances", "ec2:CreateFleet"),
                      resources=(f"{ec2}::image/*", f"{ec2}::snapshot/*",
                                 f"{ec2}:{account_id}:security-group/*",
                                 f"{ec2}:{account_id}:subnet/*",
                                 f"{ec2}:{account_id}:capacity-reservation/*")),
            Statement(sid="AllowScopedEC2LaunchTemplateAccessActions",
                      actions=("ec2:RunInstances", "ec2:CreateFleet"),
                      resources=(f"{ec2}:{account_id}:launch-template/*",),
                      conditions=resource_tagged),
            Statement(sid="AllowScopedEC2InstanceActionsWithTags",
                      actions=("ec2:RunInstances", "ec2:CreateFleet",
                               "ec2:CreateLaunchTemplate"),
                      resources=created, conditions=request_tagged),
            Statement(sid="AllowScopedResourceCreationTagging", actions=("ec2:CreateTags",),
                      resources=created,
                      conditions=(*request_tagged,
                                  eq("ec2:CreateAction", "RunInstances", "CreateFleet",
                                     "CreateLaunchTemplate"))),
            Statement(sid="AllowScopedResourceTagging", actions=("ec2:CreateTags",),
                      resources=(f"{ec2}:{account_id}:instance/*",),
                      conditions=(*resource_tagged,
                                  Condition(test="StringEqualsIfExists",
                                            variable="aws:RequestTag/eks:eks-cluster-name",
                                            values=(cluster_name,)),
                                  Condition(test="ForAllValues:StringEquals",
                                            variable="aws:TagKeys",
                                            values=("eks:eks-cluster-name",
                                                    "karpenter.sh/nodeclaim", "Name")))),
            Statement(sid="AllowScopedDeletion",
                      actions=("ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"),
                      resources=(f"{ec2}:{account_id}:instance/*",
                                 f"{ec2}:{account_id}:launch-template/*"),
                      conditions=resource_tagged),
        ],
        "ControllerIamIntegration": [
            Statement(sid="AllowPassingInstanceRole", actions=("iam:PassRole",),
                      resources=(node_role_arn,),
                      conditions=(eq("iam:PassedToService", "ec2.amazonaws.com"),)),
            Statement(sid="AllowScopedInstanceProfileCreationActions",
                      actions=("iam:CreateInstanceProfile",), resources=profiles,
                      conditions=(eq(f"aws:RequestTag/{owned}", "owned"),
                                  eq("aws:RequestTag/eks:eks-cluster-name", cluster_name),
                                  eq("aws:RequestTag/topology.kubernetes.io/region", region),
                                  like("aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"))),
            Statement(sid="AllowScopedInstanceProfileTagActions",
                      actions=("iam:TagInstanceProfile",), resources=profiles,
                      conditions=(eq(f"aws:ResourceTag/{owned}", "owned"),
                                  eq("aws:ResourceTag/topology.kubernetes.io/region", region),
                                  eq(f"aws:RequestTag/{owned}", "owned"),
                                  eq("aws:RequestTag/eks:eks-cluster-name", cluster_name),
                                  eq("aws:RequestTag/topology.kubernetes.io/region", region),
                                  like("aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass"),
                                  like("aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"))),
            Statement(sid="AllowScopedInstanceProfileActions",
                      actions=("iam:AddRoleToInstanceProfile",
                               "iam:RemoveRoleFromInstanceProfile",
                               "iam:DeleteInstanceProfile"),
                      resources=profiles,
                      conditions=(eq(f"aws:ResourceTag/{owned}", "owned"),
                                  eq("aws:ResourceTag/topology.kubernetes.io/region", region),
                                  like("aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass"))),
            Statement(sid="AllowInstanceProfileReadActions", actions=("iam:GetInstanceProfile",),
                      resources=profiles),
            Statement(sid="AllowUnscopedInstanceProfileListAction",
                      actions=("iam:ListInstanceProfiles",), resources=("*",),
                      star_reason="iam:ListInstanceProfiles lists the account: Karpenter's "
                                  "instance-profile garbage collection needs it"),
        ],
        "ControllerDiscovery": [
            Statement(sid="AllowRegionalReadActions",
                      actions=("ec2:DescribeAvailabilityZones",
                               "ec2:DescribeCapacityReservations", "ec2:DescribeImages",
                               "ec2:DescribeInstances", "ec2:DescribeInstanceTypeOfferings",
                               "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                               "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory",
                               "ec2:DescribeSubnets"),
                      resources=("*",),
                      conditions=(eq("aws:RequestedRegion", region),),
                      star_reason="EC2 Describe* actions have no resource-level permissions"),
            Statement(sid="AllowSSMReadActions", actions=("ssm:GetParameter",),
                      resources=(f"arn:{partition}:ssm:{region}::parameter/aws/service/*",)),
            Statement(sid="AllowPricingReadActions", actions=("pricing:GetProducts",),
                      resources=("*",),
                      star_reason="pricing:GetProducts has no resource-level permissions"),
            Statement(sid="AllowAPIServerEndpointDiscovery", actions=("eks:DescribeCluster",),
                      resources=(cluster_arn,)),
        ],
        "ControllerInterruption": [
            Statement(sid="AllowInterruptionQueueActions",
                      actions=("sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"),
                      resources=(queue_arn,)),
        ],
    }


def props_from_config(config: Config) -> KarpenterGpuPoolProps:
    """:class:`KarpenterGpuPoolProps` from the ``karpenter:`` section and the runtimes."""
    karpenter = config.karpenter
    gpu = karpenter.gpu
    unknown = sorted(set(karpenter.pools) - {r.name for r in config.runtimes})
    if unknown:
        raise ValueError(
            f"karpenter.pools: {', '.join(unknown)} name no runtime (runtimes: "
            f"{', '.join(r.name for r in config.runtimes)})")
    runtimes = []
    for runtime in config.runtimes:
        override = karpenter.pools.get(runtime.name)
        runtimes.append(GpuPoolRuntime(
            name=runtime.name,
            task_timeout_seconds=runtime.task_timeout_seconds,
            instance_families=(tuple(override.instance_families)
                               if override and override.instance_families else None),
            spot_gpu_limit=override.spot_gpu_limit if override else None,
            on_demand_gpu_limit=override.on_demand_gpu_limit if override else None,
            image_cache_snapshot_id=override.image_cache_snapshot_id if override else None,
            volume_initialization_rate_mibps=(override.volume_initialization_rate_mibps
                                              if override else None),
        ))
    return KarpenterGpuPoolProps(
        runtimes=tuple(runtimes),
        name=config.name,
        namespace=karpenter.namespace,
        chart_version=karpenter.chart_version,
        pool_model=karpenter.pool_model,
        instance_families=tuple(gpu.instance_families),
        spot=gpu.spot,
        on_demand_fallback=gpu.on_demand_fallback,
        spot_gpu_limit=gpu.spot_gpu_limit,
        on_demand_gpu_limit=gpu.on_demand_gpu_limit,
        bottlerocket_alias=gpu.bottlerocket_alias,
        allow_latest_ami=gpu.allow_latest_ami,
        node_volume_gib=gpu.node_volume_gib,
        image_cache_snapshot_id=gpu.image_cache_snapshot_id,
        volume_initialization_rate_mibps=gpu.volume_initialization_rate_mibps,
        instance_store_raid0=gpu.instance_store_raid0,
        consolidate_after=gpu.consolidate_after,
        disruption_budgets=tuple(
            DisruptionBudget(nodes=b.nodes, schedule=b.schedule, duration=b.duration,
                             reasons=tuple(b.reasons))
            for b in gpu.disruption_budgets),
        expire_after=gpu.expire_after,
        termination_grace_period=gpu.termination_grace_period,
        shutdown_margin_seconds=gpu.shutdown_margin_seconds,
        tags=tuple(sorted(config.tags.items())),
    )


__all__ = [
    "DEFAULT_BOTTLEROCKET_ALIAS",
    "DEFAULT_CHART_VERSION",
    "INTERRUPTION_RULES",
    "KARPENTER_MINIMUM_FOR_KUBERNETES",
    "KARPENTER_REPOSITORY",
    "DisruptionBudget",
    "GpuPoolRef",
    "GpuPoolRuntime",
    "KarpenterGpuPool",
    "KarpenterGpuPoolProps",
    "check_karpenter_compatibility",
    "controller_statements",
    "duration_seconds",
    "format_duration",
    "props_from_config",
]
