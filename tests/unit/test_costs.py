"""Cost notes follow the configuration."""

from __future__ import annotations

import pytest

from sdaas.config import parse_config
from sdaas.costs import HOURS_PER_MONTH, PRICES_PER_HOUR, baseline, per_image

RUNTIMES = [{"name": "sdruntime", "type": "sdwebui", "seconds_per_image": 6}]


def _lines(config):
    return {line.item.split(" (")[0]: line for line in baseline(config)}


def test_baseline_counts_nat_per_az_and_endpoints():
    cfg = parse_config({"runtimes": RUNTIMES, "cluster": {"vpc": {"az_count": 2}}})
    lines = _lines(cfg)
    assert lines["NAT gateways"].monthly_usd == pytest.approx(
        2 * PRICES_PER_HOUR["nat-gateway"] * HOURS_PER_MONTH)
    assert lines["interface endpoints"].monthly_usd == pytest.approx(
        12 * PRICES_PER_HOUR["interface-endpoint-per-az"] * HOURS_PER_MONTH)


def test_single_nat_and_no_endpoints_cost_less():
    cfg = parse_config({"runtimes": RUNTIMES, "cluster": {"vpc": {
        "nat_gateways": "single", "interface_endpoints": False}}})
    lines = _lines(cfg)
    assert lines["NAT gateways"].monthly_usd == pytest.approx(
        PRICES_PER_HOUR["nat-gateway"] * HOURS_PER_MONTH)
    assert "interface endpoints" not in lines


def test_per_image_cost_scales_with_seconds_per_image():
    cfg = parse_config({"runtimes": RUNTIMES, "karpenter": {"gpu": {"instance_families": ["g6"]}}})
    (line,) = per_image(cfg)
    expected = PRICES_PER_HOUR["g6.xlarge"] * 6 / 3600
    assert f"${expected:.5f}" in line.note
