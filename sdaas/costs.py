"""Cost notes: the fixed monthly baseline of a stack and the GPU cost per 1,000 images.

``python -m sdaas.costs cdktf.out/stacks/<name>`` (``make cost``) prints them for the
synthesized configuration of your own configuration file; ``sd-plan-summary`` prints the
baseline line of a plan. Both count the billable resources Terraform will hold
(:func:`resources_from_terraform`, :func:`resources_from_plan`) and price them with one
table, :data:`PRICES`: us-west-2 list prices as AWS published them in 2025, taken from

* EKS: https://aws.amazon.com/eks/pricing/ (standard support, per cluster-hour)
* EC2 on-demand: https://aws.amazon.com/ec2/pricing/on-demand/ (Linux)
* EC2 spot: https://aws.amazon.com/ec2/spot/pricing/ (typical prices; they change hourly,
  ``aws ec2 describe-spot-price-history`` shows yours)
* NAT gateway and public IPv4 addresses: https://aws.amazon.com/vpc/pricing/
* interface endpoints: https://aws.amazon.com/privatelink/pricing/
* EBS gp3: https://aws.amazon.com/ebs/pricing/
* KMS keys: https://aws.amazon.com/kms/pricing/
* Secrets Manager secrets: https://aws.amazon.com/secrets-manager/pricing/
* CloudWatch alarms and dashboards: https://aws.amazon.com/cloudwatch/pricing/

Other regions differ and prices change, so the figures are for review of a configuration,
not for billing. What depends on traffic comes on top: data through the NAT, requests,
storage, log ingestion and Container Insights observations, GPU hours.

Standard library only (the plan summary imports it).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdaas.config import Config

HOURS_PER_MONTH = 730
PRICES_AS_OF = "2025"
PRICES: Mapping[str, float] = {
    "eks-cluster-hour": 0.10,
    "nat-gateway-hour": 0.045,
    "public-ipv4-hour": 0.005,
    "interface-endpoint-az-hour": 0.01,
    "gp3-gib-month": 0.08,
    "kms-key-month": 1.00,
    "secret-month": 0.40,
    "alarm-month": 0.10,
    "dashboard-month": 3.00,
}
ON_DEMAND_PER_HOUR: Mapping[str, float] = {
    # system node candidates (Graviton first)
    "t4g.small": 0.0168, "t4g.medium": 0.0336, "t4g.large": 0.0672,
    "m7g.medium": 0.0408, "m7g.large": 0.0816, "m6g.large": 0.077, "c7g.large": 0.0725,
    "m7i.large": 0.1008, "m7i.xlarge": 0.2016, "m6i.large": 0.096, "m5.large": 0.096,
    "t3.medium": 0.0416, "t3.large": 0.0832,
    # smallest size of each GPU family (1 GPU)
    "g6.xlarge": 0.8048, "g6e.xlarge": 1.861, "g5.xlarge": 1.006, "g4dn.xlarge": 0.526,
}
TYPICAL_SPOT_PER_HOUR: Mapping[str, float] = {
    "g6.xlarge": 0.40, "g6e.xlarge": 0.85, "g5.xlarge": 0.45, "g4dn.xlarge": 0.22,
}
_REFERENCE = re.compile(r"^\$\{(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z_]+\}$")


@dataclass(frozen=True)
class NodeGroup:
    instance_type: str
    count: int
    volume_gib: int


@dataclass(frozen=True)
class BillableResources:
    """What a stack holds that costs money every hour, traffic or not."""

    clusters: int = 0
    node_groups: tuple[NodeGroup, ...] = ()
    nat_gateways: int = 0
    public_ipv4_addresses: int = 0
    interface_endpoints: int = 0
    interface_endpoint_zones: int = 0  # endpoint network interfaces (one per subnet)
    kms_keys: int = 0
    secrets: int = 0
    alarms: int = 0
    dashboards: int = 0


@dataclass(frozen=True)
class CostLine:
    item: str
    monthly_usd: float | None
    note: str = ""


def _count_of(values: Any) -> int:
    return len(values) if isinstance(values, list) else 0


def _first(values: Any) -> Any:
    """A nested block: a list of one in plan JSON, an object in synthesized JSON."""
    if isinstance(values, dict):
        return values
    return values[0] if isinstance(values, list) and values else None


def _resources(items: Iterable[tuple[str, str, Mapping[str, Any], Any]],
               launch_template_of: Mapping[str, str]) -> BillableResources:
    """Count from ``(type, name, values, subnet-count hint)`` of every managed resource."""
    by_type: dict[str, list[tuple[str, Mapping[str, Any], Any]]] = {}
    for rtype, name, values, hint in items:
        by_type.setdefault(rtype, []).append((name, values, hint))
    volumes: dict[str, int] = {}
    for name, values, _ in by_type.get("aws_launch_template", []):
        ebs = _first((_first(values.get("block_device_mappings")) or {}).get("ebs"))
        if isinstance(ebs, dict) and isinstance(ebs.get("volume_size"), int | float):
            volumes[name] = int(ebs["volume_size"])
    groups = []
    for name, values, _ in by_type.get("aws_eks_node_group", []):
        scaling = _first(values.get("scaling_config")) or {}
        volume = values.get("disk_size") or volumes.get(launch_template_of.get(name, ""), 20)
        for instance_type in (values.get("instance_types") or ["unknown"])[:1]:
            groups.append(NodeGroup(str(instance_type), int(scaling.get("desired_size") or 0),
                                    int(volume)))
    interface = [(values, hint) for _, values, hint in by_type.get("aws_vpc_endpoint", [])
                 if values.get("vpc_endpoint_type") == "Interface"]
    return BillableResources(
        clusters=len(by_type.get("aws_eks_cluster", [])),
        node_groups=tuple(groups),
        nat_gateways=len(by_type.get("aws_nat_gateway", [])),
        public_ipv4_addresses=len(by_type.get("aws_eip", [])),
        interface_endpoints=len(interface),
        interface_endpoint_zones=sum(hint for _, hint in interface),
        kms_keys=len(by_type.get("aws_kms_key", [])),
        secrets=len(by_type.get("aws_secretsmanager_secret", [])),
        alarms=len(by_type.get("aws_cloudwatch_metric_alarm", [])),
        dashboards=len(by_type.get("aws_cloudwatch_dashboard", [])),
    )


def resources_from_terraform(doc: Mapping[str, Any]) -> BillableResources:
    """Billable resources of a synthesized ``cdk.tf.json``."""
    items, launch_template_of = [], {}
    for rtype, named in (doc.get("resource") or {}).items():
        for name, values in named.items():
            items.append((rtype, name, values, _count_of(values.get("subnet_ids"))))
            if rtype == "aws_eks_node_group":
                ref = _REFERENCE.match(str((_first(values.get("launch_template")) or {})
                                           .get("id", "")))
                if ref:
                    launch_template_of[name] = ref.group(2)
    return _resources(items, launch_template_of)


def resources_from_plan(changes: Iterable[tuple[str, str, Any, Any]],
                        configuration: Mapping[str, Any]) -> BillableResources:
    """Billable resources a plan leaves: ``(type, name, after, after_unknown)`` of every
    managed resource it creates, keeps, updates or replaces, and the plan's
    ``configuration`` (which names the launch template of each node group)."""
    items = []
    for rtype, name, planned, planned_unknown in changes:
        after = planned if isinstance(planned, dict) else {}
        unknown = planned_unknown if isinstance(planned_unknown, dict) else {}
        subnets = after.get("subnet_ids") or unknown.get("subnet_ids")
        items.append((rtype, name, after, _count_of(subnets)))
    launch_template_of = {}
    root = configuration.get("root_module") or {}
    for resource in root.get("resources") or ():
        if resource.get("type") != "aws_eks_node_group":
            continue
        template = _first((resource.get("expressions") or {}).get("launch_template")) or {}
        for ref in (template.get("id") or {}).get("references") or ():
            parts = str(ref).split(".")
            if len(parts) >= 2 and parts[0] == "aws_launch_template":
                launch_template_of[resource.get("name", "")] = parts[1]
    return _resources(items, launch_template_of)


def _hours(price_per_hour: float, count: float = 1) -> float:
    return price_per_hour * count * HOURS_PER_MONTH


def baseline(res: BillableResources) -> list[CostLine]:
    """What the resources cost per month with no task running (GPU pools at zero)."""
    lines = []
    if res.clusters:
        lines.append(CostLine(f"EKS control plane ({res.clusters})",
                              _hours(PRICES["eks-cluster-hour"], res.clusters),
                              "standard support; extended support costs 6 times more"))
    for group in res.node_groups:
        price = ON_DEMAND_PER_HOUR.get(group.instance_type)
        lines.append(CostLine(
            f"system nodes ({group.count} x {group.instance_type}, on-demand)",
            None if price is None else _hours(price, group.count),
            "" if price is not None else "no price on record for this type"))
        lines.append(CostLine(f"system node volumes ({group.count} x {group.volume_gib} GiB gp3)",
                              PRICES["gp3-gib-month"] * group.volume_gib * group.count))
    if res.nat_gateways:
        lines.append(CostLine(f"NAT gateways ({res.nat_gateways})",
                              _hours(PRICES["nat-gateway-hour"], res.nat_gateways),
                              "plus $0.045 per GB processed"))
    if res.public_ipv4_addresses:
        lines.append(CostLine(f"public IPv4 addresses ({res.public_ipv4_addresses}, the NATs')",
                              _hours(PRICES["public-ipv4-hour"], res.public_ipv4_addresses)))
    if res.interface_endpoints:
        lines.append(CostLine(
            f"interface endpoints ({res.interface_endpoints} services, "
            f"{res.interface_endpoint_zones} zone attachments)",
            _hours(PRICES["interface-endpoint-az-hour"], res.interface_endpoint_zones),
            "plus $0.01 per GB; cluster.vpc.interface_endpoints: false drops them"))
    if res.kms_keys:
        lines.append(CostLine(f"KMS keys ({res.kms_keys})",
                              PRICES["kms-key-month"] * res.kms_keys))
    if res.secrets:
        lines.append(CostLine(f"Secrets Manager secrets ({res.secrets})",
                              PRICES["secret-month"] * res.secrets,
                              "the webhook signing key; plus $0.05 per 10,000 reads"))
    if res.alarms or res.dashboards:
        lines.append(CostLine(
            f"CloudWatch alarms ({res.alarms}) and dashboards ({res.dashboards})",
            PRICES["alarm-month"] * res.alarms + PRICES["dashboard-month"] * res.dashboards,
            "the first 10 alarms and 3 dashboards of an account are free"))
    return lines


def total(lines: Iterable[CostLine]) -> float:
    return sum(line.monthly_usd for line in lines if line.monthly_usd is not None)


@dataclass(frozen=True)
class ImageCost:
    runtime: str
    instance_type: str
    seconds_per_image: float
    on_demand_per_1000: float | None
    spot_per_1000: float | None = field(default=None)


def per_image(config: Config) -> list[ImageCost]:
    """GPU cost of 1,000 images per runtime on each allowed family's smallest size, at
    full utilisation (``seconds_per_image`` of the configuration)."""
    out = []
    for runtime in config.runtimes:
        pool = config.karpenter.pools.get(runtime.name)
        families = (pool.instance_families if pool and pool.instance_families
                    else config.karpenter.gpu.instance_families)
        for family in families:
            instance_type = f"{family}.xlarge"
            on_demand = ON_DEMAND_PER_HOUR.get(instance_type)
            spot = TYPICAL_SPOT_PER_HOUR.get(instance_type)
            per_1000_hours = runtime.seconds_per_image * 1000 / 3600
            out.append(ImageCost(
                runtime=runtime.name, instance_type=instance_type,
                seconds_per_image=runtime.seconds_per_image,
                on_demand_per_1000=None if on_demand is None else on_demand * per_1000_hours,
                spot_per_1000=None if spot is None else spot * per_1000_hours))
    return out


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def baseline_markdown(lines: list[CostLine]) -> list[str]:
    rows = [f"| {line.item} | {_usd(line.monthly_usd)} | {line.note} |" for line in lines]
    return ["| fixed monthly baseline | USD / month | note |", "|---|---|---|", *rows,
            f"| **total** | **{_usd(total(lines))}** | |"]


def markdown(config: Config, res: BillableResources, *, title: str) -> str:
    """The cost notes: baseline, system-node sizing, GPU cost per 1,000 images."""
    from sdaas.capacity import capacity_markdown  # noqa: PLC0415 - reads the helm values

    image_rows = [
        f"| {c.runtime} | {c.instance_type} | {c.seconds_per_image:g} s | "
        f"{_usd(c.on_demand_per_1000)} | {_usd(c.spot_per_1000)} |"
        for c in per_image(config)]
    return "\n".join([
        f"## {title}",
        "",
        f"us-west-2 list prices ({PRICES_AS_OF}, sources in `sdaas/costs.py`); other regions",
        "differ. GPU pools scale to zero, so the baseline is what runs with no task queued;",
        "traffic-dependent charges (NAT data, requests, logs, GPU hours) come on top.",
        *([f"Your configuration deploys to {config.region}: check its prices."]
          if config.region != "us-west-2" else []),
        "",
        *baseline_markdown(baseline(res)),
        "",
        capacity_markdown(config),
        "| GPU cost per 1,000 images (full utilisation) | instance | time per image | "
        "on-demand | typical spot |",
        "|---|---|---|---|---|",
        *image_rows,
        "",
        "Spot prices move with supply and demand (`aws ec2 describe-spot-price-history "
        "--instance-types g6.xlarge --product-descriptions Linux/UNIX`); Karpenter tries the "
        "spot pool first and falls back to on-demand.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    """``python -m sdaas.costs STACK_DIR``: the cost notes of your configuration."""
    from sdaas.config import ConfigError, config_path, load_config  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sdaas.costs cdktf.out/stacks/<name>", file=sys.stderr)
        return 2
    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    stack = Path(args[0]) / "cdk.tf.json"
    try:
        doc = json.loads(stack.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{stack}: cannot read the synthesized configuration ({exc}); run make synth",
              file=sys.stderr)
        return 2
    print(markdown(config, resources_from_terraform(doc),
                   title=f"Cost notes ({config_path().name})"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
