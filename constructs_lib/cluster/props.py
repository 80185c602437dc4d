"""Props of :class:`GpuEksCluster`: the VPC (new or existing), the cluster, the system
nodes and the add-on versions, with the checks they run on construction."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from constructs_lib._cdktf import Token
from constructs_lib.cluster.addons import (
    CLOUDWATCH_ADDON,
    DEFAULT_ADDON_VERSIONS,
    DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION,
    OPTIONAL_ADDONS,
    REQUIRED_ADDONS,
)
from constructs_lib.durations import retention_problems
from constructs_lib.tags import Tags, check_tags, normalize_tags

CLUSTER_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
DEFAULT_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "sqs", "sns", "logs")
SYSTEM_NODE_SELECTOR: Mapping[str, str] = MappingProxyType({"sd.node-role": "system"})
DISCOVERY_TAG = "karpenter.sh/discovery"
# Ports the control plane opens on nodes: kubelet, and the webhooks and extension API
# servers of the controllers this project installs (not the whole ephemeral range).
CONTROL_PLANE_TO_NODE_PORTS = (
    (443, "admission webhooks on 443"),
    (4443, "metrics-server style extension API servers on 4443"),
    (6443, "extension API servers on 6443 (KEDA metrics)"),
    (8443, "webhooks on 8443 (Karpenter, when enabled)"),
    (9443, "webhooks on 9443 (KEDA, CloudWatch agent operator)"),
    (10250, "the kubelet"),
    (10251, "metrics-server (EKS add-on) on 10251"),
)
AZ_KEYS = "ABCDEF"  # construct-ID key of the n-th availability zone (stable per position)
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")
_BUCKET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+$")
ADDON_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
# Graviton (arm64) instance types: a family whose generation digit is followed by "g"
# (t4g, m7g, c6gn, r8gd, g5g ...) and the first-generation a1.
_ARM64_TYPE_RE = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)\.")
# Amazon Linux 2023 managed node group AMI type per architecture.
SYSTEM_NODE_AMI_TYPES = {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}
K8S_VERSION_RE = re.compile(r"^1\.(\d{2})$")


@dataclass(frozen=True, kw_only=True)
class NewVpcProps:
    """A VPC created for the cluster.

    The CIDR is split into eight equal blocks: the first ``az_count`` are the private
    subnets (nodes and pods: the VPC CNI gives every pod a VPC address), the last holds one
    small public subnet per zone (NAT gateways only; nothing gets a public IP on launch).

    ``availability_zones`` pins the zones by name (recommended: the subnets then never
    move); empty uses the region's first ``az_count`` available zones.

    One NAT gateway and no interface endpoints by default: the idle floor. ECR image
    layers come from S3 through the (free) gateway endpoint either way; the other AWS
    calls cross the NAT over TLS. ``one_per_az`` keeps egress zone-independent, and
    ``interface_endpoints=DEFAULT_INTERFACE_ENDPOINTS`` keeps ECR, STS, SQS, SNS and
    CloudWatch Logs traffic inside the VPC, each for a fixed monthly price per zone.
    """

    cidr: str = "10.0.0.0/16"
    az_count: int = 3
    nat_gateways: Literal["one_per_az", "single"] = "single"
    interface_endpoints: tuple[str, ...] = ()
    flow_logs: bool = True
    availability_zones: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("interface_endpoints", "availability_zones"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def problems(self) -> list[str]:
        out = []
        if self.availability_zones:
            if len(self.availability_zones) != self.az_count:
                out.append(f"vpc.availability_zones lists {len(self.availability_zones)} "
                           f"zones but vpc.az_count is {self.az_count}")
            if len(set(self.availability_zones)) != len(self.availability_zones):
                out.append("vpc.availability_zones lists a zone twice")
            for zone in self.availability_zones:
                if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", zone):
                    out.append(f'vpc.availability_zones: "{zone}" is not a zone name like '
                               "us-west-2a")
        try:
            net = ipaddress.ip_network(self.cidr)
        except ValueError:
            out.append(f'vpc.cidr must be an IPv4 CIDR block like 10.0.0.0/16 (got "{self.cidr}")')
        else:
            if net.version != 4 or not 16 <= net.prefixlen <= 20:
                out.append(f"vpc.cidr must be an IPv4 block from /16 to /20 (got {self.cidr})")
        if not 2 <= self.az_count <= len(AZ_KEYS):
            out.append(f"vpc.az_count must be 2..{len(AZ_KEYS)}: EKS needs subnets in at "
                       f"least two zones (got {self.az_count})")
        if self.nat_gateways not in ("one_per_az", "single"):
            out.append(f'vpc.nat_gateways must be one_per_az or single (got "{self.nat_gateways}")')
        for service in self.interface_endpoints:
            if not re.fullmatch(r"[a-z0-9]+(\.[a-z0-9-]+)*", service):
                out.append(f"vpc.interface_endpoints: {service!r} is not a service like ecr.api")
        if len(set(self.interface_endpoints)) != len(self.interface_endpoints):
            out.append("vpc.interface_endpoints lists a service twice")
        return out

    def subnet_cidrs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(private, public)`` CIDR blocks, one of each per zone, in zone order."""
        net = ipaddress.ip_network(self.cidr)
        blocks = list(net.subnets(new_prefix=net.prefixlen + 3))
        private = tuple(str(b) for b in blocks[: self.az_count])
        public_blocks = blocks[-1].subnets(new_prefix=net.prefixlen + 8)
        public = tuple(str(b) for _, b in zip(range(self.az_count), public_blocks, strict=False))
        return private, public


@dataclass(frozen=True, kw_only=True)
class ExistingVpcProps:
    """A VPC owned elsewhere: nodes go into ``private_subnet_ids`` (at least two zones).

    With ``tag_subnets_for_discovery`` the construct adds the tag
    ``karpenter.sh/discovery: <cluster name>`` to those subnets (one ``aws_ec2_tag`` each,
    nothing else of the subnet is managed). Endpoints, NAT and flow logs stay the owner's.
    """

    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    tag_subnets_for_discovery: bool = True

    def problems(self) -> list[str]:
        out = []
        if not Token.is_unresolved(self.vpc_id) and not re.fullmatch(
                r"vpc-[0-9a-f]{8,17}", self.vpc_id):
            out.append(f'existing_vpc.vpc_id must look like vpc-0abc12345 (got "{self.vpc_id}")')
        if len(self.private_subnet_ids) < 2:
            out.append("existing_vpc.private_subnet_ids needs subnets in at least two zones "
                       f"(got {len(self.private_subnet_ids)})")
        for subnet in self.private_subnet_ids:
            if not Token.is_unresolved(subnet) and not re.fullmatch(r"subnet-[0-9a-f]{8,17}",
                                                                     subnet):
                out.append(f'existing_vpc.private_subnet_ids: "{subnet}" is not a subnet id')
        if self.tag_subnets_for_discovery and any(
                Token.is_unresolved(s) for s in self.private_subnet_ids):
            out.append("existing_vpc.tag_subnets_for_discovery needs literal subnet ids (each "
                       "names its tag's construct ID): with subnet references, tag the subnets "
                       f"{DISCOVERY_TAG}=<cluster name> where they are created and set it to "
                       "False")
        if len(set(self.private_subnet_ids)) != len(self.private_subnet_ids):
            out.append("existing_vpc.private_subnet_ids lists a subnet twice")
        return out


@dataclass(frozen=True, kw_only=True)
class GpuEksClusterProps:
    """Settings of :class:`GpuEksCluster`; every field has a working, secure default.

    Attributes:
        name: Prefix of every physical name.
        cluster_name: EKS cluster name; ``None``: ``name``.
        kubernetes_version: Kubernetes minor version (``"1.35"``).
        vpc: A VPC to create (:class:`NewVpcProps`) or one that exists
            (:class:`ExistingVpcProps`).
        endpoint_public_access_cidrs: CIDRs allowed to reach the public API endpoint;
            empty: the endpoint is private only.
        admin_role_arns: IAM roles given cluster-admin access entries.
        cluster_creator_admin: A cluster-admin access entry for the identity running
            Terraform.
        enabled_cluster_log_types: Control-plane logs sent to CloudWatch Logs.
        log_retention_days: Days the control-plane and flow logs are kept (a CloudWatch
            Logs period).
        system_node_instance_type: Instance type of the system node group.
        system_node_desired_size: Nodes in the system node group (1-10).
        system_node_ami_type: AMI type of the system node group.
        system_node_volume_gib: Encrypted gp3 root volume of each system node, GiB.
        addon_versions: Pinned versions of the managed add-ons: the required ones and the
            optional ones (``OPTIONAL_ADDONS``).
        cloudwatch_observability_version: Pin to install amazon-cloudwatch-observability;
            ``None``: not installed.
        container_log_retention_days: Days the container logs
            (``/aws/containerinsights/<cluster>/...``) are kept (a CloudWatch Logs period).
        model_bucket_arn: Bucket the Mountpoint S3 CSI driver may read (the runtimes'
            models); ``None``: none.
        model_bucket_kms_key_arn: KMS key of that bucket, for ``kms:Decrypt``.
        tags: Merged into every taggable resource the construct creates and into the
            system nodes' instances, volumes and network interfaces (a mapping or pairs).
    """

    name: str = "sdaas"
    cluster_name: str | None = None  # default: ``name``
    kubernetes_version: str = "1.35"
    vpc: NewVpcProps | ExistingVpcProps = NewVpcProps()
    endpoint_public_access_cidrs: tuple[str, ...] = ()
    admin_role_arns: tuple[str, ...] = ()
    cluster_creator_admin: bool = True
    enabled_cluster_log_types: tuple[str, ...] = CLUSTER_LOG_TYPES
    log_retention_days: int = 30
    system_node_instance_type: str = "t4g.medium"
    system_node_desired_size: int = 2
    system_node_ami_type: str | None = None  # default: AL2023 for the type's architecture
    system_node_volume_gib: int = 20
    addon_versions: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ADDON_VERSIONS)
    cloudwatch_observability_version: str | None = DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION
    container_log_retention_days: int = 30
    model_bucket_arn: str | None = None
    model_bucket_kms_key_arn: str | None = None
    tags: Tags = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "addon_versions", MappingProxyType(dict(self.addon_versions)))
        for name in ("endpoint_public_access_cidrs", "admin_role_arns",
                     "enabled_cluster_log_types"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        problems = check_tags(self.tags)
        if not _NAME_RE.match(self.name):
            problems.append("name must be 2-20 characters of lowercase letters, digits and '-', "
                            f'starting with a letter (got "{self.name}")')
        if self.cluster_name is not None and not CLUSTER_NAME_RE.match(self.cluster_name):
            problems.append("cluster_name must be 1-100 letters, digits, '-' or '_', starting "
                            f'with a letter or digit (got "{self.cluster_name}")')
        version = K8S_VERSION_RE.match(self.kubernetes_version)
        if not version:
            problems.append(
                f'kubernetes_version must look like "1.35" (got "{self.kubernetes_version}")')
        problems.extend(self.vpc.problems())
        problems.extend(_cidr_problems(self.endpoint_public_access_cidrs))
        seen_roles: set[str] = set()
        for arn in self.admin_role_arns:
            if Token.is_unresolved(arn):
                problems.append("admin_role_arns must be literal role ARNs, not references "
                                "(each names its access entry's construct ID)")
            elif not ROLE_ARN_RE.match(arn):
                problems.append(f'admin_role_arns: "{arn}" is not an IAM role ARN '
                                "(arn:aws:iam::<account>:role/<name>)")
            elif arn in seen_roles:
                problems.append(f'admin_role_arns lists "{arn}" twice')
            seen_roles.add(arn)
        unknown = [t for t in self.enabled_cluster_log_types if t not in CLUSTER_LOG_TYPES]
        if unknown:
            problems.append(f"enabled_cluster_log_types: unknown {', '.join(unknown)} "
                            f"(allowed: {', '.join(CLUSTER_LOG_TYPES)})")
        for key in ("log_retention_days", "container_log_retention_days"):
            problems.extend(retention_problems(key, getattr(self, key)))
        if not 1 <= self.system_node_desired_size <= 10:
            problems.append("system_node_desired_size must be 1..10 "
                            f"(got {self.system_node_desired_size})")
        if not 20 <= self.system_node_volume_gib <= 1024:
            problems.append("system_node_volume_gib must be 20..1024 "
                            f"(got {self.system_node_volume_gib})")
        if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", self.system_node_instance_type):
            problems.append("system_node_instance_type must be an EC2 instance type like "
                            f't4g.medium (got "{self.system_node_instance_type}")')
        elif self.system_node_ami_type is not None:
            arch = instance_architecture(self.system_node_instance_type)
            if self.system_node_ami_type not in SYSTEM_NODE_AMI_TYPES.values():
                problems.append(f"system_node_ami_type must be one of "
                                f"{', '.join(SYSTEM_NODE_AMI_TYPES.values())} "
                                f'(got "{self.system_node_ami_type}")')
            elif self.system_node_ami_type != SYSTEM_NODE_AMI_TYPES[arch]:
                problems.append(
                    f"system_node_ami_type {self.system_node_ami_type} does not boot "
                    f"{self.system_node_instance_type} ({arch}): use "
                    f"{SYSTEM_NODE_AMI_TYPES[arch]} or leave it unset")
        missing = [a for a in REQUIRED_ADDONS if a not in self.addon_versions]
        if missing:
            problems.append(f"addon_versions: pin a version for {', '.join(missing)}")
        for addon, pinned in sorted(self.addon_versions.items()):
            if not ADDON_VERSION_RE.match(pinned):
                problems.append(f'addon_versions.{addon}: "{pinned}" is not a pinned add-on '
                                "version like v1.20.4-eksbuild.2")
        kube_proxy = self.addon_versions.get("kube-proxy", "")
        if version and ADDON_VERSION_RE.match(kube_proxy) and not kube_proxy.startswith(
                f"v{self.kubernetes_version}."):
            problems.append(
                f"addon_versions.kube-proxy {kube_proxy} does not match kubernetes_version "
                f"{self.kubernetes_version} (kube-proxy must be v{self.kubernetes_version}.x)")
        if CLOUDWATCH_ADDON in self.addon_versions:
            problems.append(f"addon_versions: install {CLOUDWATCH_ADDON} by setting "
                            "cloudwatch_observability_version")
        problems.extend(_addon_name_problems(self.addon_versions))
        if (self.cloudwatch_observability_version is not None
                and not ADDON_VERSION_RE.match(self.cloudwatch_observability_version)):
            problems.append("cloudwatch_observability_version: "
                            f'"{self.cloudwatch_observability_version}" is not a pinned add-on '
                            "version like v4.1.0-eksbuild.1")
        if self.model_bucket_arn is not None and not Token.is_unresolved(
                self.model_bucket_arn) and not _BUCKET_ARN_RE.match(self.model_bucket_arn):
            problems.append(f'model_bucket_arn: "{self.model_bucket_arn}" is not an S3 bucket '
                            "ARN (arn:aws:s3:::<bucket>)")
        if self.model_bucket_kms_key_arn is not None:
            if self.model_bucket_arn is None:
                problems.append("model_bucket_kms_key_arn needs model_bucket_arn")
            if not Token.is_unresolved(self.model_bucket_kms_key_arn) and not _KMS_ARN_RE.match(
                    self.model_bucket_kms_key_arn):
                problems.append(f'model_bucket_kms_key_arn: "{self.model_bucket_kms_key_arn}" '
                                "is not a KMS key ARN")
        if problems:
            raise ValueError("GpuEksClusterProps: " + "; ".join(problems))

    @property
    def physical_cluster_name(self) -> str:
        return self.cluster_name or self.name

    @property
    def effective_system_node_ami_type(self) -> str:
        """``system_node_ami_type``, or AL2023 for the system instance type's architecture."""
        return self.system_node_ami_type or SYSTEM_NODE_AMI_TYPES[
            instance_architecture(self.system_node_instance_type)]


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """``arm64`` for Graviton instance types (``t4g.medium``, ``m7g.large``), else ``x86_64``."""
    return "arm64" if _ARM64_TYPE_RE.match(instance_type) else "x86_64"


def _addon_name_problems(versions: Mapping[str, str]) -> list[str]:
    known = (*REQUIRED_ADDONS, *OPTIONAL_ADDONS)
    out = []
    for addon in sorted(set(versions) - {*known, CLOUDWATCH_ADDON}):
        close = difflib.get_close_matches(addon, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        out.append(f'addon_versions.{addon}: no such add-on here ({hint}add-ons: '
                   f"{', '.join(sorted(known))})")
    return out


def _cidr_problems(cidrs: tuple[str, ...]) -> list[str]:
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            out.append(f'endpoint_public_access_cidrs: "{cidr}" is not a CIDR block')
            continue
        if net.version != 4:
            out.append(f"endpoint_public_access_cidrs: {cidr} is not IPv4 (EKS allowlists "
                       "are IPv4)")
        elif net.prefixlen == 0:
            out.append(f"endpoint_public_access_cidrs: {cidr} opens the API endpoint to the "
                       "whole internet: list your own networks")
    return out


