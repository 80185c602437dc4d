"""charts/gpu-nodepool rendered with the values the synthesized ``helm_release`` carries.

Each pool release's ``values`` document is taken from the synthesized JSON, its Terraform
references replaced by what they resolve to (the referenced resource's own name: the
cluster name, the node role name), rendered with the Helm SDK from the packaged chart
asset, and validated strictly: the schemas and CEL rules of the CRDs from the pinned
``karpenter-crd`` chart (closed objects, defaults applied) and the Kubernetes 1.35 schemas.
The upstream ``karpenter`` release itself is rendered in tests/charts/test_upstream_releases.py.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from constructs_lib.cluster import GpuEksClusterProps
from constructs_lib.karpenter import (
    DisruptionBudget,
    GpuPoolRuntime,
    KarpenterGpuPoolProps,
    duration_seconds,
)
from tests.support.charts import (
    find,
    find_one,
    render_chart,
    validate_strict,
)

REFERENCE = re.compile(r"\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}")
RUNTIMES = (GpuPoolRuntime(name="sdruntime", task_timeout_seconds=600),
            GpuPoolRuntime(name="comfyui", task_timeout_seconds=1200))


def resolve(doc: dict[str, Any], text: str) -> str:
    """Replace each ``${type.id.attr}`` by the value it will have: for ``name`` (and ``id``
    of named resources) the referenced resource's own ``name`` argument. Anything else is an
    error: an unexpected reference in pool values must fail the test, not slip through."""

    def value(match: re.Match[str]) -> str:
        data, rtype, rid, attr = match.groups()
        if data or attr != "name":
            raise AssertionError(f"unexpected reference in pool values: {match.group(0)}")
        name = doc["resource"][rtype][rid]["name"]
        assert isinstance(name, str) and "${" not in name, name
        return name

    return REFERENCE.sub(value, text)


def pool_releases(synth) -> dict[str, dict[str, Any]]:
    return {body["name"]: body for body in synth.resources("helm_release").values()
            if body["name"].startswith("gpu-")}


def render_release(synth, release: dict[str, Any], chart_dir=None) -> list[dict[str, Any]]:
    (text,) = release["values"]
    values = yaml.safe_load(resolve(synth.doc, text))
    chart = chart_dir or (synth.stack_dir / release["chart"])
    return render_chart(chart, values, release["name"], release["namespace"])


def rendered_pools(synth, chart_dir=None) -> dict[str, list[dict[str, Any]]]:
    return {name[len("gpu-"):]: render_release(synth, release, chart_dir)
            for name, release in pool_releases(synth).items()}


@pytest.fixture(scope="module")
def example_pools(example):
    return rendered_pools(example)


def node_pools(manifests):
    return {m["metadata"]["name"]: m["spec"] for m in find(manifests, "NodePool")}


def node_class(manifests):
    return find_one(manifests, "EC2NodeClass")["spec"]


def variant_pools(synth_variant, chart_dir, **pool_kwargs):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=pool_kwargs.pop("runtimes", RUNTIMES), **pool_kwargs))
    return synth, rendered_pools(synth, chart_dir)


@pytest.fixture(scope="module")
def chart_dir(example):
    """The packaged chart asset of the example stack (what Terraform will install)."""
    (chart,) = {r["chart"] for r in pool_releases(example).values()}
    return example.stack_dir / chart


# --- the example deployment ---------------------------------------------------------------


def test_every_pool_release_renders_and_validates_strictly(upstream_crds, example_pools):
    assert sorted(example_pools) == ["comfyui", "sdruntime"]
    for pool, manifests in example_pools.items():
        validate_strict(manifests, crds=upstream_crds)  # schemas and CEL rules
        assert sorted(m["metadata"]["name"] for m in manifests) == [
            pool, f"{pool}-on-demand", f"{pool}-spot"]


def test_node_class_joins_this_cluster_with_the_pool_node_role(example_pools):
    for manifests in example_pools.values():
        spec = node_class(manifests)
        assert spec["role"] == "sdaas-karpenter-node"
        discovery = [{"tags": {"karpenter.sh/discovery": "sdaas"}}]
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == discovery
        assert spec["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.54.0"}]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert spec["associatePublicIPAddress"] is False
        for mapping in spec["blockDeviceMappings"]:
            assert mapping["ebs"]["encrypted"] is True
        assert spec["blockDeviceMappings"][1]["ebs"]["volumeSize"] == "200Gi"


def test_the_discovery_tag_matches_what_the_cluster_tags(example, example_pools):
    """Subnets and the node security group carry the very tag the node class selects."""
    selector = node_class(example_pools["sdruntime"])["subnetSelectorTerms"][0]["tags"]
    subnet_tags = [b["tags"] for b in example.resources("aws_subnet").values()
                   if "PrivateSubnet" in b["//"]["metadata"]["path"]]
    assert subnet_tags and all(selector.items() <= tags.items() for tags in subnet_tags)
    node_sg = example.by_path("aws_security_group", "Cluster/NodeSecurityGroup")
    assert selector.items() <= node_sg["tags"].items()


def test_nodes_carry_cost_allocation_tags(example_pools):
    tags = node_class(example_pools["comfyui"])["tags"]
    assert tags == {"project": "sd-async-eks", "sd-async/stack": "sdaas", "sd.pool": "comfyui",
                    "sd.runtime": "comfyui"}


def test_pools_match_what_pool_for_promises(example, example_pools):
    for runtime, manifests in example_pools.items():
        ref = example.pool.pool_for(runtime)
        pools = node_pools(manifests)
        assert sum(p["limits"]["nvidia.com/gpu"] for p in pools.values()) == ref.gpu_limit
        for spec in pools.values():
            template = spec["template"]
            assert ref.node_selector.items() <= template["metadata"]["labels"].items()
            for taint in template["spec"]["taints"]:
                assert any(t["key"] == taint["key"] and t["effect"] == taint["effect"]
                           and (t["operator"] == "Exists" or t["value"] == taint["value"])
                           for t in ref.tolerations), taint
            grace = duration_seconds(template["spec"]["terminationGracePeriod"])
            assert grace == ref.termination_grace_period_seconds
            assert grace >= 600 + 300  # the runtime's longest task plus the shutdown margin


def test_spot_first_on_demand_fallback_and_busy_nodes_never_consolidated(example_pools):
    pools = node_pools(example_pools["sdruntime"])
    spot, on_demand = pools["sdruntime-spot"], pools["sdruntime-on-demand"]
    assert spot["weight"] > on_demand["weight"]
    for spec in (spot, on_demand):
        assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty",
                                      "consolidateAfter": "5m", "budgets": [{"nodes": "10%"}]}
        assert spec["template"]["spec"]["expireAfter"] == "720h"
        families = [r for r in spec["template"]["spec"]["requirements"]
                    if r["key"] == "karpenter.k8s.aws/instance-family"]
        assert families == [{"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                             "values": ["g6", "g6e", "g5"]}]


# --- variants -------------------------------------------------------------------------------


def test_instance_store_raid0_with_soci_parallel_pull(upstream_crds, synth_variant, chart_dir):
    _, pools = variant_pools(synth_variant, chart_dir, instance_store_raid0=True)
    manifests = pools["sdruntime"]
    validate_strict(manifests, crds=upstream_crds)
    spec = node_class(manifests)
    assert spec["instanceStorePolicy"] == "RAID0"
    assert 'snapshotter = "soci"' in spec["userData"]
    assert 'pull-mode = "parallel-pull-unpack"' in spec["userData"]
    assert "snapshotID" not in spec["blockDeviceMappings"][1]["ebs"]


def test_image_cache_snapshot_with_an_initialisation_rate(upstream_crds, synth_variant, chart_dir):
    runtimes = (GpuPoolRuntime(name="sdruntime", task_timeout_seconds=600,
                               image_cache_snapshot_id="snap-0123456789abcdef0",
                               volume_initialization_rate_mibps=250),
                GpuPoolRuntime(name="comfyui", task_timeout_seconds=600))
    _, pools = variant_pools(synth_variant, chart_dir, runtimes=runtimes)
    for manifests in pools.values():
        validate_strict(manifests, crds=upstream_crds)
    data = node_class(pools["sdruntime"])["blockDeviceMappings"][1]["ebs"]
    assert (data["snapshotID"], data["volumeInitializationRate"]) == (
        "snap-0123456789abcdef0", 250)
    assert "snapshotID" not in node_class(pools["comfyui"])["blockDeviceMappings"][1]["ebs"]
    assert "instanceStorePolicy" not in node_class(pools["sdruntime"])


def test_shared_pool_and_on_demand_only(upstream_crds, synth_variant, chart_dir):
    synth, pools = variant_pools(synth_variant, chart_dir, pool_model="shared", spot=False)
    (manifests,) = pools.values()
    validate_strict(manifests, crds=upstream_crds)
    assert list(node_pools(manifests)) == ["shared-on-demand"]
    (spec,) = node_pools(manifests).values()
    assert [t["key"] for t in spec["template"]["spec"]["taints"]] == ["nvidia.com/gpu"]
    assert spec["template"]["spec"]["terminationGracePeriod"] == "25m"  # 1200 s + 300 s
    assert synth.pool.pool_for("sdruntime").gpu_limit == 4


def test_pinned_alias_and_scheduled_budgets(upstream_crds, synth_variant, chart_dir):
    budgets = (DisruptionBudget(nodes="0", schedule="0 8 * * mon-fri", duration="10h",
                                reasons=("Drifted",)),
               DisruptionBudget(nodes="20%"))
    _, pools = variant_pools(synth_variant, chart_dir, bottlerocket_alias="bottlerocket@v1.55.1",
                             disruption_budgets=budgets)
    manifests = pools["comfyui"]
    validate_strict(manifests, crds=upstream_crds)
    assert node_class(manifests)["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.55.1"}]
    for spec in node_pools(manifests).values():
        assert spec["disruption"]["budgets"] == [
            {"nodes": "0", "schedule": "0 8 * * mon-fri", "duration": "10h",
             "reasons": ["Drifted"]},
            {"nodes": "20%"}]


# --- CRD rules JSON Schema cannot express (CEL) ---------------------------------------------
# For each rule our inputs could break, the props refuse the input first, and the CEL check
# refuses the manifest it would have produced: the two stay consistent.


@pytest.mark.parametrize("key", ["karpenter.sh/nodepool", "karpenter.sh/nodeclaim",
                                 "karpenter.k8s.aws/ec2nodeclass", "eks:eks-cluster-name",
                                 "kubernetes.io/cluster/sdaas"])
def test_restricted_tag_keys_are_refused_by_props_and_by_the_crd(upstream_crds, key, example_pools):
    with pytest.raises(ValueError, match="is set by Karpenter or the pool chart"):
        KarpenterGpuPoolProps(runtimes=RUNTIMES, tags=((key, "x"),))
    manifest = copy.deepcopy(find_one(example_pools["sdruntime"], "EC2NodeClass"))
    assert upstream_crds.problems(manifest) == []
    manifest["spec"]["tags"][key] = "x"
    assert any("restricted tag" in p for p in upstream_crds.problems(manifest)), key


def test_initialisation_rate_needs_a_snapshot_in_props_and_in_the_crd(upstream_crds, example_pools):
    with pytest.raises(ValueError, match="needs image_cache_snapshot_id"):
        KarpenterGpuPoolProps(runtimes=RUNTIMES, volume_initialization_rate_mibps=200)
    manifest = copy.deepcopy(find_one(example_pools["sdruntime"], "EC2NodeClass"))
    manifest["spec"]["blockDeviceMappings"][1]["ebs"]["volumeInitializationRate"] = 200
    assert upstream_crds.problems(manifest) == [
        ".spec.blockDeviceMappings[1].ebs: snapshotID must be set when "
        "volumeInitializationRate is set"]


def test_budget_schedule_needs_a_duration_in_props_and_in_the_crd(upstream_crds, example_pools):
    with pytest.raises(ValueError, match="schedule and duration go together"):
        KarpenterGpuPoolProps(runtimes=RUNTIMES,
                              disruption_budgets=(DisruptionBudget(nodes="1", schedule="@daily"),))
    manifest = copy.deepcopy(find_one(example_pools["sdruntime"], "NodePool",
                                      "sdruntime-spot"))
    manifest["spec"]["disruption"]["budgets"] = [{"nodes": "1", "schedule": "@daily"}]
    assert upstream_crds.problems(manifest) == [
        ".spec.disruption.budgets: 'schedule' must be set with 'duration'"]


def test_instance_family_requirement_never_has_an_empty_in(upstream_crds, example_pools):
    with pytest.raises(ValueError, match="must name at least one instance family"):
        KarpenterGpuPoolProps(runtimes=RUNTIMES, instance_families=())
    manifest = copy.deepcopy(find_one(example_pools["sdruntime"], "NodePool",
                                      "sdruntime-on-demand"))
    for requirement in manifest["spec"]["template"]["spec"]["requirements"]:
        if requirement["key"] == "karpenter.k8s.aws/instance-family":
            requirement["values"] = []
    assert any("operator 'In' must have a value" in p for p in upstream_crds.problems(manifest))


def test_alias_excludes_other_ami_selectors_and_a_foreign_family(upstream_crds, example_pools):
    """The pinned alias is the only AMI selector, and no amiFamily contradicts it."""
    manifest = copy.deepcopy(find_one(example_pools["comfyui"], "EC2NodeClass"))
    assert "amiFamily" not in manifest["spec"]
    manifest["spec"]["amiFamily"] = "AL2023"
    assert any("must be 'Bottlerocket' or 'Custom'" in p for p in upstream_crds.problems(manifest))
    manifest["spec"]["amiFamily"] = "Bottlerocket"
    manifest["spec"]["amiSelectorTerms"].append({"id": "ami-0123456789abcdef0"})
    assert any("'alias' is mutually exclusive" in p for p in upstream_crds.problems(manifest))


def test_node_labels_stay_out_of_karpenters_restricted_domains(upstream_crds, example_pools):
    manifest = copy.deepcopy(find_one(example_pools["comfyui"], "NodePool", "comfyui-spot"))
    labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert labels == {"sd.pool": "comfyui", "sd.runtime": "comfyui"}
    labels["karpenter.sh/capacity"] = "x"
    assert any('label domain "karpenter.sh" is restricted' in p
               for p in upstream_crds.problems(manifest))
