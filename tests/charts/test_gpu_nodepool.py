"""charts/gpu-nodepool: render the example pools, validate strictly, check behaviour."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.charts.conftest import GPU_NODEPOOL_CHART
from tests.charts.example_values import CLUSTER, RUNTIMES, pool_values, runtime_values
from tests.support.charts import (
    HELM_VALUES_DIR,
    ChartRenderError,
    Manifest,
    find,
    find_one,
    load_values_file,
    render_chart,
    validate_strict,
)


def render(pool: str = "sdruntime", runtime: str = "sdruntime", **overrides: Any) -> list[Manifest]:
    return render_chart(
        GPU_NODEPOOL_CHART, pool_values(pool, runtime, **overrides), f"gpu-{pool}", "karpenter"
    )


def node_class(manifests: list[Manifest]) -> dict[str, Any]:
    return find_one(manifests, "EC2NodeClass")["spec"]


def node_pools(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m["spec"] for m in find(manifests, "NodePool")}


def requirement(pool: dict[str, Any], key: str) -> dict[str, Any]:
    (found,) = [r for r in pool["template"]["spec"]["requirements"] if r["key"] == key]
    return found


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


@pytest.mark.parametrize("pool", sorted(RUNTIMES))
def test_renders_and_validates_strictly(upstream_crds, pool_manifests, pool):
    manifests = pool_manifests[pool]
    validate_strict(manifests, crds=upstream_crds)
    assert sorted(m["metadata"]["name"] for m in manifests) == [
        pool,
        f"{pool}-on-demand",
        f"{pool}-spot",
    ]


def test_node_class_requires_imdsv2_with_hop_limit_one(pool_manifests):
    spec = node_class(pool_manifests["sdruntime"])
    assert spec["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }


def test_node_class_uses_a_pinned_bottlerocket_alias_and_the_node_role(pool_manifests):
    spec = node_class(pool_manifests["sdruntime"])
    assert spec["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.54.0"}]
    assert re.fullmatch(r"bottlerocket@v\d+\.\d+\.\d+", spec["amiSelectorTerms"][0]["alias"])
    assert spec["role"] == f"{CLUSTER}-karpenter-node"
    assert "instanceProfile" not in spec
    assert "amiFamily" not in spec


def test_node_class_discovers_subnets_and_security_groups_by_cluster_tag(pool_manifests):
    spec = node_class(pool_manifests["comfyui"])
    discovery = [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
    assert spec["subnetSelectorTerms"] == discovery
    assert spec["securityGroupSelectorTerms"] == discovery
    assert spec["associatePublicIPAddress"] is False


def test_node_class_volumes_are_encrypted_root_and_data(pool_manifests):
    mappings = node_class(pool_manifests["sdruntime"])["blockDeviceMappings"]
    assert [m["deviceName"] for m in mappings] == ["/dev/xvda", "/dev/xvdb"]
    root, data = mappings
    assert root["rootVolume"] is True
    assert root["ebs"]["volumeSize"] == "4Gi"
    assert data["ebs"]["volumeSize"] == "100Gi"
    assert data["ebs"]["volumeType"] == "gp3"
    assert data["ebs"]["throughput"] == 250
    for mapping in mappings:
        assert mapping["ebs"]["encrypted"] is True
        assert mapping["ebs"]["deleteOnTermination"] is True
        assert "kmsKeyID" not in mapping["ebs"]
    assert "snapshotID" not in data["ebs"]
    assert "instanceStorePolicy" not in node_class(pool_manifests["sdruntime"])
    assert "userData" not in node_class(pool_manifests["sdruntime"])


def test_kms_key_and_data_volume_size_come_from_values(upstream_crds):
    key = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"
    manifests = render(volumes={"dataVolumeSize": "250Gi", "kmsKeyID": key})
    validate_strict(manifests, crds=upstream_crds)
    root, data = node_class(manifests)["blockDeviceMappings"]
    assert data["ebs"]["volumeSize"] == "250Gi"
    assert root["ebs"]["kmsKeyID"] == data["ebs"]["kmsKeyID"] == key


def test_node_class_tags_include_cost_allocation_tags(pool_manifests):
    tags = node_class(pool_manifests["sdruntime"])["tags"]
    assert tags == {
        "Project": "sd-async",
        "CostCenter": "gen-ai",
        "sd.pool": "sdruntime",
        "sd.runtime": "sdruntime",
    }


def test_spot_pool_outweighs_the_on_demand_fallback(pool_manifests):
    pools = node_pools(pool_manifests["sdruntime"])
    spot, on_demand = pools["sdruntime-spot"], pools["sdruntime-on-demand"]
    assert spot["weight"] > on_demand["weight"]
    assert requirement(spot, "karpenter.sh/capacity-type")["values"] == ["spot"]
    assert requirement(on_demand, "karpenter.sh/capacity-type")["values"] == ["on-demand"]


@pytest.mark.parametrize("pool", sorted(RUNTIMES))
def test_node_pools_select_gpu_families_and_cap_gpus(pool_manifests, pool):
    pools = node_pools(pool_manifests[pool])
    limits = {name: spec["limits"] for name, spec in pools.items()}
    assert limits == {
        f"{pool}-spot": {"nvidia.com/gpu": 8},
        f"{pool}-on-demand": {"nvidia.com/gpu": 4},
    }
    for spec in pools.values():
        template = spec["template"]
        assert template["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": pool,
        }
        assert requirement(spec, "karpenter.k8s.aws/instance-family") == {
            "key": "karpenter.k8s.aws/instance-family",
            "operator": "In",
            "values": ["g6", "g6e", "g5"],
        }
        assert requirement(spec, "kubernetes.io/arch")["values"] == ["amd64"]
        assert requirement(spec, "kubernetes.io/os")["values"] == ["linux"]
        assert template["metadata"]["labels"] == {"sd.pool": pool, "sd.runtime": pool}
        assert template["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
            {"key": "sd.runtime", "value": pool, "effect": "NoSchedule"},
        ]


def test_busy_nodes_are_never_consolidated_and_nodes_expire(pool_manifests):
    for spec in node_pools(pool_manifests["sdruntime"]).values():
        assert spec["disruption"] == {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "5m",
            "budgets": [{"nodes": "10%"}],
        }
        assert spec["template"]["spec"]["expireAfter"] == "720h"
        assert spec["template"]["spec"]["terminationGracePeriod"] == "1h"


def test_node_drain_time_covers_the_runtime_grace_period():
    runtime = load_values_file(HELM_VALUES_DIR / "sd-runtime.yaml")
    pool = load_values_file(HELM_VALUES_DIR / "gpu-nodepool.yaml")
    assert (
        duration_seconds(pool["terminationGracePeriod"]) >= runtime["terminationGracePeriodSeconds"]
    )
    assert (
        runtime["terminationGracePeriodSeconds"]
        >= runtime["maxTaskSeconds"] + runtime["shutdownMarginSeconds"]
    )


def test_pods_of_each_runtime_match_their_pool(pool_manifests, runtime_manifests):
    for name in RUNTIMES:
        pool = node_pools(pool_manifests[name])[f"{name}-spot"]["template"]
        pod = find_one(runtime_manifests[name], "Deployment")["spec"]["template"]["spec"]
        labels = pool["metadata"]["labels"]
        (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        for expression in term["matchExpressions"]:
            assert labels[expression["key"]] in expression["values"]
        for taint in pool["spec"]["taints"]:
            assert any(
                t["key"] == taint["key"]
                and t["effect"] == taint["effect"]
                and (t["operator"] == "Exists" or t.get("value") == taint["value"])
                for t in pod["tolerations"]
            ), taint


def test_shared_pool_has_no_runtime_taint_or_label(upstream_crds):
    manifests = render("shared", "")
    validate_strict(manifests, crds=upstream_crds)
    for spec in node_pools(manifests).values():
        assert spec["template"]["metadata"]["labels"] == {"sd.pool": "shared"}
        assert [t["key"] for t in spec["template"]["spec"]["taints"]] == ["nvidia.com/gpu"]
    assert "sd.runtime" not in node_class(manifests)["tags"]
    runtime = runtime_values(
        "sdruntime", "sdwebui", nodePool={"name": "shared", "dedicated": False}
    )
    assert runtime["nodePool"] == {"name": "shared", "dedicated": False}


def test_on_demand_fallback_can_be_disabled(upstream_crds):
    manifests = render(onDemand={"enabled": False})
    validate_strict(manifests, crds=upstream_crds)
    assert list(node_pools(manifests)) == ["sdruntime-spot"]


def test_extra_requirements_and_labels_are_added(upstream_crds):
    manifests = render(
        extraRequirements=[
            {"key": "karpenter.k8s.aws/instance-size", "operator": "NotIn", "values": ["metal"]}
        ],
        nodeLabels={"team": "imaging"},
    )
    validate_strict(manifests, crds=upstream_crds)
    spot = node_pools(manifests)["sdruntime-spot"]
    assert requirement(spot, "karpenter.k8s.aws/instance-size")["values"] == ["metal"]
    assert spot["template"]["metadata"]["labels"]["team"] == "imaging"


def test_image_cache_snapshot_is_restored_on_the_data_volume(upstream_crds):
    manifests = render(
        imageCache={"snapshotID": "snap-0123456789abcdef0", "volumeInitializationRate": 200}
    )
    validate_strict(manifests, crds=upstream_crds)
    spec = node_class(manifests)
    data = spec["blockDeviceMappings"][1]["ebs"]
    assert data["snapshotID"] == "snap-0123456789abcdef0"
    assert data["volumeInitializationRate"] == 200
    assert "snapshotID" not in spec["blockDeviceMappings"][0]["ebs"]
    assert "instanceStorePolicy" not in spec
    assert "userData" not in spec


def test_instance_store_uses_raid0_and_soci_parallel_pull(upstream_crds):
    manifests = render(instanceStore={"enabled": True})
    validate_strict(manifests, crds=upstream_crds)
    spec = node_class(manifests)
    assert spec["instanceStorePolicy"] == "RAID0"
    settings = tomllib.loads(spec["userData"])["settings"]
    assert settings["container-runtime"] == {"snapshotter": "soci"}
    soci = settings["container-runtime-plugins"]["soci-snapshotter"]
    assert soci["pull-mode"] == "parallel-pull-unpack"
    assert soci["parallel-pull-unpack"] == {
        "max-concurrent-downloads-per-image": 20,
        "concurrent-download-chunk-size": "16mb",
        "max-concurrent-unpacks-per-image": 12,
        "discard-unpacked-layers": True,
    }
    bind = settings["bootstrap-commands"]["010-bind-soci-snapshotter"]
    assert bind["commands"] == [
        ["apiclient", "ephemeral-storage", "bind", "--dirs", "/var/lib/soci-snapshotter"]
    ]
    assert bind["essential"] is False
    assert "snapshotID" not in spec["blockDeviceMappings"][1]["ebs"]


def test_instance_store_without_soci_and_extra_user_data():
    manifests = render(
        instanceStore={"enabled": True, "soci": {"enabled": False}},
        extraUserData='[settings.kernel.sysctl]\n"vm.max_map_count" = "262144"',
    )
    spec = node_class(manifests)
    assert spec["instanceStorePolicy"] == "RAID0"
    assert tomllib.loads(spec["userData"]) == {
        "settings": {"kernel": {"sysctl": {"vm.max_map_count": "262144"}}}
    }


def test_latest_alias_only_when_explicitly_allowed():
    with pytest.raises(ChartRenderError, match="not pinned"):
        render(amiAlias="bottlerocket@latest")
    manifests = render(amiAlias="bottlerocket@latest", allowLatestAmi=True)
    assert node_class(manifests)["amiSelectorTerms"] == [{"alias": "bottlerocket@latest"}]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "imageCache": {"snapshotID": "snap-0123456789abcdef0"},
                "instanceStore": {"enabled": True},
            },
            "mutually exclusive",
        ),
        ({"imageCache": {"volumeInitializationRate": 150}}, "requires imageCache.snapshotID"),
        (
            {"spot": {"weight": 10}},
            r"spot.weight \(10\) must be greater than onDemand.weight \(10\)",
        ),
        ({"spot": {"enabled": False}, "onDemand": {"enabled": False}}, "no NodePool"),
        ({"amiAlias": "al2023@latest"}, "amiAlias"),
        ({"amiAlias": "bottlerocket@1.54.0"}, "amiAlias"),
        ({"imageCache": {"snapshotID": "vol-123"}}, "snapshotID"),
        (
            {
                "imageCache": {
                    "snapshotID": "snap-0123456789abcdef0",
                    "volumeInitializationRate": 500,
                }
            },
            "volumeInitializationRate",
        ),
        ({"tags": {"kubernetes.io/cluster/sd-async": "owned"}}, "kubernetes.io/cluster"),
        ({"tags": {"eks:eks-cluster-name": "x"}}, "eks:eks-cluster-name"),
        ({"nodeLabels": {"karpenter.sh/foo": "x"}}, "karpenter.sh/foo"),
        ({"nodeLabels": {"sd.pool": "other"}}, "sd.pool"),
        ({"volumes": {"dataVolumeSize": "100GB"}}, "dataVolumeSize"),
        ({"disruption": {"consolidateAfter": "5 minutes"}}, "consolidateAfter"),
        ({"disruption": {"budgets": [{"nodes": "1", "schedule": "@daily"}]}}, "duration"),
        ({"terminationGracePeriod": "Never"}, "terminationGracePeriod"),
        ({"instanceFamilies": []}, "instanceFamilies"),
        ({"poolName": "GPU_Pool"}, "poolName"),
        ({"runtimes": "x"}, "runtimes"),
    ],
)
def test_invalid_values_fail_rendering(overrides, message):
    with pytest.raises(ChartRenderError, match=message):
        render(**overrides)


@pytest.mark.parametrize("key", ["poolName", "clusterName", "nodeRole"])
def test_missing_required_values_fail_rendering(key):
    values = pool_values("sdruntime", "sdruntime")
    del values[key]
    with pytest.raises(ChartRenderError, match=f"missing propert.*{key}"):
        render_chart(GPU_NODEPOOL_CHART, values, "gpu-sdruntime", "karpenter")
