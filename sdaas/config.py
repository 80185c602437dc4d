"""The configuration file: one YAML document, parsed into typed, frozen objects.

Where it comes from (:func:`config_path`): ``SD_CONFIG`` if set, else ``config.yaml`` if
present, else the committed ``config.example.yaml``.

Unknown keys are rejected, and every problem is reported at once with its path in the file::

    runtimes[1].type: must be one of sdwebui, comfyui (got "sdweb")

``make schema`` exports the JSON Schema (``config.schema.json``) for editors.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class ConfigError(ValueError):
    """Every problem found in a configuration file, each with its path in the file."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)



Duration = Annotated[str, Field(pattern=DURATION_RE.pattern, min_length=2)]


class LocalState(_Model):
    backend: Literal["local"] = "local"
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
    backend: Literal["s3"]
    bucket: str
    key: str = "sd-async/terraform.tfstate"
    region: str | None = Field(None, description="Defaults to the top-level region.")
    use_lockfile: bool = Field(True, description="S3 native state locking (Terraform >= 1.10).")


class ApiConfig(_Model):
    stage_name: str = Field("prod", pattern=r"^[A-Za-z0-9_]{1,64}$")
    rate_limit_per_second: float = Field(30, gt=0, description="Per API key steady rate.")
    burst_limit: int = Field(50, gt=0, description="Per API key burst.")
    quota_per_day: int | None = Field(None, gt=0, description="Optional per-key daily quota.")
    log_retention_days: int = 30


class QueueConfig(_Model):
    visibility_timeout_seconds: int = Field(
        300, ge=30, le=43200,
        description="SQS visibility timeout; the agent extends it while a task runs.",
    )
    max_receive_count: int = Field(
        3, ge=1, le=1000, description="Receives before a message moves to the DLQ."
    )
    message_retention_seconds: int = Field(345600, ge=60, le=1209600)
    dlq_message_retention_seconds: int = Field(1209600, ge=60, le=1209600)
    oldest_message_alarm_seconds: int = Field(
        900, ge=60, description="Alarm when a queue's oldest message is older than this."
    )


class OutputConfig(_Model):
    expire_after_days: int = Field(30, ge=1, description="Output objects expire after N days.")
    task_ttl_days: int = Field(30, ge=1, description="Task records expire after N days.")
    force_destroy: bool = Field(
        False, description="Let `make destroy` delete a bucket that still holds outputs."
    )


class LambdaConfig(_Model):
    reserved_concurrency: int = Field(20, ge=1)
    log_retention_days: int = 30
    memory_mb: int = Field(512, ge=128, le=10240)


class AlarmConfig(_Model):
    topic_arn: str | None = Field(None, description="SNS topic for alarm actions (optional).")

    @field_validator("topic_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:.+$", value):
            raise ValueError(f'must be an SNS topic ARN (got "{value}")')
        return value


class NewVpc(_Model):
    cidr: str = "10.0.0.0/16"
    az_count: int = Field(3, ge=2, le=6)
    nat_gateways: Literal["one_per_az", "single"] = Field(
        "single", description="One NAT gateway (the idle floor), or one per zone "
        "(zone-independent egress, one more gateway per zone)."
    )
    interface_endpoints: bool = Field(
        False, description="ECR api/dkr, STS, SQS, SNS and CloudWatch Logs interface "
        "endpoints in every zone: AWS calls stay in the VPC, for a fixed price per endpoint "
        "and zone. Off: they cross the NAT (TLS); image layers use the S3 gateway endpoint."
    )
    flow_logs: bool = Field(True, description="VPC flow logs to CloudWatch Logs (KMS).")
    availability_zones: list[str] = Field(
        [], description="Zone names to use (az_count of them); empty: the first available."
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


class ExistingVpc(_Model):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    private_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        min_length=2
    )
    tag_subnets_for_discovery: bool = Field(
        True, description="Add karpenter.sh/discovery=<cluster> to the private subnets."
    )


class SystemNodeGroup(_Model):
    instance_type: str = Field(
        "t4g.medium", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
        description="Where Karpenter, KEDA, CoreDNS and the observability agents run; the "
        "AMI follows its architecture (Graviton types such as t4g get arm64).",
    )
    desired_size: int = Field(2, ge=1, le=10)
    volume_gib: int = Field(20, ge=20, le=1024, description="Encrypted gp3 root volume.")


class ClusterConfig(_Model):
    cluster_name: str | None = Field(
        None, pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$",
        description="EKS cluster name; defaults to the top-level name.",
    )
    kubernetes_version: str = Field("1.35", pattern=r"^1\.\d{2}$")
    vpc: NewVpc | None = None
    existing_vpc: ExistingVpc | None = None
    endpoint_public_access_cidrs: list[str] = Field(
        [], description="CIDRs allowed to reach the public API endpoint; empty = private only."
    )
    admin_role_arns: list[str] = Field(
        [], description="IAM roles given cluster admin access entries."
    )
    cluster_creator_admin: bool = Field(
        True, description="An admin access entry for the identity running Terraform."
    )
    system_node_group: SystemNodeGroup = SystemNodeGroup()
    log_retention_days: int = Field(30, description="Control-plane and flow log retention.")
    addons: dict[str, str] = Field(
        default_factory=lambda: {
            "vpc-cni": "v1.20.4-eksbuild.2",
            "coredns": "v1.12.4-eksbuild.1",
            "kube-proxy": "v1.35.0-eksbuild.2",
            "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
            "aws-mountpoint-s3-csi-driver": "v2.1.0-eksbuild.1",
        },
        description="Managed add-on versions, pinned (`aws eks describe-addon-versions`).",
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

    @field_validator("cloudwatch_observability_version")
    @classmethod
    def _observability(cls, value: str | Literal[False]) -> str | Literal[False]:
        if value is not False and not ADDON_VERSION_RE.match(value):
            raise ValueError(f'must be a pinned add-on version like v6.2.0-eksbuild.1, or false '
                             f'(got "{value}")')
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
    nodes: str = Field(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$",
                       description='Nodes Karpenter may disrupt at once: "10%" or "1".')
    schedule: str | None = Field(None, description="Cron schedule the budget applies in.")
    duration: str | None = Field(None, pattern=r"^(\d+h)?(\d+m)?$",
                                 description="How long after each schedule tick.")
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] = []

    @model_validator(mode="after")
    def _schedule_with_duration(self) -> DisruptionBudgetConfig:
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration go together")
        return self


class GpuPoolConfig(_Model):
    """Settings of every GPU pool (one per runtime, or one shared)."""

    instance_families: list[str] = Field(["g6", "g6e", "g5"], min_length=1)
    spot: bool = Field(True, description="A spot NodePool, tried first (higher weight).")
    on_demand_fallback: bool = Field(True, description="An on-demand NodePool as fallback.")
    spot_gpu_limit: int = Field(
        8, ge=1, description="nvidia.com/gpu limit of each pool's spot NodePool (spend cap)."
    )
    on_demand_gpu_limit: int = Field(
        4, ge=1, description="nvidia.com/gpu limit of each pool's on-demand NodePool."
    )
    bottlerocket_alias: str = Field(
        "bottlerocket@v1.54.0", pattern=_ALIAS_RE,
        description="Pinned EC2NodeClass AMI alias; a new value replaces every GPU node.",
    )
    allow_latest_ami: bool = Field(
        False, description='Permit "bottlerocket@latest" (every release drifts all nodes).'
    )
    node_volume_gib: int = Field(200, ge=20, le=16384, description="Data volume (images).")
    image_cache_snapshot_id: str | None = Field(
        None, pattern=r"^snap-[0-9a-f]{8,17}$",
        description="EBS snapshot with pre-pulled images for the data volume.",
    )
    volume_initialization_rate_mibps: int | None = Field(None, ge=100, le=300)
    instance_store_raid0: bool = Field(
        False, description="RAID0 instance store with SOCI parallel pull (no snapshot)."
    )
    consolidate_after: Duration = "5m"
    disruption_budgets: list[DisruptionBudgetConfig] = Field(
        default_factory=lambda: [DisruptionBudgetConfig(nodes="10%")]
    )
    expire_after: str = Field("720h", pattern=r"^((\d+h)?(\d+m)?(\d+s)?|Never)$", min_length=2)
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

    instance_families: list[str] | None = None
    spot_gpu_limit: int | None = Field(None, ge=1)
    on_demand_gpu_limit: int | None = Field(None, ge=1)
    image_cache_snapshot_id: str | None = Field(None, pattern=r"^snap-[0-9a-f]{8,17}$")
    volume_initialization_rate_mibps: int | None = Field(None, ge=100, le=300)

    @field_validator("instance_families")
    @classmethod
    def _families(cls, value: list[str] | None) -> list[str] | None:
        return _check_families(value)


class KarpenterConfig(_Model):
    chart_version: str = Field(
        "1.14.1", pattern=r"^\d+\.\d+\.\d+$",
        description="Karpenter (and karpenter-crd) chart version, pinned.",
    )
    namespace: str = Field("kube-system", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    pool_model: Literal["dedicated", "shared"] = Field(
        "dedicated", description="One GPU pool per runtime, or one shared by all."
    )
    gpu: GpuPoolConfig = GpuPoolConfig()
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
        3, ge=1, description="Failed queue reads before a ScaledObject falls back."
    )


BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
MODEL_PREFIX_RE = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


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


class RuntimeConfig(_Model):
    name: str = Field(description="Runtime name, as clients send in metadata.runtime.")
    type: Literal["sdwebui", "comfyui"]
    models: list[str] = Field(
        [], description="Checkpoints this runtime serves (sdwebui: routes v1alpha1 bodies; "
        "the first is loaded at start)."
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
    seconds_per_image: float = Field(5.0, gt=0)
    target_wait_seconds: float = Field(60.0, gt=0)
    messages_per_replica: int | None = Field(
        None, ge=1, description="Override floor(target_wait_seconds / seconds_per_image)."
    )
    max_replicas: int = Field(4, ge=1)
    task_timeout_seconds: int = Field(600, ge=30)
    heartbeat_seconds: int = Field(
        30, ge=1, description="Interval of the agent's visibility extensions; at most half "
        "of queue.visibility_timeout_seconds."
    )
    cooldown_period_seconds: int | None = Field(
        None, ge=0, description="KEDA cooldownPeriod before scaling to zero; default "
        "task_timeout_seconds + the 20 s long poll."
    )
    scale_down_stabilization_seconds: int = Field(
        300, ge=0, le=3600, description="HPA scale-down stabilization window."
    )
    fallback_replicas: int = Field(
        1, ge=0, description="Replicas while KEDA cannot read the queue."
    )
    termination_grace_period_seconds: int | None = Field(
        None, ge=30, description="Pod grace period; default task_timeout_seconds + 90 (finish "
        "the task in hand, last long poll, runtime stop)."
    )
    chart_values: dict[str, Any] = Field(
        {}, description="Extra values for this runtime's sd-runtime release, merged last "
        "(keys of charts/sd-runtime/README.md)."
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


class Config(_Model):
    """The whole configuration file."""

    name: str = Field("sdaas", description="Prefix of every physical name.")
    region: str = Field("us-west-2", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    tags: dict[str, str] = {}
    state: LocalState | S3State = Field(default_factory=LocalState, discriminator="backend")
    api: ApiConfig = ApiConfig()
    queue: QueueConfig = QueueConfig()
    outputs: OutputConfig = OutputConfig()
    lambdas: LambdaConfig = Field(LambdaConfig(), alias="lambda")
    alarms: AlarmConfig = AlarmConfig()
    cluster: ClusterConfig = ClusterConfig()
    karpenter: KarpenterConfig = KarpenterConfig()
    keda: KedaConfig = KedaConfig()
    model_bucket: ModelBucketConfig = ModelBucketConfig()
    runtimes: list[RuntimeConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must be 2-20 characters of lowercase letters, digits and '-', starting with "
                f'a letter (got "{value}")'
            )
        return value

    @model_validator(mode="after")
    def _runtimes(self) -> Config:
        seen: set[str] = set()
        for runtime in self.runtimes:
            if runtime.name in seen:
                raise ValueError(f'runtime name "{runtime.name}" is used twice')
            seen.add(runtime.name)
        return self

    def runtime(self, name: str) -> RuntimeConfig:
        for runtime in self.runtimes:
            if runtime.name == name:
                return runtime
        raise KeyError(name)


# --- errors in the user's words -------------------------------------------------------


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("LocalState", "S3State", "local", "s3"):
            continue  # union branch tags, not keys of the file
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _message(error: Any) -> str:
    kind = error["type"]
    got = error.get("input")
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "")
        expected = expected.replace(" or ", ", ")
        return f'must be one of {expected} (got "{got}")'
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "string_pattern_mismatch":
        return f'does not match {error["ctx"]["pattern"]} (got "{got}")'
    if kind == "union_tag_invalid":
        return f'backend must be one of local, s3 (got "{error["ctx"].get("tag")}")'
    text = error["msg"]
    return f"{text[0].lower()}{text[1:]} (got {json.dumps(got, default=str)})"


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed YAML document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): must be a mapping of keys to values"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_path(e['loc'])}: {_message(e)}" for e in exc.errors()]
        raise ConfigError(source, problems) from None


def config_path(cwd: Path | None = None) -> Path:
    """``SD_CONFIG``, else ``config.yaml`` in the repository, else the example."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    root = cwd or REPO_ROOT
    local = root / "config.yaml"
    return local if local.exists() else EXAMPLE_CONFIG


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate the configuration file."""
    file = Path(path) if path is not None else config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(file), [f"not valid YAML: {exc}"]) from None
    return parse_config(data, str(file))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, for editors."""
    schema = Config.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sd-async-eks configuration"
    return schema



def main() -> int:
    """``python -m sdaas.config [--schema | --stack-name]``.

    Without flags: check the configuration file. ``--schema``: print the JSON Schema.
    ``--stack-name``: print the name of the stack ``main.py`` writes.
    """
    import sys  # noqa: PLC0415

    if "--schema" in sys.argv[1:]:
        print(json.dumps(json_schema(), indent=2, sort_keys=True))
        return 0
    try:
        cfg = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if "--stack-name" in sys.argv[1:]:
        print(cfg.name)
        return 0
    print(f"{config_path()}: OK ({len(cfg.runtimes)} runtimes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
