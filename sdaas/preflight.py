"""Pre-flight checks: what would make a deployment fail, found before ``terraform apply``.

``make preflight`` (or ``python -m sdaas.preflight``) runs read-only AWS calls and
prints one line per check -- ``OK``, ``WARN`` or ``FAIL`` with the reason and the fix:

=========================  ==============================================================
check                      what it asks AWS
=========================  ==============================================================
``credentials``            ``sts:GetCallerIdentity`` -- who the checks run as
``spot-service-role``      ``iam:GetRole AWSServiceRoleForEC2Spot`` (spot capacity only)
``on-demand-gpu-quota``    ``servicequotas:GetServiceQuota ec2 L-DB2E81BA`` (Running
                           On-Demand G and VT instances, in vCPUs) >= what the pool may run
``spot-gpu-quota``         ``servicequotas:GetServiceQuota ec2 L-3819A6DF`` (All G and VT
                           Spot Instance Requests, in vCPUs) >= what the pool may run
``family <name>``          ``ec2:DescribeInstanceTypes`` / ``ec2:DescribeInstanceTypeOfferings``
                           -- the family exists in the region and is offered in the AZs
``model-bucket``           ``s3:HeadBucket`` -- the bucket exists and these credentials reach it
=========================  ==============================================================

What the GPU pools may run (:func:`required_vcpus`), for each capacity type: its GPU limit
on the largest allowed instance type, i.e. ``limit x (vCPUs / GPUs of that type)``; below
that the quota check fails. Karpenter limits GPUs, not vCPUs, so a pool allowed to pick
one-GPU types with many vCPUs (``g5.16xlarge``: 64 vCPUs for one GPU) can need more: when
the quota covers the largest type but not that worst case, the check warns.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 for invalid
arguments. Honours ``AWS_ENDPOINT_URL`` (and the other standard AWS SDK variables).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sdaas.config import Config, ConfigError, load_config

PROG = "preflight"

SPOT_ROLE_NAME = "AWSServiceRoleForEC2Spot"
QUOTA_ON_DEMAND = "L-DB2E81BA"  # Running On-Demand G and VT instances (vCPUs)
QUOTA_SPOT = "L-3819A6DF"  # All G and VT Spot Instance Requests (vCPUs)
QUOTA_NAMES = {
    QUOTA_ON_DEMAND: "Running On-Demand G and VT instances",
    QUOTA_SPOT: "All G and VT Spot Instance Requests",
}
#: Families counted against the G and VT quotas above (P, Inf, Trn... have their own).
G_AND_VT_FAMILY = re.compile(r"^(g|vt)\d")

_FAMILY = re.compile(r"^[a-z][a-z0-9-]*$")
_AZ_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+[a-z]$")
_AZ_ID = re.compile(r"^[a-z]{3,5}\d+-az\d+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403", "Forbidden"}
)
_FILTER_VALUES_PER_CALL = 50
#: What an AWS call may raise: service errors, and no credentials / no connection / timeouts.
AWS_ERRORS = (BotoCoreError, ClientError)


@dataclass(frozen=True)
class PreflightInputs:
    """What the checks compare AWS against (the GPU pool's settings and the model bucket).

    ``instance_families``: Karpenter instance families the GPU pool may launch (``g6``, ...).
    ``gpu_limit``: the ``nvidia.com/gpu`` limit of each capacity type in use (Karpenter limits
    each NodePool: a pool with spot and on-demand runs up to twice that);
    ``spot_gpu_limit`` / ``on_demand_gpu_limit``: one type's limit when it differs (the sum
    over every pool, for a configuration with several). ``spot`` / ``on_demand``: the
    capacity types it may use. ``model_bucket``: the bucket mounted into runtime pods
    (``None``: not checked). ``availability_zones``: names (``us-west-2a``) or IDs
    (``usw2-az1``) the nodes may run in; empty means every AZ of the region.
    """

    region: str
    instance_families: tuple[str, ...]
    gpu_limit: int | None = None
    spot: bool = True
    on_demand: bool = True
    model_bucket: str | None = None
    availability_zones: tuple[str, ...] = ()
    spot_gpu_limit: int | None = None
    on_demand_gpu_limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance_families", tuple(self.instance_families))
        object.__setattr__(self, "availability_zones", tuple(self.availability_zones))
        problems = []
        if not isinstance(self.region, str) or not self.region:
            problems.append("region must be a region name such as us-west-2")
        if not self.instance_families:
            problems.append("instance_families must name at least one family (e.g. g6)")
        for family in self.instance_families:
            if not isinstance(family, str) or not _FAMILY.match(family):
                problems.append(f"instance_families: {family!r} is not a family name like g6")
        if len(set(self.instance_families)) != len(self.instance_families):
            problems.append("instance_families lists a family twice")
        for key in ("gpu_limit", "spot_gpu_limit", "on_demand_gpu_limit"):
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"{key} must be an integer (got {value!r})")
            elif value < 1:
                problems.append(f"{key} must be >= 1 (got {value})")
        for kind, used in (("spot", self.spot), ("on_demand", self.on_demand)):
            if used and self.gpu_limit is None and getattr(self, f"{kind}_gpu_limit") is None:
                problems.append(f"gpu_limit or {kind}_gpu_limit is required ({kind} is used)")
        if not self.spot and not self.on_demand:
            problems.append("at least one of spot and on_demand must be enabled")
        if self.model_bucket is not None and not _BUCKET.match(self.model_bucket):
            problems.append(f"model_bucket: {self.model_bucket!r} is not a valid bucket name")
        names = [z for z in self.availability_zones if isinstance(z, str) and _AZ_NAME.match(z)]
        ids = [z for z in self.availability_zones if isinstance(z, str) and _AZ_ID.match(z)]
        for zone in self.availability_zones:
            if zone not in names and zone not in ids:
                problems.append(f"availability_zones: {zone!r} is neither an AZ name nor an ID")
        if names and ids:
            problems.append("availability_zones: use AZ names or AZ IDs, not both")
        for zone in names:
            if isinstance(self.region, str) and not zone.startswith(self.region):
                problems.append(f"availability_zones: {zone} is not in region {self.region}")
        if problems:
            raise ValueError(
                "invalid pre-flight inputs:\n" + "\n".join(f"  - {p}" for p in problems)
            )

    def gpus(self, *, spot: bool) -> int:
        """The GPUs the pools may run on spot (``spot=True``) or on-demand capacity."""
        own = self.spot_gpu_limit if spot else self.on_demand_gpu_limit
        return own if own is not None else (self.gpu_limit or 0)

    @property
    def total_gpus(self) -> int:
        """The GPUs the pools may run at once, spot and on-demand together."""
        return (self.gpus(spot=True) if self.spot else 0) + (
            self.gpus(spot=False) if self.on_demand else 0)

    @property
    def uses_zone_ids(self) -> bool:
        return any(_AZ_ID.match(zone) for zone in self.availability_zones)


# --------------------------------------------------------------------------- GPU sizing


@dataclass(frozen=True)
class InstanceShape:
    vcpus: int
    gpus: int
    gpu_manufacturer: str | None = "NVIDIA"


#: Fallback when ec2:DescribeInstanceTypes cannot be called: whole-GPU G families.
BUILTIN_GPU_INSTANCE_TYPES: Mapping[str, InstanceShape] = {
    **{
        f"g4dn.{size}": InstanceShape(vcpus, gpus)
        for size, vcpus, gpus in [
            ("xlarge", 4, 1), ("2xlarge", 8, 1), ("4xlarge", 16, 1), ("8xlarge", 32, 1),
            ("12xlarge", 48, 4), ("16xlarge", 64, 1), ("metal", 96, 8),
        ]
    },
    **{
        f"g4ad.{size}": InstanceShape(vcpus, gpus, "AMD")
        for size, vcpus, gpus in [
            ("xlarge", 4, 1), ("2xlarge", 8, 1), ("4xlarge", 16, 1), ("8xlarge", 32, 2),
            ("16xlarge", 64, 4),
        ]
    },
    **{
        f"g5g.{size}": InstanceShape(vcpus, gpus)
        for size, vcpus, gpus in [
            ("xlarge", 4, 1), ("2xlarge", 8, 1), ("4xlarge", 16, 1), ("8xlarge", 32, 1),
            ("16xlarge", 64, 2), ("metal", 64, 2),
        ]
    },
    **{
        f"{family}.{size}": InstanceShape(vcpus, gpus)
        for family in ("g5", "g6", "g6e")
        for size, vcpus, gpus in [
            ("xlarge", 4, 1), ("2xlarge", 8, 1), ("4xlarge", 16, 1), ("8xlarge", 32, 1),
            ("12xlarge", 48, 4), ("16xlarge", 64, 1), ("24xlarge", 96, 4), ("48xlarge", 192, 8),
        ]
    },
    **{
        f"g7e.{size}": InstanceShape(vcpus, gpus)
        for size, vcpus, gpus in [
            ("2xlarge", 8, 1), ("4xlarge", 16, 1), ("8xlarge", 32, 1), ("12xlarge", 48, 2),
            ("24xlarge", 96, 4), ("48xlarge", 192, 8),
        ]
    },
    "gr6.4xlarge": InstanceShape(16, 1),
    "gr6.8xlarge": InstanceShape(32, 1),
}  # fmt: skip


def family_of(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


@dataclass(frozen=True)
class VcpuRequirement:
    """vCPUs the pool may run: ``vcpus`` on the largest type, ``worst_case_vcpus`` at most."""

    vcpus: int
    instance_type: str
    vcpus_per_gpu: float
    worst_case_vcpus: int
    worst_case_instance_type: str


def required_vcpus(
    instance_families: Iterable[str],
    gpu_limit: int,
    catalog: Mapping[str, InstanceShape] = BUILTIN_GPU_INSTANCE_TYPES,
) -> VcpuRequirement | None:
    """vCPUs needed to run ``gpu_limit`` GPUs of the given families (``None``: no GPU types).

    ``vcpus`` uses the largest allowed instance type (most vCPUs, then most GPUs, then
    name): ``gpu_limit x vcpus/gpus`` rounded up. ``worst_case_vcpus`` uses the type with
    the most vCPUs per GPU instead. Types without whole GPUs are ignored.
    """
    families = set(instance_families)
    types = sorted(
        (name, shape)
        for name, shape in catalog.items()
        if family_of(name) in families and shape.gpus > 0
    )
    if not types:
        return None
    largest, big = max(types, key=lambda t: (t[1].vcpus, t[1].gpus, t[0]))
    worst, bad = max(types, key=lambda t: (t[1].vcpus / t[1].gpus, t[1].vcpus, t[0]))
    return VcpuRequirement(
        vcpus=-(-gpu_limit * big.vcpus // big.gpus),
        instance_type=largest,
        vcpus_per_gpu=big.vcpus / big.gpus,
        worst_case_vcpus=-(-gpu_limit * bad.vcpus // bad.gpus),
        worst_case_instance_type=worst,
    )


# --------------------------------------------------------------------------- checks


class Status(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    reason: str
    fix: str | None = None


@dataclass
class Clients:
    """boto3 clients for the checks; tests pass stubbed or emulator-bound clients."""

    sts: Any
    iam: Any
    ec2: Any
    service_quotas: Any
    s3: Any

    @classmethod
    def create(cls, region: str, session: Any = None) -> Clients:
        import boto3  # noqa: PLC0415 - keep `--help` and argument errors fast
        from botocore.config import Config  # noqa: PLC0415

        session = session or boto3.session.Session(region_name=region)
        # Every call has a timeout; "standard" retries (3 attempts) cover throttling and
        # transient 5xx answers only.
        config = Config(
            region_name=region,
            connect_timeout=5,
            read_timeout=20,
            retries={"mode": "standard", "max_attempts": 3},
        )
        return cls(
            sts=session.client("sts", config=config),
            iam=session.client("iam", config=config),
            ec2=session.client("ec2", config=config),
            service_quotas=session.client("service-quotas", config=config),
            s3=session.client("s3", config=config),
        )


@dataclass
class _Context:
    inputs: PreflightInputs
    clients: Clients
    catalog: dict[str, InstanceShape] = field(default_factory=dict)
    catalog_note: str | None = None


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """One short line for an AWS error (service error bodies can be whole HTML pages)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code') or 'error'}: {error.get('Message') or exc}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _could_not_check(name: str, exc: Exception, action: str) -> CheckResult:
    code = _error_code(exc)
    if code in _DENIED:
        return CheckResult(
            name,
            Status.WARN,
            f"could not check: {action} was denied ({code})",
            f"run the checks as an identity allowed {action}",
        )
    return CheckResult(name, Status.WARN, f"could not check ({action}): {describe_error(exc)}")


def check_credentials(ctx: _Context) -> CheckResult:
    try:
        identity = ctx.clients.sts.get_caller_identity()
    except AWS_ERRORS as exc:  # any failure here means no usable credentials
        return CheckResult(
            "credentials",
            Status.FAIL,
            f"cannot call AWS: {describe_error(exc)}; the other checks were not run",
            "configure credentials (AWS_PROFILE, SSO login or access keys) for the target account",
        )
    return CheckResult(
        "credentials",
        Status.OK,
        f"account {identity.get('Account')}, running as {identity.get('Arn')}",
    )


def check_spot_role(ctx: _Context) -> CheckResult:
    name = "spot-service-role"
    if not ctx.inputs.spot:
        return CheckResult(name, Status.OK, "not needed: the GPU pool does not use spot")
    try:
        role = ctx.clients.iam.get_role(RoleName=SPOT_ROLE_NAME)["Role"]
    except AWS_ERRORS as exc:  # classified below
        if _error_code(exc) == "NoSuchEntity":
            return CheckResult(
                name,
                Status.FAIL,
                f"{SPOT_ROLE_NAME} does not exist: spot launches fail until it does",
                "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com",
            )
        return _could_not_check(name, exc, "iam:GetRole")
    return CheckResult(name, Status.OK, f"{SPOT_ROLE_NAME} exists ({role.get('Arn')})")


def load_catalog(ctx: _Context) -> None:
    """Instance types of the allowed families, from ec2:DescribeInstanceTypes."""
    patterns = [f"{family}.*" for family in ctx.inputs.instance_families]
    try:
        paginator = ctx.clients.ec2.get_paginator("describe_instance_types")
        for page in paginator.paginate(Filters=[{"Name": "instance-type", "Values": patterns}]):
            for item in page.get("InstanceTypes", []):
                gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
                ctx.catalog[item["InstanceType"]] = InstanceShape(
                    vcpus=int(item["VCpuInfo"]["DefaultVCpus"]),
                    gpus=sum(int(g.get("Count") or 0) for g in gpus),
                    gpu_manufacturer=gpus[0].get("Manufacturer") if gpus else None,
                )
    except AWS_ERRORS as exc:  # fall back to the built-in table
        ctx.catalog = {
            name: shape
            for name, shape in BUILTIN_GPU_INSTANCE_TYPES.items()
            if family_of(name) in ctx.inputs.instance_families
        }
        ctx.catalog_note = (
            f"instance types from the built-in table (ec2:DescribeInstanceTypes failed: "
            f"{describe_error(exc)})"
        )


def check_quota(ctx: _Context, code: str) -> CheckResult:
    spot = code == QUOTA_SPOT
    name = "spot-gpu-quota" if spot else "on-demand-gpu-quota"
    title = f"{QUOTA_NAMES[code]} ({code})"
    if not (ctx.inputs.spot if spot else ctx.inputs.on_demand):
        kind = "spot" if spot else "on-demand"
        return CheckResult(name, Status.OK, f"not needed: the GPU pool does not use {kind}")
    families = [f for f in ctx.inputs.instance_families if G_AND_VT_FAMILY.match(f)]
    others = sorted(set(ctx.inputs.instance_families) - set(families))
    note = f" (not covered by this quota, not checked: {', '.join(others)})" if others else ""
    if not families:
        return CheckResult(name, Status.WARN, f"no G or VT family in the pool{note}")
    gpus = ctx.inputs.gpus(spot=spot)
    need = required_vcpus(families, gpus, ctx.catalog)
    if need is None:
        return CheckResult(
            name,
            Status.WARN,
            f"cannot size the pool: no GPU instance types known for {', '.join(families)}",
        )
    try:
        quota = _get_quota(ctx.clients.service_quotas, code)
    except AWS_ERRORS as exc:  # classified in _could_not_check
        return _could_not_check(name, exc, "servicequotas:GetServiceQuota")
    have = int(quota)
    sizing = (
        f"{gpus} GPUs x {need.vcpus_per_gpu:g} vCPUs per GPU "
        f"on {need.instance_type}"
    )
    increase = (
        f"aws service-quotas request-service-quota-increase --service-code ec2 "
        f"--quota-code {code} --region {ctx.inputs.region} --desired-value "
    )
    if have < need.vcpus:
        return CheckResult(
            name,
            Status.FAIL,
            f"{title} is {have} vCPUs; the GPU pool may need {need.vcpus} ({sizing}){note}",
            f"{increase}{need.vcpus}, or lower the pool's GPU limit",
        )
    if have < need.worst_case_vcpus:
        return CheckResult(
            name,
            Status.WARN,
            f"{title} is {have} vCPUs: enough for {sizing}, but not for "
            f"{need.worst_case_vcpus} if every GPU runs on {need.worst_case_instance_type}"
            f"{note}",
            f"{increase}{need.worst_case_vcpus}, or restrict the pool's instance sizes",
        )
    return CheckResult(
        name, Status.OK, f"{title} is {have} vCPUs; the GPU pool may need {need.vcpus}{note}"
    )


def _get_quota(client: Any, code: str) -> float:
    """The applied quota value, or the AWS default when none is applied to the account."""
    try:
        return float(client.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"])
    except ClientError as exc:
        if _error_code(exc) != "NoSuchResourceException":
            raise
    answer = client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)
    return float(answer["Quota"]["Value"])


def _zones(ctx: _Context) -> tuple[str, list[str]]:
    """(location type, AZs to check): the configured ones, or every AZ of the region."""
    if ctx.inputs.availability_zones:
        kind = "availability-zone-id" if ctx.inputs.uses_zone_ids else "availability-zone"
        return kind, list(ctx.inputs.availability_zones)
    answer = ctx.clients.ec2.describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
    )
    zones = [z["ZoneName"] for z in answer["AvailabilityZones"] if z.get("State") == "available"]
    return "availability-zone", sorted(zones)


def check_families(ctx: _Context) -> list[CheckResult]:
    families = sorted(ctx.inputs.instance_families)
    try:
        kind, zones = _zones(ctx)
        types = sorted(name for name in ctx.catalog if family_of(name) in families)
        offered: dict[str, set[str]] = {family: set() for family in families}
        paginator = ctx.clients.ec2.get_paginator("describe_instance_type_offerings")
        for start in range(0, len(types), _FILTER_VALUES_PER_CALL):
            chunk = types[start : start + _FILTER_VALUES_PER_CALL]
            pages = paginator.paginate(
                LocationType=kind,
                Filters=[
                    {"Name": "instance-type", "Values": chunk},
                    {"Name": "location", "Values": zones},
                ],
            )
            for page in pages:
                for offer in page.get("InstanceTypeOfferings", []):
                    offered[family_of(offer["InstanceType"])].add(offer["Location"])
    except AWS_ERRORS as exc:  # classified in _could_not_check
        return [
            _could_not_check(f"family {family}", exc, "ec2:DescribeInstanceTypeOfferings")
            for family in families
        ]
    results = []
    where = ", ".join(zones)
    for family in families:
        name = f"family {family}"
        members = [t for t in ctx.catalog if family_of(t) == family]
        if not members and ctx.catalog_note:
            results.append(
                CheckResult(
                    name,
                    Status.WARN,
                    f"could not check: {family} is not in the built-in table and "
                    "ec2:DescribeInstanceTypes failed",
                    "allow ec2:DescribeInstanceTypes",
                )
            )
            continue
        if not members:
            results.append(
                CheckResult(
                    name,
                    Status.FAIL,
                    f"no instance types named {family}.* exist in {ctx.inputs.region}",
                    "check the family name, or choose a region that offers it",
                )
            )
            continue
        makers = {ctx.catalog[t].gpu_manufacturer for t in members} - {None}
        if not makers:
            results.append(
                CheckResult(name, Status.WARN, f"{family} instances have no GPUs",
                            f"remove {family} from the GPU pool's instance families")
            )  # fmt: skip
            continue
        if "NVIDIA" not in makers:
            results.append(
                CheckResult(
                    name,
                    Status.WARN,
                    f"{family} has {'/'.join(sorted(makers))} GPUs; the GPU nodes run the "
                    "Bottlerocket NVIDIA variant and will never use them",
                    f"remove {family} from the GPU pool's instance families",
                )
            )
            continue
        missing = sorted(set(zones) - offered[family])
        if len(missing) == len(zones):
            results.append(
                CheckResult(
                    name,
                    Status.FAIL,
                    f"{family} is not offered in any of {where}: no GPU node can launch",
                    f"choose AZs that offer it (aws ec2 describe-instance-type-offerings "
                    f"--location-type {kind} --filters Name=instance-type,Values={family}.*"
                    f" --region {ctx.inputs.region}) or another family",
                )
            )
        elif missing:
            results.append(
                CheckResult(
                    name,
                    Status.WARN,
                    f"{family} is not offered in {', '.join(missing)} (offered in "
                    f"{', '.join(sorted(offered[family]))}): its nodes launch only there",
                    "add a family offered in every AZ for spot capacity and resilience",
                )
            )
        else:
            results.append(CheckResult(name, Status.OK, f"{family} is offered in {where}"))
    return results


def check_model_bucket(ctx: _Context) -> CheckResult:
    name = "model-bucket"
    bucket = ctx.inputs.model_bucket
    if bucket is None:
        return CheckResult(name, Status.WARN, "no model bucket configured: not checked")
    try:
        answer = ctx.clients.s3.head_bucket(Bucket=bucket)
    except AWS_ERRORS as exc:  # classified below
        code = _error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return CheckResult(
                name,
                Status.FAIL,
                f"s3://{bucket} does not exist",
                "create the bucket and upload the models, or fix the bucket name",
            )
        if code in _DENIED:
            return CheckResult(
                name,
                Status.FAIL,
                f"s3://{bucket} exists but these credentials are denied (it belongs to "
                "another account, or its policy does not allow s3:ListBucket)",
                f"allow s3:ListBucket on arn:aws:s3:::{bucket} to the deploying identity and "
                "the runtime roles, or fix the bucket name",
            )
        if code in ("301", "PermanentRedirect"):
            return CheckResult(
                name,
                Status.WARN,
                f"s3://{bucket} is in another region than {ctx.inputs.region}",
                "keep the models in the cluster's region (cross-region reads are slow and billed)",
            )
        return _could_not_check(name, exc, "s3:ListBucket")
    region = answer.get("BucketRegion") or (
        answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
    )
    if region and region != ctx.inputs.region:
        return CheckResult(
            name,
            Status.WARN,
            f"s3://{bucket} is reachable but in {region}, not {ctx.inputs.region}",
            "keep the models in the cluster's region (cross-region reads are slow and billed)",
        )
    return CheckResult(name, Status.OK, f"s3://{bucket} is reachable")


def run_checks(inputs: PreflightInputs, clients: Clients | None = None) -> list[CheckResult]:
    """Every check, in report order. Read-only AWS calls only."""
    ctx = _Context(inputs, clients or Clients.create(inputs.region))
    identity = check_credentials(ctx)
    if identity.status is Status.FAIL:
        return [identity]
    results = [identity, check_spot_role(ctx)]
    load_catalog(ctx)
    results.append(check_quota(ctx, QUOTA_ON_DEMAND))
    results.append(check_quota(ctx, QUOTA_SPOT))
    results.extend(check_families(ctx))
    results.append(check_model_bucket(ctx))
    if ctx.catalog_note:
        results.append(CheckResult("instance-types", Status.WARN, ctx.catalog_note,
                                   "allow ec2:DescribeInstanceTypes"))  # fmt: skip
    return results


def render_report(inputs: PreflightInputs, results: Sequence[CheckResult]) -> str:
    capacity = ", ".join(
        f"{inputs.gpus(spot=spot)} {kind}"
        for kind, spot, on in (("spot", True, inputs.spot), ("on-demand", False, inputs.on_demand))
        if on
    )
    zones = ", ".join(inputs.availability_zones) or "every AZ"
    lines = [
        f"Pre-flight checks for {inputs.region}: GPU pool {', '.join(inputs.instance_families)}"
        f" up to {inputs.total_gpus} GPUs ({capacity}) in {zones}",
        "",
    ]
    width = max(len(r.name) for r in results)
    for result in results:
        line = f"{result.status.value:<4}  {result.name:<{width}}  {result.reason}"
        if result.fix and result.status is not Status.OK:
            line += f". Fix: {result.fix}"
        lines.append(line)
    counts = {status: sum(r.status is status for r in results) for status in Status}
    lines += [
        "",
        f"{counts[Status.FAIL]} failed, {counts[Status.WARN]} "
        f"warning{'' if counts[Status.WARN] == 1 else 's'}, {counts[Status.OK]} passed.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Read-only checks of an AWS account before deploying the GPU service. "
        "The GPU pools come from --config, or from --instance-families and --gpu-limit; "
        "options given with --config override what the file says.",
        epilog="Exit status: 0 nothing failed, 1 a check failed, 2 invalid arguments.",
    )
    parser.add_argument(
        "--config", nargs="?", const="", metavar="FILE",
        help="read the region, GPU pools, zones and model bucket from the configuration file "
        "(FILE, or without it: $SD_CONFIG, config.yaml, config.example.yaml)",
    )
    parser.add_argument(
        "--region",
        help="AWS region (default: the configuration's, else $AWS_REGION, then "
        "$AWS_DEFAULT_REGION)",
    )
    parser.add_argument(
        "--instance-families",
        type=_csv,
        metavar="LIST",
        help="GPU pool instance families, comma-separated (e.g. g6,g5)",
    )
    parser.add_argument(
        "--gpu-limit", type=int,
        help="nvidia.com/gpu limit of each capacity type (each NodePool) of the GPU pool",
    )
    parser.add_argument(
        "--capacity-types",
        type=_csv,
        metavar="LIST",
        help="spot, on-demand or both, comma-separated (default: spot,on-demand)",
    )
    parser.add_argument("--model-bucket", help="S3 bucket holding the models")
    parser.add_argument(
        "--availability-zones",
        type=_csv,
        metavar="LIST",
        help="AZ names or IDs the nodes may use, comma-separated (default: every AZ)",
    )
    return parser


def inputs_from_config(config: Config) -> PreflightInputs:
    """What the configuration file asks of the account.

    Every GPU pool (one per runtime, or one shared) may run its spot limit on spot and its
    on-demand limit on-demand at the same time: each quota is checked against the sum over
    pools of its capacity type's limits; the families are the union over pools.
    """
    from constructs_lib.karpenter.pools import plan_pools  # noqa: PLC0415 - the library
    from sdaas.props import karpenter_props  # noqa: PLC0415

    pools = plan_pools(karpenter_props(config))
    families: list[str] = []
    for pool in pools:
        families.extend(f for f in pool.instance_families if f not in families)
    gpu = config.karpenter.gpu
    vpc = config.cluster.vpc
    return PreflightInputs(
        region=config.region,
        instance_families=tuple(families),
        spot_gpu_limit=sum(pool.spot_gpu_limit for pool in pools),
        on_demand_gpu_limit=sum(pool.on_demand_gpu_limit for pool in pools),
        spot=gpu.spot,
        on_demand=gpu.on_demand_fallback,
        model_bucket=config.model_bucket.existing_bucket,
        availability_zones=tuple(vpc.availability_zones) if vpc is not None else (),
    )


def _inputs(args: argparse.Namespace) -> PreflightInputs:
    """The inputs the arguments describe (``ValueError`` listing every problem)."""
    given: dict[str, Any] = {}
    if args.region:
        given["region"] = args.region
    if args.instance_families is not None:
        given["instance_families"] = args.instance_families
    if args.gpu_limit is not None:
        given.update(gpu_limit=args.gpu_limit, spot_gpu_limit=None, on_demand_gpu_limit=None)
    if args.capacity_types is not None:
        given.update(spot="spot" in args.capacity_types,
                     on_demand="on-demand" in args.capacity_types)
    if args.model_bucket is not None:
        given["model_bucket"] = args.model_bucket
    if args.availability_zones is not None:
        given["availability_zones"] = args.availability_zones
    if args.config is not None:
        base = dataclasses.asdict(inputs_from_config(load_config(args.config or None)))
        return PreflightInputs(**{**base, **given})
    missing = [flag for flag, key in (("--instance-families", "instance_families"),
                                      ("--gpu-limit", "gpu_limit")) if key not in given]
    if missing:
        raise ValueError(f"{' and '.join(missing)} required without --config")
    given.setdefault("region", os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION"))
    if not given["region"]:
        raise ValueError("no region: pass --region or set AWS_REGION")
    return PreflightInputs(**given)


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    unknown = sorted(set(args.capacity_types or ()) - {"spot", "on-demand"})
    if unknown:
        print(f"{PROG}: error: unknown capacity type(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        inputs = _inputs(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    results = run_checks(inputs, clients)
    sys.stdout.write(render_report(inputs, results))
    return 1 if any(r.status is Status.FAIL for r in results) else 0


__all__: list[str] = [
    "BUILTIN_GPU_INSTANCE_TYPES",
    "CheckResult",
    "Clients",
    "InstanceShape",
    "PreflightInputs",
    "Status",
    "VcpuRequirement",
    "main",
    "render_report",
    "required_vcpus",
    "run_checks",
]

if __name__ == "__main__":
    sys.exit(main())
