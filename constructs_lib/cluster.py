"""``GpuEksCluster``: the network and the EKS cluster the GPU runtimes run in.

Creates
    * a VPC (or uses an existing one, see :class:`ExistingVpcProps`): private and public
      subnets in ``az_count`` zones, an internet gateway, NAT gateways (one per zone or a
      single one), an S3 gateway endpoint, interface endpoints (ECR api/dkr, STS, SQS, SNS,
      CloudWatch Logs by default) so image pulls and AWS calls need not cross the NAT, VPC
      flow logs, and a default security group that admits nothing; the private subnets
      carry ``karpenter.sh/discovery: <cluster name>`` (existing subnets get the tag too);
    * a customer-managed KMS key (rotation on) for Kubernetes secrets envelope encryption
      and the cluster's log groups;
    * the EKS cluster: pinned Kubernetes version, authentication mode ``API`` with access
      entries (the identity running Terraform, when ``cluster_creator_admin``, and every
      ``admin_role_arns`` entry, each with ``AmazonEKSClusterAdminPolicy``), all five
      control-plane log types into a log group with retention, private endpoint always on,
      the public endpoint only with a CIDR allowlist;
    * a cluster security group and a node security group (tagged for Karpenter discovery)
      with the rules nodes and control plane need;
    * the system managed node group: on-demand, ``system_node_desired_size`` nodes, labelled
      ``sd.node-role=system`` (where Karpenter, KEDA and CoreDNS run), IMDSv2 with hop limit
      1 and an encrypted root volume;
    * managed add-ons with pinned versions: vpc-cni (its own Pod Identity role),
      kube-proxy, eks-pod-identity-agent, coredns (on the system nodes),
      aws-mountpoint-s3-csi-driver (its Pod Identity role may only read the model bucket)
      and, when pinned, amazon-cloudwatch-observability.

It configures no provider. ``kubernetes_connection`` carries what ``main.py`` needs for the
Helm and Kubernetes providers (endpoint, CA, an ``aws eks get-token`` exec command).

Example::

    cluster = GpuEksCluster(stack, "Cluster", props=GpuEksClusterProps(
        name="sdaas",
        endpoint_public_access_cidrs=("203.0.113.0/24",),
        admin_role_arns=("arn:aws:iam::123456789012:role/platform-admin",),
        model_bucket_arn=models.arn,
    ))
    Release(stack, "Keda", ..., depends_on=cluster.ready)
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from constructs_lib._cdktf import Construct, Fn, TerraformResource, Token
from constructs_lib._providers import aws
from constructs_lib.iam import (
    POD_IDENTITY_ACTIONS,
    POD_IDENTITY_PRINCIPAL,
    Condition,
    Role,
    Statement,
    key_policy_statements,
    render_statements,
    service_principal,
)

if TYPE_CHECKING:
    from constructs_lib.config import Config

CLUSTER_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
DEFAULT_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "sqs", "sns", "logs")
SYSTEM_NODE_SELECTOR: Mapping[str, str] = MappingProxyType({"sd.node-role": "system"})
DISCOVERY_TAG = "karpenter.sh/discovery"
REQUIRED_ADDONS = (
    "vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-mountpoint-s3-csi-driver",
)
CLOUDWATCH_ADDON = "amazon-cloudwatch-observability"
# Pinned add-on versions for Kubernetes 1.35 (`aws eks describe-addon-versions
# --kubernetes-version 1.35 --addon-name <name>`).
DEFAULT_ADDON_VERSIONS: Mapping[str, str] = MappingProxyType({
    "vpc-cni": "v1.20.4-eksbuild.2",
    "coredns": "v1.12.4-eksbuild.1",
    "kube-proxy": "v1.35.0-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    "aws-mountpoint-s3-csi-driver": "v2.1.0-eksbuild.1",
})
# Created before the system node group: nodes need the CNI (and its credentials, from the
# Pod Identity agent) and kube-proxy to become Ready. The rest need running nodes.
_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)
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
_CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")
_BUCKET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+$")
_ADDON_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
_K8S_VERSION_RE = re.compile(r"^1\.(\d{2})$")


@dataclass(frozen=True, kw_only=True)
class NewVpcProps:
    """A VPC created for the cluster.

    The CIDR is split into eight equal blocks: the first ``az_count`` are the private
    subnets (nodes and pods: the VPC CNI gives every pod a VPC address), the last holds one
    small public subnet per zone (NAT gateways only; nothing gets a public IP on launch).

    ``availability_zones`` pins the zones by name (recommended: the subnets then never
    move); empty uses the region's first ``az_count`` available zones.
    """

    cidr: str = "10.0.0.0/16"
    az_count: int = 3
    nat_gateways: Literal["one_per_az", "single"] = "one_per_az"
    interface_endpoints: tuple[str, ...] = DEFAULT_INTERFACE_ENDPOINTS
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
        if len(set(self.private_subnet_ids)) != len(self.private_subnet_ids):
            out.append("existing_vpc.private_subnet_ids lists a subnet twice")
        return out


@dataclass(frozen=True, kw_only=True)
class GpuEksClusterProps:
    """Settings of :class:`GpuEksCluster`; every field has a working, secure default."""

    name: str = "sdaas"
    cluster_name: str | None = None  # default: ``name``
    kubernetes_version: str = "1.35"
    vpc: NewVpcProps | ExistingVpcProps = NewVpcProps()
    endpoint_public_access_cidrs: tuple[str, ...] = ()
    admin_role_arns: tuple[str, ...] = ()
    cluster_creator_admin: bool = True
    enabled_cluster_log_types: tuple[str, ...] = CLUSTER_LOG_TYPES
    log_retention_days: int = 30
    system_node_instance_type: str = "m7i.large"
    system_node_desired_size: int = 2
    system_node_ami_type: str = "AL2023_x86_64_STANDARD"
    system_node_volume_gib: int = 50
    addon_versions: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ADDON_VERSIONS)
    cloudwatch_observability_version: str | None = None
    model_bucket_arn: str | None = None
    model_bucket_kms_key_arn: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "addon_versions", MappingProxyType(dict(self.addon_versions)))
        for name in ("endpoint_public_access_cidrs", "admin_role_arns",
                     "enabled_cluster_log_types", "tags"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if not _NAME_RE.match(self.name):
            problems.append("name must be 2-20 characters of lowercase letters, digits and '-', "
                            f'starting with a letter (got "{self.name}")')
        if self.cluster_name is not None and not _CLUSTER_NAME_RE.match(self.cluster_name):
            problems.append("cluster_name must be 1-100 letters, digits, '-' or '_', starting "
                            f'with a letter or digit (got "{self.cluster_name}")')
        version = _K8S_VERSION_RE.match(self.kubernetes_version)
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
            elif not _ROLE_ARN_RE.match(arn):
                problems.append(f'admin_role_arns: "{arn}" is not an IAM role ARN '
                                "(arn:aws:iam::<account>:role/<name>)")
            elif arn in seen_roles:
                problems.append(f'admin_role_arns lists "{arn}" twice')
            seen_roles.add(arn)
        unknown = [t for t in self.enabled_cluster_log_types if t not in CLUSTER_LOG_TYPES]
        if unknown:
            problems.append(f"enabled_cluster_log_types: unknown {', '.join(unknown)} "
                            f"(allowed: {', '.join(CLUSTER_LOG_TYPES)})")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append("log_retention_days must be one of CloudWatch's periods (1, 3, "
                            f"5, 7, 14, 30, 60, 90, ... 3653; got {self.log_retention_days})")
        if not 1 <= self.system_node_desired_size <= 10:
            problems.append("system_node_desired_size must be 1..10 "
                            f"(got {self.system_node_desired_size})")
        if not 20 <= self.system_node_volume_gib <= 1024:
            problems.append("system_node_volume_gib must be 20..1024 "
                            f"(got {self.system_node_volume_gib})")
        if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", self.system_node_instance_type):
            problems.append("system_node_instance_type must be an EC2 instance type like "
                            f'm7i.large (got "{self.system_node_instance_type}")')
        missing = [a for a in REQUIRED_ADDONS if a not in self.addon_versions]
        if missing:
            problems.append(f"addon_versions: pin a version for {', '.join(missing)}")
        for addon, pinned in sorted(self.addon_versions.items()):
            if not _ADDON_VERSION_RE.match(pinned):
                problems.append(f'addon_versions.{addon}: "{pinned}" is not a pinned add-on '
                                "version like v1.20.4-eksbuild.2")
        kube_proxy = self.addon_versions.get("kube-proxy", "")
        if version and _ADDON_VERSION_RE.match(kube_proxy) and not kube_proxy.startswith(
                f"v{self.kubernetes_version}."):
            problems.append(
                f"addon_versions.kube-proxy {kube_proxy} does not match kubernetes_version "
                f"{self.kubernetes_version} (kube-proxy must be v{self.kubernetes_version}.x)")
        if CLOUDWATCH_ADDON in self.addon_versions:
            problems.append(f"addon_versions: install {CLOUDWATCH_ADDON} by setting "
                            "cloudwatch_observability_version")
        if (self.cloudwatch_observability_version is not None
                and not _ADDON_VERSION_RE.match(self.cloudwatch_observability_version)):
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
                       "whole internet; list your own networks")
    return out


@dataclass(frozen=True, kw_only=True)
class KubernetesConnection:
    """What ``main.py`` gives the Helm and Kubernetes providers to reach the cluster."""

    host: str
    cluster_ca_certificate: str  # PEM, decoded with Fn.base64decode
    exec_api_version: str
    exec_command: str
    exec_args: tuple[str, ...]


class _Network(Construct):
    """The new VPC: subnets, gateways, routes, endpoints, flow logs."""

    def __init__(self, scope: Construct, id_: str, *, props: GpuEksClusterProps,
                 vpc_props: NewVpcProps, region: str, key_arn: str) -> None:
        super().__init__(scope, id_)
        name = props.name
        cluster_name = props.physical_cluster_name
        private_cidrs, public_cidrs = vpc_props.subnet_cidrs()
        zone_names: list[str] = list(vpc_props.availability_zones)
        if not zone_names:
            # Unpinned: the first az_count available zones. If one of them ever stops being
            # "available" the list shifts and subnets would be replaced: pin them instead.
            zones = aws.data_aws_availability_zones.DataAwsAvailabilityZones(
                self, "Zones", state="available",
                filter=[aws.data_aws_availability_zones.DataAwsAvailabilityZonesFilter(
                    name="opt-in-status", values=["opt-in-not-required"])],
            )
            zone_names = [Token.as_string(Fn.element(zones.names, i))
                          for i in range(vpc_props.az_count)]
        self.vpc = aws.vpc.Vpc(
            self, "Vpc", cidr_block=vpc_props.cidr, enable_dns_support=True,
            enable_dns_hostnames=True, tags={"Name": f"{name}-vpc"},
        )
        # The default security group admits nothing; everything uses its own group.
        aws.default_security_group.DefaultSecurityGroup(
            self, "DefaultSecurityGroup", vpc_id=self.vpc.id, ingress=[], egress=[],
            tags={"Name": f"{name}-default-deny"},
        )
        igw = aws.internet_gateway.InternetGateway(
            self, "InternetGateway", vpc_id=self.vpc.id, tags={"Name": f"{name}-igw"})
        public_rt = aws.route_table.RouteTable(
            self, "PublicRouteTable", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"})
        aws.route.Route(self, "PublicDefaultRoute", route_table_id=public_rt.id,
                        destination_cidr_block="0.0.0.0/0", gateway_id=igw.id)

        self.private_subnets: list = []
        self.private_route_tables: list = []
        nats: list = []
        for index in range(vpc_props.az_count):
            key = AZ_KEYS[index]
            zone = zone_names[index]
            public = aws.subnet.Subnet(
                self, f"PublicSubnet{key}", vpc_id=self.vpc.id, availability_zone=zone,
                cidr_block=public_cidrs[index], map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{key.lower()}", "kubernetes.io/role/elb": "1"},
            )
            aws.route_table_association.RouteTableAssociation(
                self, f"PublicRouteTableAssociation{key}", subnet_id=public.id,
                route_table_id=public_rt.id)
            private = aws.subnet.Subnet(
                self, f"PrivateSubnet{key}", vpc_id=self.vpc.id, availability_zone=zone,
                cidr_block=private_cidrs[index], map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{key.lower()}",
                      "kubernetes.io/role/internal-elb": "1",
                      DISCOVERY_TAG: cluster_name},
            )
            self.private_subnets.append(private)
            if vpc_props.nat_gateways == "one_per_az" or index == 0:
                eip = aws.eip.Eip(self, f"NatAddress{key}", domain="vpc",
                                  tags={"Name": f"{name}-nat-{key.lower()}"})
                nats.append(aws.nat_gateway.NatGateway(
                    self, f"NatGateway{key}", allocation_id=eip.allocation_id,
                    subnet_id=public.id, tags={"Name": f"{name}-nat-{key.lower()}"},
                    depends_on=[igw],
                ))
            route_table = aws.route_table.RouteTable(
                self, f"PrivateRouteTable{key}", vpc_id=self.vpc.id,
                tags={"Name": f"{name}-private-{key.lower()}"})
            self.private_route_tables.append(route_table)
            aws.route.Route(self, f"PrivateDefaultRoute{key}", route_table_id=route_table.id,
                            destination_cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)
            aws.route_table_association.RouteTableAssociation(
                self, f"PrivateRouteTableAssociation{key}", subnet_id=private.id,
                route_table_id=route_table.id)

        aws.vpc_endpoint.VpcEndpoint(
            self, "S3GatewayEndpoint", vpc_id=self.vpc.id, vpc_endpoint_type="Gateway",
            service_name=f"com.amazonaws.{region}.s3",
            route_table_ids=[rt.id for rt in self.private_route_tables],
            tags={"Name": f"{name}-s3"},
        )
        if vpc_props.interface_endpoints:
            endpoint_sg = aws.security_group.SecurityGroup(
                self, "EndpointSecurityGroup", name=f"{name}-vpc-endpoints",
                description="HTTPS from the VPC to the interface endpoints",
                vpc_id=self.vpc.id, tags={"Name": f"{name}-vpc-endpoints"},
            )
            aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
                self, "EndpointIngressHttps", security_group_id=endpoint_sg.id,
                ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4=vpc_props.cidr,
                description="HTTPS from the VPC",
            )
            for service in vpc_props.interface_endpoints:
                aws.vpc_endpoint.VpcEndpoint(
                    self, f"Endpoint-{service}", vpc_id=self.vpc.id,
                    vpc_endpoint_type="Interface", service_name=f"com.amazonaws.{region}.{service}",
                    private_dns_enabled=True, subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags={"Name": f"{name}-{service}"},
                )
        if vpc_props.flow_logs:
            log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
                self, "FlowLogGroup", name=f"/aws/vpc-flow-logs/{name}",
                retention_in_days=props.log_retention_days, kms_key_id=key_arn,
            )
            role = Role(self, "FlowLogRole", name=f"{name}-vpc-flow-logs",
                        assumed_by=service_principal("vpc-flow-logs.amazonaws.com"),
                        description="VPC flow logs write to their log group")
            role.add_policy("WriteFlowLogs", [Statement(
                sid="WriteFlowLogs",
                actions=("logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"),
                resources=(log_group.arn, f"{log_group.arn}:*"),
            )])
            aws.flow_log.FlowLog(
                self, "FlowLog", vpc_id=self.vpc.id, traffic_type="ALL",
                log_destination_type="cloud-watch-logs", log_destination=log_group.arn,
                iam_role_arn=role.role_arn, max_aggregation_interval=600,
                tags={"Name": f"{name}-vpc"},
            )


class GpuEksCluster(Construct):
    """The VPC, the EKS cluster, its system node group and its managed add-ons."""

    def __init__(self, scope: Construct, id_: str, *,
                 props: GpuEksClusterProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or GpuEksClusterProps()
        self._props = props
        name = props.name
        cluster_name = props.physical_cluster_name
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Caller")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        region = aws.data_aws_region.DataAwsRegion(self, "Region")
        self._account_id = identity.account_id
        self._partition = partition.partition
        self._region = region.name
        managed = f"arn:{partition.partition}:iam::aws:policy"

        # --- KMS: secrets envelope encryption and log groups ------------------------------
        key_policy = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
            self, "KeyPolicy", statement=render_statements(key_policy_statements(
                partition=partition.partition, region=region.name,
                account_id=identity.account_id)),
        )
        self._key = aws.kms_key.KmsKey(
            self, "Key", description=f"{cluster_name}: EKS secrets and cluster logs",
            enable_key_rotation=True, deletion_window_in_days=30, policy=key_policy.json,
        )
        aws.kms_alias.KmsAlias(self, "KeyAlias", name=f"alias/{name}-eks",
                               target_key_id=self._key.key_id)

        # --- network ----------------------------------------------------------------------
        self._network: _Network | None = None
        if isinstance(props.vpc, NewVpcProps):
            self._network = _Network(self, "Network", props=props, vpc_props=props.vpc,
                                     region=region.name, key_arn=self._key.arn)
            self._vpc_id = self._network.vpc.id
            self._private_subnet_ids = [s.id for s in self._network.private_subnets]
        else:
            self._vpc_id = props.vpc.vpc_id
            self._private_subnet_ids = list(props.vpc.private_subnet_ids)
            if props.vpc.tag_subnets_for_discovery:
                for subnet in props.vpc.private_subnet_ids:
                    aws.ec2_tag.Ec2Tag(self, f"DiscoveryTag-{subnet}", resource_id=subnet,
                                       key=DISCOVERY_TAG, value=cluster_name)

        # --- security groups --------------------------------------------------------------
        self._cluster_sg = aws.security_group.SecurityGroup(
            self, "ClusterSecurityGroup", name=f"{name}-eks-cluster",
            description="EKS control plane: HTTPS from the nodes", vpc_id=self._vpc_id,
            tags={"Name": f"{name}-eks-cluster"},
        )
        self._node_sg = aws.security_group.SecurityGroup(
            self, "NodeSecurityGroup", name=f"{name}-eks-nodes",
            description="EKS nodes (system and Karpenter GPU nodes)", vpc_id=self._vpc_id,
            tags={"Name": f"{name}-eks-nodes", DISCOVERY_TAG: cluster_name},
        )
        sg_in = aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule
        sg_in(self, "ClusterIngressFromNodes", security_group_id=self._cluster_sg.id,
              ip_protocol="tcp", from_port=443, to_port=443,
              referenced_security_group_id=self._node_sg.id,
              description="Nodes and pods to the Kubernetes API")
        sg_in(self, "NodeIngressFromNodes", security_group_id=self._node_sg.id,
              ip_protocol="-1", referenced_security_group_id=self._node_sg.id,
              description="Node to node and pod to pod (pods share the nodes' group)")
        for port, what in CONTROL_PLANE_TO_NODE_PORTS:
            sg_in(self, f"NodeIngressFromCluster{port}", security_group_id=self._node_sg.id,
                  ip_protocol="tcp", from_port=port, to_port=port,
                  referenced_security_group_id=self._cluster_sg.id,
                  description=f"Control plane to {what}")
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            self, "NodeEgressAll", security_group_id=self._node_sg.id, ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Nodes reach the API, endpoints, registries and model hosts",
        )

        # --- cluster ----------------------------------------------------------------------
        cluster_role = Role(self, "ClusterRole", name=f"{name}-eks-cluster",
                            assumed_by=service_principal("eks.amazonaws.com"),
                            assume_actions=("sts:AssumeRole", "sts:TagSession"),
                            description=f"EKS control plane of {cluster_name}")
        cluster_policy = _attach_managed(cluster_role, "ClusterPolicy",
                                         f"{managed}/AmazonEKSClusterPolicy")
        cluster_role.add_policy("SecretsEncryption", [Statement(
            sid="EnvelopeEncryption",
            actions=("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"),
            resources=(self._key.arn,),
        )])
        self._log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "ControlPlaneLogs", name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=props.log_retention_days, kms_key_id=self._key.arn,
        )
        ekc = aws.eks_cluster
        self._cluster = ekc.EksCluster(
            self, "Cluster",
            name=cluster_name,
            version=props.kubernetes_version,
            role_arn=cluster_role.role_arn,
            vpc_config=ekc.EksClusterVpcConfig(
                subnet_ids=self._private_subnet_ids,
                security_group_ids=[self._cluster_sg.id],
                endpoint_private_access=True,
                endpoint_public_access=bool(props.endpoint_public_access_cidrs),
                public_access_cidrs=list(props.endpoint_public_access_cidrs) or None,
            ),
            access_config=ekc.EksClusterAccessConfig(
                authentication_mode="API",
                # The creator gets an explicit, removable access entry below instead.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # Only the managed add-ons below; no unmanaged copies to fight with.
            bootstrap_self_managed_addons=False,
            encryption_config=ekc.EksClusterEncryptionConfig(
                resources=["secrets"],
                provider=ekc.EksClusterEncryptionConfigProvider(key_arn=self._key.arn),
            ),
            enabled_cluster_log_types=list(props.enabled_cluster_log_types),
            kubernetes_network_config=ekc.EksClusterKubernetesNetworkConfig(ip_family="ipv4"),
            # The policy outlives the cluster on destroy (EKS needs it to clean up ENIs).
            depends_on=[self._log_group, cluster_policy],
        )

        # --- access entries ---------------------------------------------------------------
        admins: list[tuple[str, str]] = []
        if props.cluster_creator_admin:
            session = aws.data_aws_iam_session_context.DataAwsIamSessionContext(
                self, "CreatorSession", arn=identity.arn)
            admins.append(("CreatorAdmin", session.issuer_arn))
        for arn in props.admin_role_arns:
            admins.append((f"Admin-{_admin_key(arn)}", arn))
        self._access_entries: list = []
        for key, principal in admins:
            entry = aws.eks_access_entry.EksAccessEntry(
                self, key, cluster_name=self._cluster.name, principal_arn=principal,
                type="STANDARD")
            self._access_entries.append(entry)
            aws.eks_access_policy_association.EksAccessPolicyAssociation(
                self, f"{key}Policy", cluster_name=self._cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=(f"arn:{partition.partition}:eks::aws:cluster-access-policy/"
                            "AmazonEKSClusterAdminPolicy"),
                access_scope=aws.eks_access_policy_association.EksAccessPolicyAssociationAccessScope(
                    type="cluster"),
            )

        # --- add-ons needed before nodes ----------------------------------------------------
        versions = props.addon_versions
        self._addons: dict[str, TerraformResource] = {}
        cni_role = self._pod_identity_role(
            "VpcCniRole", f"{name}-vpc-cni", "VPC CNI (aws-node) manages pod networking")
        cni_role.attach_managed("CniPolicy", f"{managed}/AmazonEKS_CNI_Policy")
        self._addon("eks-pod-identity-agent", versions)
        self._addon("kube-proxy", versions)
        self._addon("vpc-cni", versions, role=cni_role, service_account="aws-node")

        # --- system node group --------------------------------------------------------------
        node_role = Role(self, "SystemNodeRole", name=f"{name}-system-nodes",
                         assumed_by=service_principal("ec2.amazonaws.com"),
                         description=f"System nodes of {cluster_name}")
        attachments = [
            _attach_managed(node_role, key, f"{managed}/{policy}")
            for key, policy in (("WorkerNodePolicy", "AmazonEKSWorkerNodePolicy"),
                                ("RegistryPullOnly", "AmazonEC2ContainerRegistryPullOnly"),
                                ("SsmManagedInstance", "AmazonSSMManagedInstanceCore"))
        ]
        lt = aws.launch_template
        tags = {"Name": f"{name}-system", "sd.node-role": "system", **dict(props.tags)}
        template = lt.LaunchTemplate(
            self, "SystemNodeLaunchTemplate", name=f"{name}-system-nodes",
            description="System nodes: IMDSv2 only, encrypted root volume",
            update_default_version=True,
            vpc_security_group_ids=[self._node_sg.id],
            metadata_options=lt.LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required",
                http_put_response_hop_limit=1, instance_metadata_tags="disabled"),
            block_device_mappings=[lt.LaunchTemplateBlockDeviceMappings(
                device_name="/dev/xvda",
                ebs=lt.LaunchTemplateBlockDeviceMappingsEbs(
                    volume_size=props.system_node_volume_gib, volume_type="gp3",
                    encrypted="true", delete_on_termination="true"),
            )],
            monitoring=lt.LaunchTemplateMonitoring(enabled=True),
            tag_specifications=[
                lt.LaunchTemplateTagSpecifications(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
        )
        ng = aws.eks_node_group
        self._node_group = ng.EksNodeGroup(
            self, "SystemNodeGroup",
            cluster_name=self._cluster.name,
            node_group_name=f"{name}-system",
            node_role_arn=node_role.role_arn,
            subnet_ids=self._private_subnet_ids,
            ami_type=props.system_node_ami_type,
            capacity_type="ON_DEMAND",
            instance_types=[props.system_node_instance_type],
            labels=dict(SYSTEM_NODE_SELECTOR),
            scaling_config=ng.EksNodeGroupScalingConfig(
                desired_size=props.system_node_desired_size,
                min_size=props.system_node_desired_size,
                max_size=props.system_node_desired_size + 1),
            update_config=ng.EksNodeGroupUpdateConfig(max_unavailable=1),
            launch_template=ng.EksNodeGroupLaunchTemplate(
                id=template.id, version=Token.as_string(template.latest_version)),
            depends_on=[*attachments, *self._addons.values()],
        )

        # --- add-ons needing nodes ----------------------------------------------------------
        self._addon("coredns", versions,
                    configuration={"nodeSelector": dict(SYSTEM_NODE_SELECTOR)})
        s3_role = None
        if props.model_bucket_arn is not None:
            s3_role = self._pod_identity_role(
                "MountpointS3Role", f"{name}-s3-csi",
                "Mountpoint for Amazon S3 CSI driver: read-only on the model bucket")
            statements = [Statement(sid="ListModelBucket", actions=("s3:ListBucket",),
                                    resources=(props.model_bucket_arn,)),
                          Statement(sid="ReadModels", actions=("s3:GetObject",),
                                    resources=(f"{props.model_bucket_arn}/*",))]
            if props.model_bucket_kms_key_arn is not None:
                statements.append(Statement(sid="DecryptModels", actions=("kms:Decrypt",),
                                            resources=(props.model_bucket_kms_key_arn,)))
            s3_role.add_policy("ReadModelBucket", statements)
        # GPU nodes carry NoSchedule taints; the driver's node pods must run there anyway.
        self._addon("aws-mountpoint-s3-csi-driver", versions, role=s3_role,
                    service_account="s3-csi-driver-sa",
                    configuration={"node": {"tolerateAllTaints": True}})
        if props.cloudwatch_observability_version is not None:
            cw_role = self._pod_identity_role(
                "CloudWatchAgentRole", f"{name}-cloudwatch-agent",
                "CloudWatch agent and Fluent Bit of amazon-cloudwatch-observability")
            cw_role.attach_managed("AgentServerPolicy", f"{managed}/CloudWatchAgentServerPolicy")
            cw_role.attach_managed("XrayWriteOnly", f"{managed}/AWSXrayWriteOnlyAccess")
            self._addon(CLOUDWATCH_ADDON,
                        {CLOUDWATCH_ADDON: props.cloudwatch_observability_version},
                        role=cw_role, service_account="cloudwatch-agent")
        # Add-ons beyond the required ones (pinned in addon_versions), after the nodes.
        for addon in sorted(set(versions) - set(REQUIRED_ADDONS)):
            self._addon(addon, versions)

        self._kubernetes = KubernetesConnection(
            host=self._cluster.endpoint,
            cluster_ca_certificate=Fn.base64decode(self.cluster_certificate_authority_data),
            exec_api_version="client.authentication.k8s.io/v1beta1",
            exec_command="aws",
            exec_args=("eks", "get-token", "--cluster-name", self._cluster.name,
                       "--region", region.name),
        )

    # --- helpers ---------------------------------------------------------------------------
    def _pod_identity_role(self, id_: str, role_name: str, description: str) -> Role:
        return self.pod_identity_role(self, id_, name=role_name, description=description)

    def pod_identity_role(self, scope: Construct, id_: str, *, name: str,
                          description: str) -> Role:
        """A role that EKS Pod Identity may hand to pods of this cluster only.

        The trust policy admits ``pods.eks.amazonaws.com`` acting for this account and this
        cluster (``aws:SourceAccount``, ``aws:SourceArn``), so an association in another
        cluster cannot use the role. Grant it permissions, then ``add_pod_identity``.
        """
        return Role(
            scope, id_, name=name, assumed_by=POD_IDENTITY_PRINCIPAL,
            assume_actions=POD_IDENTITY_ACTIONS, description=description,
            assume_conditions=(
                Condition(test="StringEquals", variable="aws:SourceAccount",
                          values=(self.account_id,)),
                Condition(test="ArnEquals", variable="aws:SourceArn",
                          values=(self.cluster_arn,)),
            ),
        )

    def _addon(self, addon: str, versions: Mapping[str, str], *, role: Role | None = None,
               service_account: str | None = None,
               configuration: dict | None = None) -> None:
        ea = aws.eks_addon
        before_nodes = addon in _BEFORE_NODES
        self._addons[addon] = ea.EksAddon(
            self, f"Addon-{addon}",
            cluster_name=self._cluster.name,
            addon_name=addon,
            addon_version=versions[addon],
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            configuration_values=(json.dumps(configuration, sort_keys=True)
                                  if configuration else None),
            pod_identity_association=(
                [ea.EksAddonPodIdentityAssociation(role_arn=role.role_arn,
                                                   service_account=service_account)]
                if role is not None else None),
            depends_on=None if before_nodes else [self._node_group],
        )

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> GpuEksClusterProps:
        return self._props

    @property
    def physical_cluster_name(self) -> str:
        """The cluster's name as a plain string (known at synth, for IAM condition keys)."""
        return self._props.physical_cluster_name

    @property
    def cluster_name(self) -> str:
        return self._cluster.name

    @property
    def cluster_arn(self) -> str:
        return self._cluster.arn

    @property
    def cluster_endpoint(self) -> str:
        return self._cluster.endpoint

    @property
    def cluster_certificate_authority_data(self) -> str:
        """Base64-encoded CA bundle, as EKS returns it."""
        return self._cluster.certificate_authority.get(0).data

    @property
    def kubernetes_version(self) -> str:
        return self._props.kubernetes_version

    @property
    def region(self) -> str:
        return self._region

    @property
    def account_id(self) -> str:
        return self._account_id

    @property
    def partition(self) -> str:
        return self._partition

    @property
    def vpc_id(self) -> str:
        return self._vpc_id

    @property
    def private_subnet_ids(self) -> list[str]:
        return list(self._private_subnet_ids)

    @property
    def node_security_group_id(self) -> str:
        """Security group of every node; tagged ``karpenter.sh/discovery: <cluster>``."""
        return self._node_sg.id

    @property
    def cluster_security_group_id(self) -> str:
        return self._cluster_sg.id

    @property
    def kms_key_arn(self) -> str:
        return self._key.arn

    @property
    def system_node_selector(self) -> dict[str, str]:
        return dict(SYSTEM_NODE_SELECTOR)

    @property
    def ready(self) -> list[TerraformResource]:
        """What an in-cluster ``helm_release`` must depend on: nodes and add-ons."""
        return [self._node_group, *self._addons.values()]

    @property
    def kubernetes_connection(self) -> KubernetesConnection:
        return self._kubernetes

    def add_pod_identity(self, scope: Construct, id_: str, *, namespace: str,
                         service_account: str, role_arn: str) -> TerraformResource:
        """Let pods of ``namespace/service_account`` assume ``role_arn`` (EKS Pod Identity).

        Creates an ``aws_eks_pod_identity_association`` under ``scope`` and returns it.
        """
        return aws.eks_pod_identity_association.EksPodIdentityAssociation(
            scope, id_, cluster_name=self._cluster.name, namespace=namespace,
            service_account=service_account, role_arn=role_arn,
        )


def _attach_managed(role: Role, key: str, policy_arn: str) -> TerraformResource:
    """``role.attach_managed`` and the attachment it created (for ``depends_on``)."""
    role.attach_managed(key, policy_arn)
    return role.node.find_child(key)


def _admin_key(arn: str) -> str:
    """Stable construct-ID key of an admin role: ``<account>-<role name>`` (the props have
    checked that every entry is a literal role ARN)."""
    match = _ROLE_ARN_RE.match(arn)
    assert match is not None, arn
    return f"{match.group(1)}-{match.group(2)}"


def props_from_config(config: Config, *, model_bucket_arn: str | None = None,
                      model_bucket_kms_key_arn: str | None = None) -> GpuEksClusterProps:
    """:class:`GpuEksClusterProps` from the ``cluster:`` section of the configuration."""
    cluster = config.cluster
    vpc: NewVpcProps | ExistingVpcProps
    if cluster.existing_vpc is not None:
        vpc = ExistingVpcProps(
            vpc_id=cluster.existing_vpc.vpc_id,
            private_subnet_ids=tuple(cluster.existing_vpc.private_subnet_ids),
            tag_subnets_for_discovery=cluster.existing_vpc.tag_subnets_for_discovery,
        )
    else:
        from constructs_lib.config import NewVpc  # noqa: PLC0415 - config stays import-light

        new = cluster.vpc or NewVpc()
        vpc = NewVpcProps(
            cidr=new.cidr, az_count=new.az_count, nat_gateways=new.nat_gateways,
            interface_endpoints=DEFAULT_INTERFACE_ENDPOINTS if new.interface_endpoints else (),
            flow_logs=new.flow_logs,
            availability_zones=tuple(new.availability_zones),
        )
    versions = dict(cluster.addons)
    return GpuEksClusterProps(
        name=config.name,
        cluster_name=cluster.cluster_name,
        kubernetes_version=cluster.kubernetes_version,
        vpc=vpc,
        endpoint_public_access_cidrs=tuple(cluster.endpoint_public_access_cidrs),
        admin_role_arns=tuple(cluster.admin_role_arns),
        cluster_creator_admin=cluster.cluster_creator_admin,
        log_retention_days=cluster.log_retention_days,
        system_node_instance_type=cluster.system_node_group.instance_type,
        system_node_desired_size=cluster.system_node_group.desired_size,
        system_node_volume_gib=cluster.system_node_group.volume_gib,
        addon_versions=versions,
        cloudwatch_observability_version=cluster.cloudwatch_observability_version,
        model_bucket_arn=model_bucket_arn,
        model_bucket_kms_key_arn=model_bucket_kms_key_arn,
        tags=tuple(sorted(config.tags.items())),
    )



__all__ = [
    "CLUSTER_LOG_TYPES",
    "DEFAULT_ADDON_VERSIONS",
    "DEFAULT_INTERFACE_ENDPOINTS",
    "DISCOVERY_TAG",
    "SYSTEM_NODE_SELECTOR",
    "ExistingVpcProps",
    "GpuEksCluster",
    "GpuEksClusterProps",
    "KubernetesConnection",
    "NewVpcProps",
    "props_from_config",
]
