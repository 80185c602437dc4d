"""Cost notes follow the stack: the baseline counts what Terraform holds, the system node
type follows the system pods' requests, the GPU cost follows the runtimes."""

from __future__ import annotations

import pytest

from sdaas import capacity
from sdaas.config import parse_config
from sdaas.costs import (
    HOURS_PER_MONTH,
    ON_DEMAND_PER_HOUR,
    PRICES,
    TYPICAL_SPOT_PER_HOUR,
    BillableResources,
    NodeGroup,
    baseline,
    per_image,
    resources_from_plan,
    resources_from_terraform,
    total,
)

RUNTIMES = [{"name": "sdruntime", "type": "sdwebui", "seconds_per_image": 6}]
GUIDANCE_BASELINE = 189.50  # the reference Guidance's fixed monthly baseline


def _by_item(lines):
    return {line.item.split(" (")[0]: line.monthly_usd for line in lines}


def test_example_baseline_is_pinned(synthesized):
    res = resources_from_terraform(synthesized.doc)
    assert res == BillableResources(
        clusters=1, node_groups=(NodeGroup("t4g.medium", 2, 20),), nat_gateways=1,
        public_ipv4_addresses=1, interface_endpoints=0, interface_endpoint_zones=0,
        kms_keys=2, secrets=1, alarms=8, dashboards=1)
    lines = baseline(res)
    assert _by_item(lines) == pytest.approx({
        "EKS control plane": 73.00,
        "system nodes": 2 * 0.0336 * 730,  # 49.06
        "system node volumes": 2 * 20 * 0.08,
        "NAT gateways": 0.045 * 730,
        "public IPv4 addresses": 0.005 * 730,
        "KMS keys": 2.00,
        "Secrets Manager secrets": 0.40,
        "CloudWatch alarms": 8 * 0.10 + 3.00,
    })
    assert total(lines) == pytest.approx(167.96, abs=0.01)
    assert total(lines) < GUIDANCE_BASELINE


def test_endpoints_and_a_nat_per_zone_are_priced_per_zone():
    res = BillableResources(clusters=1, nat_gateways=3, public_ipv4_addresses=3,
                            interface_endpoints=6, interface_endpoint_zones=18)
    lines = _by_item(baseline(res))
    assert lines["NAT gateways"] == pytest.approx(3 * PRICES["nat-gateway-hour"] * 730)
    assert lines["interface endpoints"] == pytest.approx(
        18 * PRICES["interface-endpoint-az-hour"] * HOURS_PER_MONTH)  # $131.40
    assert lines["interface endpoints"] == pytest.approx(131.40)


def test_an_unpriced_instance_type_is_named_not_guessed():
    (line, _volume) = baseline(BillableResources(node_groups=(NodeGroup("x9z.huge", 2, 20),)))
    assert line.monthly_usd is None and "no price on record" in line.note


def test_a_plan_is_counted_like_the_synthesized_configuration():
    """Plan JSON: nested blocks are lists, references unknown, the launch template named
    in the configuration; deleted resources do not count."""
    changes = [
        ("aws_eks_cluster", "c", {"name": "sdaas"}, {}),
        ("aws_eks_node_group", "ng", {"instance_types": ["t4g.medium"],
                                      "scaling_config": [{"desired_size": 2}]}, {}),
        ("aws_launch_template", "lt", {"block_device_mappings": [
            {"ebs": [{"volume_size": 30}]}]}, {}),
        ("aws_vpc_endpoint", "ecr", {"vpc_endpoint_type": "Interface"},
         {"subnet_ids": [True, True]}),
        ("aws_vpc_endpoint", "s3", {"vpc_endpoint_type": "Gateway"}, {}),
        ("aws_nat_gateway", "nat", {}, {}),
        ("aws_eip", "nat", {}, {}),
    ]
    configuration = {"root_module": {"resources": [{
        "type": "aws_eks_node_group", "name": "ng",
        "expressions": {"launch_template": [{"id": {"references": [
            "aws_launch_template.lt.id", "aws_launch_template.lt"]}}]}}]}}
    assert resources_from_plan(changes, configuration) == BillableResources(
        clusters=1, node_groups=(NodeGroup("t4g.medium", 2, 30),), nat_gateways=1,
        public_ipv4_addresses=1, interface_endpoints=1, interface_endpoint_zones=2)


def test_gpu_cost_per_1000_images_on_demand_and_spot():
    cfg = parse_config({"runtimes": RUNTIMES, "karpenter": {"gpu": {"instance_families": ["g6"]}}})
    (cost,) = per_image(cfg)
    hours = 6 * 1000 / 3600
    assert cost.instance_type == "g6.xlarge"
    assert cost.on_demand_per_1000 == pytest.approx(ON_DEMAND_PER_HOUR["g6.xlarge"] * hours)
    assert cost.spot_per_1000 == pytest.approx(TYPICAL_SPOT_PER_HOUR["g6.xlarge"] * hours)
    assert cost.spot_per_1000 < cost.on_demand_per_1000


def test_a_runtime_pool_override_prices_its_own_families():
    cfg = parse_config({"runtimes": RUNTIMES, "karpenter": {
        "gpu": {"instance_families": ["g6"]},
        "pools": {"sdruntime": {"instance_families": ["g5", "g4dn"]}}}})
    assert [c.instance_type for c in per_image(cfg)] == ["g5.xlarge", "g4dn.xlarge"]


# --- system node sizing ----------------------------------------------------------------


def test_busiest_node_takes_every_daemonset_and_a_share_of_each_deployment():
    pods = [capacity.SystemPod("ds", None, 100, 10, ""),
            capacity.SystemPod("two", 2, 500, 512, ""),
            capacity.SystemPod("one", 1, 50, 64, "")]
    assert capacity.busiest_node(pods, 2) == capacity.BusiestNode(650, 586, 3)
    assert capacity.busiest_node(pods, 1) == capacity.BusiestNode(1150, 1098, 4)


def test_two_small_nodes_lack_pod_slots_so_the_floor_is_t4g_medium(example_config):
    need = capacity.busiest_node(capacity.system_pods(example_config), 2)
    small = next(n for n in capacity.NODE_TYPES if n.name == "t4g.small")
    medium = next(n for n in capacity.NODE_TYPES if n.name == "t4g.medium")
    # CPU and memory would fit a t4g.small; its 11 pod slots do not.
    assert need.cpu_m <= small.allocatable_cpu_m
    assert need.memory_mi <= small.allocatable_memory_mi
    assert need.pods + capacity.SURGE_SLOTS > small.max_pods
    assert not capacity.fits(small, need) and capacity.fits(medium, need)
    assert capacity.smallest_fit(example_config) == medium
    assert example_config.cluster.system_node_group.instance_type == "t4g.medium"


def test_allocatable_follows_the_eks_ami_reservations():
    medium = next(n for n in capacity.NODE_TYPES if n.name == "t4g.medium")
    assert medium.allocatable_cpu_m == 2000 - 60 - 10
    assert medium.allocatable_memory_mi == 4096 - (255 + 11 * 17) - 100


def test_requests_are_read_from_the_values_files(monkeypatch, example_config):
    values = {"karpenter": {"replicas": 2, "controller": {"resources": {
        "requests": {"cpu": "1", "memory": "2Gi"}}}}, "keda": {}}
    monkeypatch.setattr(capacity, "load_values", lambda release: values[release])
    karpenter = capacity.release_pods()[0]
    assert (karpenter.replicas, karpenter.cpu_m, karpenter.memory_mi) == (2, 1000, 2048)


def test_observability_off_removes_its_agents():
    on = parse_config({"runtimes": RUNTIMES})
    off = parse_config({"runtimes": RUNTIMES,
                        "cluster": {"cloudwatch_observability_version": False}})
    names = {pod.name for pod in capacity.system_pods(on)} - {
        pod.name for pod in capacity.system_pods(off)}
    assert names == {"cloudwatch-agent", "fluent-bit",
                     "amazon-cloudwatch-observability controller"}


@pytest.mark.parametrize(("quantity", "mib"), [("512Mi", 512), ("1Gi", 1024), ("1.5Gi", 1536)])
def test_memory_quantities(quantity, mib):
    assert capacity.mebibytes(quantity) == mib


def test_an_unexpected_memory_quantity_is_named():
    with pytest.raises(ValueError, match="512M"):
        capacity.mebibytes("512M")
