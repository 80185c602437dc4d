"""Props of :class:`KarpenterGpuPool` and the checks they run on construction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from constructs_lib.durations import duration_seconds, format_duration
from constructs_lib.karpenter.compatibility import DEFAULT_CHART_VERSION, SEMVER_RE
from constructs_lib.tags import Tags, check_tags, normalize_tags

DEFAULT_BOTTLEROCKET_ALIAS = "bottlerocket@v1.54.0"
DEFAULT_INSTANCE_FAMILIES = ("g6", "g6e", "g5")
# x86_64 instance families with NVIDIA GPUs (whole GPUs), the ones the Bottlerocket NVIDIA
# variants and the pool chart (kubernetes.io/arch amd64) can run a runtime on.
NVIDIA_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "gr6", "g7e", "p3", "p3dn", "p4d", "p4de",
                       "p5", "p5e", "p5en", "p6-b200")
GPU_TAINT_KEY = "nvidia.com/gpu"
RUNTIME_TAINT_KEY = "sd.runtime"
POOL_LABEL = "sd.pool"
SHARED_POOL_NAME = "shared"
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FAMILY_RE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*$")
_ALIAS_RE = re.compile(r"^bottlerocket@(latest|v\d+\.\d+\.\d+)$")
_SNAPSHOT_RE = re.compile(r"^snap-[0-9a-f]{8,17}$")
_BUDGET_NODES_RE = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")
_BUDGET_REASONS = ("Underutilized", "Empty", "Drifted")
# The NodePool CRD's patterns for a budget's schedule and duration.
BUDGET_SCHEDULE_RE = re.compile(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))"
                                r"$|^((.+)\s(.+)\s(.+)\s(.+)\s(.+))$")
BUDGET_DURATION_RE = re.compile(r"\d+h\d+m|\d+h|\d+m")
# Tag keys Karpenter sets itself or refuses on an EC2NodeClass, and the chart's own.
_RESERVED_TAG_KEYS = ("karpenter.sh/nodepool", "karpenter.sh/nodeclaim",
                      "karpenter.k8s.aws/ec2nodeclass", "eks:eks-cluster-name",
                      POOL_LABEL, RUNTIME_TAINT_KEY)


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
        if self.schedule is not None and not BUDGET_SCHEDULE_RE.match(self.schedule):
            out.append(f'{where}.schedule must be a cron schedule like "0 9 * * 1-5" or a '
                       f'macro like "@daily" (got "{self.schedule}")')
        if self.duration is not None and not BUDGET_DURATION_RE.fullmatch(self.duration):
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
    """Settings of :class:`KarpenterGpuPool`. Only ``runtimes`` is required.

    Attributes:
        runtimes: The runtimes the pools serve, with their longest task and (dedicated
            pools) their own settings.
        name: Prefix of every physical name.
        namespace: Namespace of the Karpenter controller.
        chart_version: Karpenter and karpenter-crd chart version, pinned.
        pool_model: ``"dedicated"``: one pool per runtime; ``"shared"``: one for all.
        instance_families: EC2 instance families with NVIDIA GPUs the pools may launch
            (``NVIDIA_GPU_FAMILIES``).
        spot: A spot NodePool in each pool, tried first.
        on_demand_fallback: An on-demand NodePool in each pool, as fallback.
        spot_gpu_limit: ``nvidia.com/gpu`` limit of each pool's spot NodePool.
        on_demand_gpu_limit: ``nvidia.com/gpu`` limit of each pool's on-demand NodePool.
        bottlerocket_alias: EC2NodeClass AMI alias, pinned; a new one replaces every node.
        allow_latest_ami: Permit ``bottlerocket@latest`` (each release drifts every node).
        node_volume_gib: Data volume of each GPU node, GiB.
        image_cache_snapshot_id: EBS snapshot of pre-pulled images for the data volume.
        volume_initialization_rate_mibps: Restore rate of that snapshot, 100-300 MiB/s.
        instance_store_raid0: Container storage on a RAID0 of the instance store disks.
        soci_parallel_pull: SOCI parallel image pull on the instance store (with RAID0).
        consolidate_after: How long a node stays empty or underused before removal.
        disruption_budgets: Limits on how many nodes Karpenter disrupts at once.
        expire_after: Node lifetime before replacement (``"720h"``, or ``"Never"``).
        termination_grace_period: Longest node drain; ``None``: the longest task plus
            ``shutdown_margin_seconds``, in whole minutes.
        shutdown_margin_seconds: Added to the longest task for the default drain bound.
        tags: Merged into every taggable resource the construct creates and into the GPU
            nodes' EC2 resources (EC2NodeClass tags); a mapping or pairs.
    """

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
    tags: Tags = ()

    def __post_init__(self) -> None:
        for name in ("runtimes", "instance_families", "disruption_budgets"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "tags", normalize_tags(self.tags))
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
        if not SEMVER_RE.match(self.chart_version):
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
                            f"kill running tasks: use at least {format_duration(need)}")
        problems.extend(check_tags(self.tags))
        for key, _ in self.tags:
            if key in _RESERVED_TAG_KEYS or key.startswith("kubernetes.io/cluster"):
                problems.append(f'tags: "{key}" is set by Karpenter or the pool chart: '
                                "choose another key")
        return problems


def _family_problems(families: tuple[str, ...], where: str) -> list[str]:
    out = []
    if not families:
        out.append(f"{where} must name at least one instance family (e.g. g6)")
    for family in families:
        if not _FAMILY_RE.match(family):
            out.append(f'{where}: "{family}" is not an EC2 instance family like g6 or g6e')
        elif family not in NVIDIA_GPU_FAMILIES:
            out.append(f'{where}: "{family}" instances have no NVIDIA GPU the runtimes can '
                       f"use (families with one: {', '.join(NVIDIA_GPU_FAMILIES)})")
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
                   "container storage to the instance store, hiding it: choose one")
    if rate is not None:
        if not snapshot:
            out.append(f"{prefix}volume_initialization_rate_mibps needs "
                       "image_cache_snapshot_id (it is the snapshot's restore rate)")
        if not 100 <= rate <= 300:
            out.append(f"{prefix}volume_initialization_rate_mibps must be 100..300 "
                       f"(got {rate})")
    return out


