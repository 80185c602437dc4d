"""Cost notes: the fixed monthly baseline of a configuration and the GPU cost per image.

Prices are approximate on-demand list prices (USD, us-west-2) kept in ``PRICES_PER_HOUR``;
they change, and other regions differ, so the figures are for orientation and review of a
configuration change, not for billing. Data transfer, requests, storage and logs come on
top and depend on traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdaas.config import Config

HOURS_PER_MONTH = 730
PRICES_PER_HOUR = {
    "eks-control-plane": 0.10,
    "nat-gateway": 0.045,
    "interface-endpoint-per-az": 0.01,
    # system node instance types
    "m7i.large": 0.1008, "m7i.xlarge": 0.2016, "m6i.large": 0.096, "m5.large": 0.096,
    "t3.large": 0.0832, "t3.medium": 0.0416,
    # smallest size of each GPU family (1 GPU)
    "g6.xlarge": 0.8048, "g6e.xlarge": 1.861, "g5.xlarge": 1.006, "g4dn.xlarge": 0.526,
}
INTERFACE_ENDPOINTS = 6  # ecr.api, ecr.dkr, sts, sqs, sns, logs


@dataclass(frozen=True)
class CostLine:
    item: str
    monthly_usd: float | None
    note: str


def baseline(config: Config) -> list[CostLine]:
    """What the stack costs per month with no task running (GPU pools at zero)."""
    cluster = config.cluster
    lines = [CostLine("EKS control plane", PRICES_PER_HOUR["eks-control-plane"] * HOURS_PER_MONTH,
                      "one cluster")]
    node = cluster.system_node_group
    price = PRICES_PER_HOUR.get(node.instance_type)
    lines.append(CostLine(
        f"system nodes ({node.desired_size} x {node.instance_type}, on-demand)",
        None if price is None else price * node.desired_size * HOURS_PER_MONTH,
        "" if price is not None else "no price on record for this type"))
    if cluster.existing_vpc is None:
        vpc = cluster.vpc
        az_count = vpc.az_count if vpc is not None else 3
        nat_count = 1 if vpc is not None and vpc.nat_gateways == "single" else az_count
        lines.append(CostLine(f"NAT gateways ({nat_count})",
                              PRICES_PER_HOUR["nat-gateway"] * nat_count * HOURS_PER_MONTH,
                              "plus $0.045 per GB processed"))
        if vpc is None or vpc.interface_endpoints:
            count = INTERFACE_ENDPOINTS * az_count
            lines.append(CostLine(
                f"interface endpoints ({INTERFACE_ENDPOINTS} services x {az_count} AZs)",
                PRICES_PER_HOUR["interface-endpoint-per-az"] * count * HOURS_PER_MONTH,
                "plus $0.01 per GB; set cluster.vpc.interface_endpoints: false to drop"))
    return lines


def per_image(config: Config) -> list[CostLine]:
    """GPU cost of one image per runtime, on each allowed family's smallest size."""
    families = config.karpenter.gpu.instance_families
    lines = []
    for runtime in config.runtimes:
        for family in families:
            price = PRICES_PER_HOUR.get(f"{family}.xlarge")
            if price is None:
                continue
            cost = price * runtime.seconds_per_image / 3600
            lines.append(CostLine(
                f"{runtime.name}: one image on {family}.xlarge ({runtime.seconds_per_image:g} s)",
                None, f"${cost:.5f} on-demand per image (${cost * 1000:.2f} per 1,000)"))
    return lines


def markdown(config: Config) -> str:
    base = baseline(config)
    known = [line.monthly_usd for line in base if line.monthly_usd is not None]
    rows = [f"| {line.item} | {'' if line.monthly_usd is None else f'${line.monthly_usd:,.0f}'}"
            f" | {line.note} |" for line in base]
    image_rows = [f"| {line.item} | {line.note} |" for line in per_image(config)]
    return "\n".join([
        "## Cost notes (example configuration)",
        "",
        "Approximate on-demand list prices, us-west-2 (`sdaas/costs.py`). GPU",
        "pools scale to zero, so the baseline is what runs with no task queued. Spot",
        "capacity, tried first, usually costs well below the on-demand figures.",
        "",
        "| fixed monthly baseline | USD / month | note |",
        "|---|---|---|",
        *rows,
        f"| **total** | **${sum(known):,.0f}** | |",
        "",
        "| GPU cost per image (at full utilisation) | cost |",
        "|---|---|",
        *image_rows,
        "",
    ])
