"""The configuration file: one YAML document, parsed into typed, frozen objects.

Where it comes from (:func:`config_path`): ``SD_CONFIG`` if set, else ``config.yaml`` if
present, else the committed ``config.example.yaml``.

Every mistake is found when the file is loaded, all at once, each with its path in the file
and its line, in the words of the file::

    runtimes[1].type (line 78): must be one of sdwebui, comfyui (got "sdweb")

Loading runs in two stages. The first checks each key on its own (types, ranges, unknown
keys, duplicate keys); when it passes, the second (:mod:`sdaas.checks`) runs what needs
several keys or the constructs: it builds every construct's props as synth does, and the
rules between constructs synth would otherwise meet (replicas against the pool's GPUs,
heartbeat against the visibility timeout, ...). What loads, synthesizes.

``python -m sdaas.config`` (``make check-config``) runs both stages; ``make schema`` exports
the JSON Schema (``config.schema.json``) for editors.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from constructs_lib.models import checkpoint_name_problems
from constructs_lib.tags import check_tags
from task_contract import LONG_POLL_SECONDS

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO_ROOT / "config.example.yaml"
CONFIG_ENV = "SD_CONFIG"


# Longest physical name we derive from `name` is "<name>-<runtime>-dlq" for SQS (80 chars),
# "<name>-<runtime>-..." for IAM roles (64 chars). Limits below keep every derived name legal.
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
RUNTIME_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
DURATION_RE = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")
ADDON_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")

Path_ = tuple[str | int, ...]


class ConfigError(ValueError):
    """Every problem found in a configuration file, each with its path in the file."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}")


@dataclass(frozen=True)
class Problem:
    """One mistake: where it is in the file (keys and list indexes) and what to do."""

    path: Path_
    message: str

    def text(self, lines: Mapping[Path_, int] | None = None) -> str:
        line = _line_of(self.path, lines or {})
        where = format_path(self.path) + (f" (line {line})" if line else "")
        return f"{where}: {self.message}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)


Duration = Annotated[str, Field(pattern=DURATION_RE.pattern, min_length=2)]


class LocalState(_Model):
    backend: Literal["local"] = Field(
        "local", description="`local`: Terraform keeps its state in a file on this machine.")
    path: str = Field(
        "terraform.tfstate",
        description="State file path, relative to the stack directory "
        "(cdktf.out/stacks/<stack>).",
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError(f'must be a relative path inside the stack directory (got "{value}")')
        return value


class S3State(_Model):
    backend: Literal["s3"] = Field(
        description="`s3`: Terraform keeps its state in an S3 bucket (shared, locked).")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                        examples=["my-terraform-state"],
                        description="Bucket holding the state; it must exist before `make plan`.")
    key: str = Field("sd-async/terraform.tfstate", min_length=1, max_length=1024,
                     pattern=r"^[^/].*[^/]$|^[^/]$", description="Object key of the state.")
    region: str | None = Field(None, description="Region of the state bucket; default: the "
                               "top-level region.")
    use_lockfile: bool = Field(True, description="S3 native state locking (Terraform >= 1.10).")


class ApiConfig(_Model):
    stage_name: str = Field("prod", pattern=r"^[A-Za-z0-9_]{1,64}$",
                            description="API stage: the first path segment of every URL.")
    rate_limit_per_second: float = Field(
        30, gt=0, le=1_000_000, description="Steady requests per second per API key.")
    burst_limit: int = Field(50, gt=0, le=1_000_000,
                             description="Requests per API key allowed at once above the rate.")
    quota_per_day: int | None = Field(None, gt=0, le=1_000_000_000,
                                      description="Requests per API key per day; none: no quota.")
    log_retention_days: int = Field(
        30, description="Days the access logs are kept (a CloudWatch Logs period: 1, 3, 5, 7, "
        "14, 30, 60, 90, 120, 150, 180, 365, ...).")


class QueueConfig(_Model):
    visibility_timeout_seconds: int = Field(
        300, ge=30, le=43200,
        description="SQS visibility timeout; the agent extends it while a task runs.",
    )
    max_receive_count: int = Field(
        3, ge=1, le=1000, description="Receives before a message moves to the DLQ."
    )
    message_retention_seconds: int = Field(
        345600, ge=60, le=1209600,
        description="How long a task may wait in its queue before SQS drops it.")
    dlq_message_retention_seconds: int = Field(
        1209600, ge=60, le=1209600,
        description="How long a failed task stays in its dead-letter queue.")
    oldest_message_alarm_seconds: int = Field(
        900, ge=60, le=1209600,
        description="Alarm when a queue's oldest message is older than this.")


class OutputConfig(_Model):
    expire_after_days: int = Field(30, ge=1, le=36500,
                                   description="Output objects expire after N days.")
    task_ttl_days: int = Field(30, ge=1, le=3650,
                               description="Task records expire after N days.")
    force_destroy: bool = Field(
        False, description="Let `make destroy` delete a bucket that still holds outputs."
    )


class LambdaConfig(_Model):
    reserved_concurrency: int = Field(
        20, ge=1, le=100_000,
        description="Concurrent executions reserved for each Lambda (also its ceiling).")
    log_retention_days: int = Field(
        30, description="Days the Lambdas' logs are kept (a CloudWatch Logs period).")
    memory_mb: int = Field(512, ge=128, le=10240,
                           description="Memory of each Lambda in MB (CPU grows with it).")


class AlarmConfig(_Model):
    topic_arn: str | None = Field(
        None, description="SNS topic (in the stack's region) the alarms notify; none: the "
        "alarms only change state.")

    @field_validator("topic_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not re.match(
                r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$", value):
            raise ValueError(f'must be an SNS topic ARN (got "{value}")')
        return value


class NewVpc(_Model):
    cidr: str = Field("10.0.0.0/16", description="IPv4 block of the VPC, /16 to /20: one "
                      "private subnet per zone, plus small public ones for the NAT gateways.")
    az_count: int = Field(3, ge=2, le=6, description="Availability zones the subnets span.")
    nat_gateways: Literal["one_per_az", "single"] = Field(
        "single", description="`single`: one NAT gateway (the idle floor); `one_per_az`: "
        "egress survives a zone outage, for one more gateway per zone.")
    interface_endpoints: bool = Field(
        False, description="ECR api/dkr, STS, SQS, SNS and CloudWatch Logs interface "
        "endpoints in every zone: AWS calls stay in the VPC, for a fixed price per endpoint "
        "and zone. Off: they cross the NAT (TLS); image layers use the S3 gateway endpoint."
    )
    flow_logs: bool = Field(True, description="VPC flow logs to CloudWatch Logs (KMS).")
    availability_zones: list[str] = Field(
        [], description="Zone names to use (az_count of them, in the stack's region); empty: "
        "the first available."
    )

    @model_validator(mode="after")
    def _zones(self) -> NewVpc:
        if self.availability_zones and len(self.availability_zones) != self.az_count:
            raise ValueError(
                f"availability_zones lists {len(self.availability_zones)} zones but az_count "
                f"is {self.az_count}"
            )
        return self

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f'must be an IPv4 CIDR block (got "{value}")') from None
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"must be an IPv4 block from /16 to /20 (got {value})")
        return value


SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$",
                                 examples=["subnet-0123456789abcdef0"])]


class ExistingVpc(_Model):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$", examples=["vpc-0123456789abcdef0"],
                        description="Id of the VPC (vpc-...).")
    private_subnet_ids: list[SubnetId] = Field(
        min_length=2, description="Subnets the nodes and pods use, in at least two zones.")
    tag_subnets_for_discovery: bool = Field(
        True, description="Add karpenter.sh/discovery=<cluster> to the private subnets."
    )


class SystemNodeGroup(_Model):
    instance_type: str = Field(
        "t4g.medium", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
        description="EC2 instance type of the system nodes, where Karpenter, KEDA, CoreDNS "
        "and the observability agents run; the AMI follows its architecture (Graviton "
        "types such as t4g get arm64).",
    )
    desired_size: int = Field(
        2, ge=1, le=10, description="System nodes: at least one per Karpenter controller "
        "replica (2).")
    volume_gib: int = Field(20, ge=20, le=1024, description="Encrypted gp3 root volume.")


class ClusterConfig(_Model):
    cluster_name: str | None = Field(
        None, pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", examples=["sdaas-gpu"],
        description="EKS cluster name; defaults to the top-level name.",
    )
    kubernetes_version: str = Field(
        "1.35", pattern=r"^1\.\d{2}$",
        description='Kubernetes minor version, quoted ("1.35"): one Karpenter supports; the '
        "kube-proxy add-on version follows it.")
    vpc: NewVpc | None = Field(
        None, description="The VPC the stack creates (unless existing_vpc is set); unset: one "
        "with the defaults below.", json_schema_extra={"x-default-text": "a new VPC"})
    existing_vpc: ExistingVpc | None = Field(
        None, description="A VPC you already have, instead of a new one.")
    endpoint_public_access_cidrs: list[str] = Field(
        [], description="CIDRs allowed to reach the public API endpoint; empty = private only."
    )
    admin_role_arns: list[str] = Field(
        [], description="IAM roles given cluster admin access entries."
    )
    cluster_creator_admin: bool = Field(
        True, description="An admin access entry for the identity running Terraform."
    )
    system_node_group: SystemNodeGroup = Field(
        SystemNodeGroup(), description="The managed node group the controllers run on "
        "(Karpenter, KEDA, CoreDNS).")
    log_retention_days: int = Field(
        30, description="Days the control-plane and flow logs are kept (a CloudWatch Logs "
        "period).")
    addons: dict[str, str] = Field(
        default_factory=lambda: {
            "vpc-cni": "v1.20.4-eksbuild.2",
            "coredns": "v1.12.4-eksbuild.1",
            "kube-proxy": "v1.35.0-eksbuild.2",
            "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
            "aws-mountpoint-s3-csi-driver": "v2.1.0-eksbuild.1",
        },
        description="Managed add-on versions, pinned (`aws eks describe-addon-versions`): the "
        "five required ones, and optionally cert-manager, eks-node-monitoring-agent, "
        "kube-state-metrics, metrics-server, prometheus-node-exporter, snapshot-controller.",
    )
    cloudwatch_observability_version: str | Literal[False] = Field(
        "v6.2.0-eksbuild.1",
        description="Pinned amazon-cloudwatch-observability add-on (container logs, "
        "Container Insights and GPU metrics, the queue agent's metrics); false turns it off.",
    )
    container_log_retention_days: int = Field(
        30, description="Retention of the /aws/containerinsights/<cluster>/... log groups."
    )

    @field_validator("endpoint_public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f'"{cidr}" is not a CIDR block') from None
            if net.prefixlen == 0:
                raise ValueError(f"{cidr} opens the API endpoint to the whole internet")
        return value

    @field_validator("cloudwatch_observability_version", mode="before")
    @classmethod
    def _observability(cls, value: Any) -> Any:
        # Before the union: one problem in the file's words, not one per member.
        if value is not False and not (isinstance(value, str)
                                       and ADDON_VERSION_RE.match(value)):
            raise ValueError("must be a pinned add-on version like v6.2.0-eksbuild.1, or false "
                             f"(got {_shown(value)})")
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _role_arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", arn):
                raise ValueError(f'"{arn}" is not an IAM role ARN')
        return value

    @field_validator("addons")
    @classmethod
    def _addons(cls, value: dict[str, str]) -> dict[str, str]:
        required = {
            "vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent",
            "aws-mountpoint-s3-csi-driver",
        }
        missing = sorted(required - value.keys())
        if missing:
            raise ValueError(f"missing pinned versions for: {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _one_vpc(self) -> ClusterConfig:
        if self.vpc is not None and self.existing_vpc is not None:
            raise ValueError("set either vpc (a new VPC) or existing_vpc, not both")
        return self


_FAMILY_RE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*$")
_ALIAS_RE = r"^bottlerocket@(latest|v\d+\.\d+\.\d+)$"


def _check_families(value: list[str] | None) -> list[str] | None:
    for family in value or []:
        if not _FAMILY_RE.match(family):
            raise ValueError(f'"{family}" is not an EC2 instance family like g6 or g6e')
    if value is not None and len(set(value)) != len(value):
        raise ValueError("lists a family twice")
    return value


class DisruptionBudgetConfig(_Model):
    nodes: str = Field(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$", examples=["10%", "1"],
                       description='Nodes Karpenter may disrupt at once: "10%" or "1".')
    schedule: str | None = Field(
        None, description='Cron schedule the budget applies in ("0 9 * * 1-5", "@daily").')
    duration: str | None = Field(None, pattern=r"^(\d+h\d+m|\d+h|\d+m)$",
                                 examples=["8h", "1h30m"],
                                 description="How long after each schedule tick.")
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] = Field(
        [], description="Disruption reasons the budget limits; empty: all of them.")

    @model_validator(mode="after")
    def _schedule_with_duration(self) -> DisruptionBudgetConfig:
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration go together")
        return self


class GpuPoolConfig(_Model):
    """Settings of every GPU pool (one per runtime, or one shared)."""

    instance_families: list[str] = Field(
        ["g6", "g6e", "g5"], min_length=1,
        description="EC2 instance families with NVIDIA GPUs the pools may launch (g4dn, g5, "
        "g6, g6e, gr6, g7e, p3, p3dn, p4d, p4de, p5, p5e, p5en, p6-b200).")
    spot: bool = Field(True, description="A spot NodePool, tried first (higher weight).")
    on_demand_fallback: bool = Field(True, description="An on-demand NodePool as fallback.")
    spot_gpu_limit: int = Field(
        8, ge=1, le=10_000,
        description="nvidia.com/gpu limit of each pool's spot NodePool (spend cap).")
    on_demand_gpu_limit: int = Field(
        4, ge=1, le=10_000,
        description="nvidia.com/gpu limit of each pool's on-demand NodePool.")
    bottlerocket_alias: str = Field(
        "bottlerocket@v1.54.0", pattern=_ALIAS_RE,
        description="Pinned EC2NodeClass AMI alias; a new value replaces every GPU node.",
    )
    allow_latest_ami: bool = Field(
        False, description='Permit "bottlerocket@latest" (every release drifts all nodes).'
    )
    node_volume_gib: int = Field(200, ge=20, le=16384,
                                 description="Data volume of each GPU node (images), GiB.")
    image_cache_snapshot_id: str | None = Field(
        None, pattern=r"^snap-[0-9a-f]{8,17}$", examples=["snap-0123456789abcdef0"],
        description="EBS snapshot with pre-pulled images for the data volume.",
    )
    volume_initialization_rate_mibps: int | None = Field(
        None, ge=100, le=300, description="Restore rate of the image-cache snapshot, MiB/s "
        "(needs image_cache_snapshot_id).")
    instance_store_raid0: bool = Field(
        False, description="RAID0 instance store with SOCI parallel pull (no snapshot)."
    )
    consolidate_after: Duration = Field(
        "5m", description='How long a node stays empty or underused before Karpenter removes '
        'it ("5m", "1h").')
    disruption_budgets: list[DisruptionBudgetConfig] = Field(
        default_factory=lambda: [DisruptionBudgetConfig(nodes="10%")],
        description="Limits on how many GPU nodes Karpenter disrupts at once.",
    )
    expire_after: str = Field(
        "720h", pattern=r"^((\d+h)?(\d+m)?(\d+s)?|Never)$", min_length=2,
        description='Lifetime of a GPU node before Karpenter replaces it ("720h", or Never).')
    termination_grace_period: Duration | None = Field(
        None, description="Longest node drain; default: longest task + shutdown margin."
    )
    shutdown_margin_seconds: int = Field(
        300, ge=0, le=3600, description="Added to the longest task for the drain bound."
    )

    @field_validator("instance_families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        return _check_families(value)

    @model_validator(mode="after")
    def _storage(self) -> GpuPoolConfig:
        if self.image_cache_snapshot_id and self.instance_store_raid0:
            raise ValueError(
                "image_cache_snapshot_id and instance_store_raid0 cannot be combined: "
                "the snapshot goes on the EBS data volume, RAID0 replaces it"
            )
        if self.volume_initialization_rate_mibps and not self.image_cache_snapshot_id:
            raise ValueError("volume_initialization_rate_mibps needs image_cache_snapshot_id")
        if not (self.spot or self.on_demand_fallback):
            raise ValueError("enable spot, on_demand_fallback or both")
        if self.bottlerocket_alias.endswith("@latest") and not self.allow_latest_ami:
            raise ValueError(
                "bottlerocket_alias bottlerocket@latest replaces every GPU node on each "
                "Bottlerocket release: pin bottlerocket@vX.Y.Z or set allow_latest_ami: true"
            )
        return self


class PoolOverrideConfig(_Model):
    """Per-runtime settings of a dedicated pool (karpenter.pools.<runtime>)."""

    instance_families: list[str] | None = Field(
        None, description="This runtime's families; default: karpenter.gpu.instance_families.")
    spot_gpu_limit: int | None = Field(
        None, ge=1, le=10_000, description="Its spot GPU limit; default: "
        "karpenter.gpu.spot_gpu_limit.")
    on_demand_gpu_limit: int | None = Field(
        None, ge=1, le=10_000, description="Its on-demand GPU limit; default: "
        "karpenter.gpu.on_demand_gpu_limit.")
    image_cache_snapshot_id: str | None = Field(
        None, pattern=r"^snap-[0-9a-f]{8,17}$", examples=["snap-0123456789abcdef0"],
        description="Its image-cache snapshot; default: karpenter.gpu.image_cache_snapshot_id.")
    volume_initialization_rate_mibps: int | None = Field(
        None, ge=100, le=300, description="Its snapshot restore rate; default: "
        "karpenter.gpu.volume_initialization_rate_mibps.")

    @field_validator("instance_families")
    @classmethod
    def _families(cls, value: list[str] | None) -> list[str] | None:
        return _check_families(value)


class KarpenterConfig(_Model):
    chart_version: str = Field(
        "1.14.1", pattern=r"^\d+\.\d+\.\d+$",
        description="Karpenter (and karpenter-crd) chart version, pinned.",
    )
    namespace: str = Field("kube-system", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                           description="Namespace of the Karpenter controller.")
    pool_model: Literal["dedicated", "shared"] = Field(
        "dedicated", description="One GPU pool per runtime, or one shared by all."
    )
    gpu: GpuPoolConfig = Field(
        GpuPoolConfig(), description="Settings of every GPU pool (karpenter.pools.<runtime> "
        "overrides some for one runtime).")
    pools: dict[str, PoolOverrideConfig] = Field(
        {}, description="Per-runtime pool settings, keyed by runtime name (dedicated pools)."
    )


class KedaConfig(_Model):
    chart_version: str = Field(
        "2.20.2", pattern=r"^2\.20\.\d+$", description="KEDA Helm chart, pinned (2.20.x)."
    )
    polling_interval_seconds: int = Field(
        5, ge=1, le=300, description="Seconds between two reads of each runtime queue."
    )
    fallback_failure_threshold: int = Field(
        3, ge=1, le=1000, description="Failed queue reads before a ScaledObject falls back."
    )


BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
MODEL_PREFIX_RE = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MAX_MESSAGES_PER_REPLICA = 100_000


class ModelBucketConfig(_Model):
    existing_bucket: str | None = Field(
        None, description="Read models from this bucket; when unset the stack creates one."
    )
    existing_bucket_kms_key_arn: str | None = Field(
        None, description="KMS key of an existing bucket encrypted with SSE-KMS (runtimes "
        "get kms:Decrypt on it)."
    )
    force_destroy: bool = Field(
        False, description="Let `make destroy` delete a created bucket that still holds models."
    )

    @field_validator("existing_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not BUCKET_NAME_RE.match(value) or ".." in value):
            raise ValueError(f'"{value}" is not a valid S3 bucket name')
        return value

    @field_validator("existing_bucket_kms_key_arn")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not KMS_KEY_ARN_RE.match(value):
            raise ValueError(f'must be a KMS key ARN (got "{value}")')
        return value

    @model_validator(mode="after")
    def _key_needs_bucket(self) -> ModelBucketConfig:
        if self.existing_bucket_kms_key_arn and not self.existing_bucket:
            raise ValueError(
                "existing_bucket_kms_key_arn needs existing_bucket (a created bucket has its "
                "own key)"
            )
        return self


def _checkpoint(name: str) -> str:
    problems = checkpoint_name_problems(name)
    if problems:
        raise ValueError("; ".join(problems))
    return name


CheckpointName = Annotated[str, AfterValidator(_checkpoint)]


class RuntimeConfig(_Model):
    name: str = Field(description="Runtime name, as clients send in metadata.runtime.")
    type: Literal["sdwebui", "comfyui"] = Field(
        description="`sdwebui` (AUTOMATIC1111 WebUI API) or `comfyui` (ComfyUI workflows).")
    models: list[CheckpointName] = Field(
        [], description="Checkpoint file names this runtime serves (sdwebui: routes v1alpha1 "
        "bodies; the first is loaded at start)."
    )
    dynamic_model: bool = Field(False, description="A request may pick its checkpoint.")
    model_prefix: str | None = Field(
        None, description='Prefix in the model bucket; defaults to the runtime name; "" '
        "mounts the whole bucket (the reference's layout)."
    )
    image: str | None = Field(
        None, description="Runtime container image override (repository:tag or "
        "repository@sha256:...); default: the chart's image for the type."
    )
    agent_image: str | None = Field(
        None, description="Queue agent image override (repository:tag or "
        "repository@sha256:...); default: the stack's ECR repository with agent_image_tag."
    )
    agent_image_tag: str = Field(
        "0.1.0", description="Tag of the queue agent image in the stack's ECR repository "
        "(`make agent-image` pushes it); never `latest`."
    )
    seconds_per_image: float = Field(
        5.0, gt=0, le=86400, description="Typical seconds to make one image (sizes the "
        "scaling target).")
    target_wait_seconds: float = Field(
        60.0, gt=0, le=86400, description="Longest a task should wait for a replica (sizes the "
        "scaling target).")
    messages_per_replica: int | None = Field(
        None, ge=1, le=MAX_MESSAGES_PER_REPLICA,
        description="Override floor(target_wait_seconds / seconds_per_image).")
    max_replicas: int = Field(
        4, ge=1, le=10_000,
        description="Most replicas, one GPU each: at most the GPU limit of the runtime's pool.")
    task_timeout_seconds: int = Field(
        600, ge=30, le=43200,
        description="Longest a task may run; bounds the pod grace period and the node drain.")
    heartbeat_seconds: int = Field(
        30, ge=1, le=43200, description="Interval of the agent's visibility extensions; at "
        "most half of queue.visibility_timeout_seconds."
    )
    cooldown_period_seconds: int | None = Field(
        None, ge=0, le=86400, description="KEDA cooldownPeriod before scaling to zero; default "
        "task_timeout_seconds + the 20 s long poll."
    )
    scale_down_stabilization_seconds: int = Field(
        300, ge=0, le=3600, description="HPA scale-down stabilization window."
    )
    fallback_replicas: int = Field(
        1, ge=0, le=10_000, description="Replicas while KEDA cannot read the queue."
    )
    termination_grace_period_seconds: int | None = Field(
        None, ge=30, le=86400, description="Pod grace period; default task_timeout_seconds + "
        "90 (finish the task in hand, last long poll, runtime stop)."
    )
    chart_values: dict[str, Any] = Field(
        {}, description="Extra values for this runtime's sd-runtime release, merged last "
        "(keys of charts/sd-runtime/README.md, checked against its values.schema.json)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RUNTIME_NAME_RE.match(value):
            raise ValueError(
                "must be 2-20 characters of lowercase letters, digits and '-', starting with "
                f'a letter (got "{value}")'
            )
        return value

    @field_validator("model_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value and (not MODEL_PREFIX_RE.match(value) or ".." in value.split("/")):
            raise ValueError(
                "must be a key prefix without leading or trailing '/' like \"models/webui\" "
                f'(got "{value}")'
            )
        return value

    @field_validator("agent_image_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not IMAGE_TAG_RE.match(value):
            raise ValueError(f'"{value}" is not a valid image tag')
        if value == "latest":
            raise ValueError(
                "the agent image tag must name a version: the ECR repository has immutable "
                'tags, so "latest" could never be updated'
            )
        return value

    @model_validator(mode="after")
    def _runtime_rules(self) -> RuntimeConfig:
        problems = []
        cooldown = self.cooldown_period_seconds
        if cooldown is not None and cooldown < self.task_timeout_seconds + LONG_POLL_SECONDS:
            problems.append(
                f"cooldown_period_seconds ({cooldown}) must be >= task_timeout_seconds + "
                f"{LONG_POLL_SECONDS} s long poll ({self.task_timeout_seconds + LONG_POLL_SECONDS})"
            )
        if (self.messages_per_replica is None
                and self.target_wait_seconds / self.seconds_per_image > MAX_MESSAGES_PER_REPLICA):
            problems.append(
                f"target_wait_seconds / seconds_per_image ({self.target_wait_seconds:g} / "
                f"{self.seconds_per_image:g}) makes more than {MAX_MESSAGES_PER_REPLICA} "
                "messages per replica: check seconds_per_image, or set messages_per_replica")
        if self.fallback_replicas > self.max_replicas:
            problems.append(
                f"fallback_replicas ({self.fallback_replicas}) must be <= max_replicas "
                f"({self.max_replicas})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def effective_model_prefix(self) -> str:
        """Key prefix of this runtime's models in the model bucket (no trailing '/'; empty:
        the whole bucket)."""
        return self.name if self.model_prefix is None else self.model_prefix


def _tags(value: dict[str, str]) -> dict[str, str]:
    problems = check_tags(value.items())
    if problems:
        raise ValueError("; ".join(p.removeprefix("tags: ") for p in problems))
    return value


class Config(_Model):
    """The whole configuration file."""

    name: str = Field("sdaas", description="Prefix of every physical name.")
    region: str = Field("us-west-2", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
                        description="AWS region of the whole stack.")
    tags: dict[str, str] = Field(
        {}, description="Tags on every AWS resource the stack creates, GPU nodes included.")
    state: LocalState | S3State = Field(
        default_factory=LocalState, discriminator="backend",
        description="Where Terraform keeps its state: `backend: local` or `backend: s3`.")
    api: ApiConfig = Field(ApiConfig(), description="The REST API: stage, per-key throttling "
                           "and quota, access logs.")
    queue: QueueConfig = Field(QueueConfig(), description="Every runtime's SQS queue and "
                               "dead-letter queue.")
    outputs: OutputConfig = Field(OutputConfig(), description="The output bucket and the task "
                                  "table.")
    lambdas: LambdaConfig = Field(LambdaConfig(), alias="lambda",
                                  description="The ingest and status Lambdas.")
    alarms: AlarmConfig = Field(AlarmConfig(), description="Where the alarms notify.")
    cluster: ClusterConfig = Field(ClusterConfig(), description="The EKS cluster: network, "
                                   "system nodes, access, add-ons.")
    karpenter: KarpenterConfig = Field(KarpenterConfig(), description="Karpenter and the GPU "
                                       "node pools.")
    keda: KedaConfig = Field(KedaConfig(), description="KEDA, which scales each runtime on its "
                             "queue.")
    model_bucket: ModelBucketConfig = Field(
        ModelBucketConfig(), description="The bucket the runtimes read checkpoints from.")
    runtimes: list[RuntimeConfig] = Field(
        min_length=1, description="The runtimes, at least one: each gets a queue, a namespace, "
        "a Deployment and a scaler.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must be 2-20 characters of lowercase letters, digits and '-', starting with "
                f'a letter (got "{value}")'
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tag_rules(cls, value: dict[str, str]) -> dict[str, str]:
        return _tags(value)

    def runtime(self, name: str) -> RuntimeConfig:
        for runtime in self.runtimes:
            if runtime.name == name:
                return runtime
        raise KeyError(name)


# --- the YAML document ------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: its data, the line of every key and list item, the source text
    of every unquoted scalar (``1.30`` that YAML reads as 1.3), and its duplicate keys."""

    data: Any
    lines: Mapping[Path_, int] = field(default_factory=dict)
    plain_scalars: Mapping[Path_, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def read_yaml(text: str) -> Document:
    """Parse one YAML document; a key given twice in a mapping is a problem (YAML parsers
    keep the last silently). Raises ``yaml.YAMLError`` for text that is not YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None)
        lines: dict[Path_, int] = {}
        plain: dict[Path_, str] = {}
        problems: list[Problem] = []
        _walk(node, (), lines, plain, problems, set())
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return Document(data, lines, plain, tuple(problems))


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], plain: dict[Path_, str],
          problems: list[Problem], seen: set[int]) -> None:
    if id(node) in seen:  # an alias of a node already walked (and no endless recursion)
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        if node.style is None:
            plain[path] = node.value
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), item.start_mark.line + 1)
            _walk(item, (*path, index), lines, plain, problems, seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue  # complex keys are refused later; merge keys repeat on purpose
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first:
                problems.append(Problem(
                    (*path, key), f"duplicate key (first on line {first[key]}): YAML would "
                    "keep only the last value; remove one"))
            first.setdefault(key, line)
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, plain, problems, seen)


def _line_of(path: Path_, lines: Mapping[Path_, int]) -> int | None:
    """The line of ``path``, else of its nearest parent the file has."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


# --- errors in the user's words -------------------------------------------------------


_UNION_TAGS = ("LocalState", "S3State", "local", "s3")


def format_path(path: Iterable[Any]) -> str:
    """``("runtimes", 1, "name")`` -> ``runtimes[1].name``; a key that is not a plain name
    is quoted: ``tags["karpenter.sh/nodepool"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(str(part))}]"
    return out or "(top level)"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _loc(error: Any) -> Path_:
    """The path of a pydantic error in the file (``state``'s union branch tags are not
    keys)."""
    loc = tuple(error["loc"])
    if loc[:1] == ("state",) and loc[1:2] and loc[1] in _UNION_TAGS:
        return (loc[0], *loc[2:])
    return loc


def _message(error: Any, plain: str | None) -> str:
    kind = error["type"]
    got = error.get("input")
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "")
        expected = expected.replace(" or ", ", ")
        return f'must be one of {expected} (got "{got}")'
    if kind == "extra_forbidden":
        return _unknown_key(_loc(error))
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "string_pattern_mismatch":
        like = " or ".join(f'"{e}"' for e in _examples_at(_loc(error)))
        shape = f"must look like {like}" if like else "does not match"
        return f'{shape} (got "{got}"; the pattern is {error["ctx"]["pattern"]})'
    if kind == "union_tag_invalid":
        return f'backend must be one of local, s3 (got "{error["ctx"].get("tag")}")'
    if kind == "string_type" and plain is not None and not isinstance(got, dict | list):
        return f'must be text: YAML read the unquoted {plain} as {_shown(got)}; quote it: "{plain}"'
    text = error["msg"]
    return f"{text[0].lower()}{text[1:]} (got {_shown(got)})"


def _shown(value: Any, limit: int = 80) -> str:
    """``value`` as the file would spell it, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):  # a YAML alias made a cycle
        text = "<a value that contains itself>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown_key(path: Path_) -> str:
    """``unknown key``, with the nearest key the file may have there."""
    known = keys_at(Config, path[:-1])
    close = difflib.get_close_matches(str(path[-1]), known, n=1) if path else []
    return f"unknown key (did you mean {close[0]}?)" if close else "unknown key"


def keys_at(annotation: Any, path: Path_) -> list[str]:
    """The keys a mapping at ``path`` below ``annotation`` may have (its models' fields)."""
    return [f.alias or n for a in _annotations_at(annotation, path)[0]
            for kind in _concrete(a)
            if isinstance(kind, type) and issubclass(kind, BaseModel)
            for n, f in kind.model_fields.items()]


def _examples_at(path: Path_) -> list[str]:
    """How a value at ``path`` of the file looks: the examples of its field (of a list's
    items, for an item), else its default when that is text."""
    fields = _annotations_at(Config, path)[1]
    for info in fields:
        if info.examples:
            return [str(e) for e in info.examples]
    return [info.default for info in fields if isinstance(info.default, str)][:1]


def _annotations_at(annotation: Any, path: Path_) -> tuple[list[Any], list[FieldInfo]]:
    """The annotations a value at ``path`` below ``annotation`` may have, and the fields
    that describe it, the most specific first (an item's own ``Field``, then its list's)."""
    current: list[Any] = [annotation]
    fields: list[FieldInfo] = []
    for part in path:
        below: list[Any] = []
        found: list[FieldInfo] = []
        for kind in (k for a in current for k in _concrete(a)):
            if typing.get_origin(kind) in (list, dict):
                item = typing.get_args(kind)[-1]  # part is an index or a key
                below.append(item)
                if typing.get_origin(item) is typing.Annotated:
                    found += [m for m in item.__metadata__ if isinstance(m, FieldInfo)]
                found += fields
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                matched = [f for n, f in kind.model_fields.items() if part in (n, f.alias)]
                below += [f.annotation for f in matched]
                found += matched
        current, fields = below, found
    return current, fields


def _concrete(annotation: Any) -> list[Any]:
    """``X | None`` and ``Annotated[X, ...]`` unwrapped to ``X`` (every member of a union)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _concrete(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _concrete(arg)]
    return [annotation]


def _schema_problems(data: Any, plain: Mapping[Path_, str]) -> list[Problem]:
    if not isinstance(data, dict):
        return [Problem((), "must be a mapping of keys to values")]
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        return [Problem(_loc(e), _message(e, plain.get(_loc(e)))) for e in exc.errors()]
    except (RecursionError, ValueError):  # pydantic refuses a cycle with a ValueError
        return [Problem((), "a YAML alias refers to a node that contains it: write the "
                        "values out instead")]
    return []


def problems_of(document: Document, *, cross_checks: bool = True) -> list[Problem]:
    """Every problem of a parsed file: duplicate keys and each key on its own first; when
    those pass, the checks that need several keys or the constructs (:mod:`sdaas.checks`)."""
    problems = [*document.problems, *_schema_problems(document.data, document.plain_scalars)]
    if problems or not cross_checks:
        return problems
    from sdaas.checks import consistency_problems  # noqa: PLC0415 - imports the library

    return consistency_problems(Config.model_validate(document.data))


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed YAML document; raise :class:`ConfigError` listing every problem."""
    return _config(Document(data), source)


def _config(document: Document, source: str, *, cross_checks: bool = True) -> Config:
    problems = problems_of(document, cross_checks=cross_checks)
    if problems:
        raise ConfigError(source, [p.text(document.lines) for p in problems])
    return Config.model_validate(document.data)


def config_path(cwd: Path | None = None) -> Path:
    """``SD_CONFIG``, else ``config.yaml`` in the repository, else the example."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    root = cwd or REPO_ROOT
    local = root / "config.yaml"
    return local if local.exists() else EXAMPLE_CONFIG


def load_config(path: Path | str | None = None, *, cross_checks: bool = True) -> Config:
    """Read and validate the configuration file (``cross_checks=False``: each key on its
    own only, without importing the constructs; what synth accepts needs both)."""
    file = Path(path) if path is not None else config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(file), [f"not UTF-8 text: {exc.reason}"]) from None
    try:
        document = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(file), [_yaml_error(exc)]) from None
    return _config(document, str(file), cross_checks=cross_checks)


def _yaml_error(error: yaml.YAMLError) -> str:
    """A YAML syntax error on one line, with where it is in the file."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    return f"not valid YAML{where}: " + (": ".join(p for p in parts if p) or str(error))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, for editors."""
    schema = Config.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sd-async-eks configuration"
    return schema


def main(argv: list[str] | None = None) -> int:
    """``python -m sdaas.config [--schema | --stack-name]``.

    Without flags: check the configuration file as synth does (exit 2 listing every
    problem). ``--schema``: print the JSON Schema. ``--stack-name``: print the name of the
    stack ``main.py`` writes (checks each key only: fast, for the Makefile).
    """
    import sys  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    if "--schema" in args:
        print(json.dumps(json_schema(), indent=2, sort_keys=True))
        return 0
    try:
        cfg = load_config(cross_checks="--stack-name" not in args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if "--stack-name" in args:
        print(cfg.name)
        return 0
    print(f"{config_path()}: OK ({len(cfg.runtimes)} runtimes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
