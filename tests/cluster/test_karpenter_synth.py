"""KarpenterGpuPool: identity and its scoping, interruption handling, releases, pools."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from constructs_lib.assets import chart_dir
from constructs_lib.cluster import GpuEksClusterProps
from constructs_lib.helm_values import dump_values
from constructs_lib.karpenter import (
    DEFAULT_CHART_VERSION,
    INTERRUPTION_RULES,
    KARPENTER_MINIMUM_FOR_KUBERNETES,
    DisruptionBudget,
    GpuPoolRuntime,
    KarpenterGpuPoolProps,
    check_karpenter_compatibility,
    duration_seconds,
    format_duration,
)
from sdaas.config import parse_config
from sdaas.props import karpenter_props

RUNTIMES = (GpuPoolRuntime(name="sdruntime", task_timeout_seconds=600),
            GpuPoolRuntime(name="comfyui", task_timeout_seconds=600))


def releases(synth):
    return {b["name"]: b for b in synth.resources("helm_release").values()}


def release_values(synth, name):
    (text,) = releases(synth)[name]["values"]
    return yaml.safe_load(text)


def controller_statements(synth):
    out = {}
    for key in ("ControllerNodeLifecycle", "ControllerIamIntegration", "ControllerDiscovery",
                "ControllerInterruption"):
        for statement in synth.policy(f"Karpenter/ControllerRole/{key}/Document"):
            out[statement["sid"]] = statement
    return out


def conditions(statement):
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}


# --- controller identity ------------------------------------------------------------------


def test_controller_assumes_its_role_through_pod_identity(example):
    (trust,) = example.policy("Karpenter/ControllerRole/Trust")
    assert trust["principals"] == [{"type": "Service", "identifiers": ["pods.eks.amazonaws.com"]}]
    assert sorted(trust["actions"]) == ["sts:AssumeRole", "sts:TagSession"]
    (association,) = example.resources("aws_eks_pod_identity_association").values()
    values = release_values(example, "karpenter")
    assert association["namespace"] == releases(example)["karpenter"]["namespace"] == (
        "kube-system")
    assert association["service_account"] == values["serviceAccount"]["name"] == "karpenter"
    assert association["role_arn"] == example.ref(
        "aws_iam_role", "Karpenter/ControllerRole/Role", "arn")


def test_every_ec2_write_is_scoped_to_this_clusters_tags(example):
    statements = controller_statements(example)
    owned = "kubernetes.io/cluster/sdaas"
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging"):
        found = conditions(statements[sid])
        assert found[("StringEquals", f"aws:RequestTag/{owned}")] == ["owned"], sid
        assert found[("StringEquals", "aws:RequestTag/eks:eks-cluster-name")] == ["sdaas"], sid
        assert found[("StringLike", "aws:RequestTag/karpenter.sh/nodepool")] == ["*"], sid
    for sid in ("AllowScopedEC2LaunchTemplateAccessActions", "AllowScopedResourceTagging",
                "AllowScopedDeletion"):
        found = conditions(statements[sid])
        assert found[("StringEquals", f"aws:ResourceTag/{owned}")] == ["owned"], sid
        assert found[("StringLike", "aws:ResourceTag/karpenter.sh/nodepool")] == ["*"], sid
    tagging = conditions(statements["AllowScopedResourceTagging"])
    assert tagging[("ForAllValues:StringEquals", "aws:TagKeys")] == [
        "eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
    assert statements["AllowScopedDeletion"]["actions"] == [
        "ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"]


def test_instance_profile_actions_are_scoped_to_this_cluster_and_region(example):
    statements = controller_statements(example)
    region = example.data_ref("aws_region", "Cluster/Region", "id")
    for sid in ("AllowScopedInstanceProfileCreationActions",
                "AllowScopedInstanceProfileTagActions", "AllowScopedInstanceProfileActions"):
        found = conditions(statements[sid])
        keys = {variable for _, variable in found}
        assert any(k.endswith("kubernetes.io/cluster/sdaas") for k in keys), sid
        assert any(k.endswith("topology.kubernetes.io/region") for k in keys), sid
        assert all(v == [region] for (_, k), v in found.items()
                   if k.endswith("topology.kubernetes.io/region")), sid
        assert all(r.endswith(":instance-profile/*") for r in statements[sid]["resources"])


def test_pass_role_is_only_for_this_pools_node_role_and_only_to_ec2(example):
    statements = controller_statements(example)
    passing = [s for s in statements.values() if "iam:PassRole" in s["actions"]]
    assert len(passing) == 1
    (statement,) = passing
    assert statement["resources"] == [example.ref("aws_iam_role", "Karpenter/NodeRole/Role",
                                                  "arn")]
    assert conditions(statement) == {("StringEquals", "iam:PassedToService"):
                                     ["ec2.amazonaws.com"]}


def test_star_resources_only_where_actions_have_no_resource_level_permission(example):
    statements = controller_statements(example)
    starred = {sid for sid, s in statements.items() if "*" in s.get("resources", [])}
    assert starred == {"AllowRegionalReadActions", "AllowPricingReadActions",
                       "AllowUnscopedInstanceProfileListAction"}
    reads = statements["AllowRegionalReadActions"]
    assert all(a.startswith("ec2:Describe") for a in reads["actions"])
    assert conditions(reads) == {("StringEquals", "aws:RequestedRegion"): [
        example.data_ref("aws_region", "Cluster/Region", "id")]}
    assert statements["AllowPricingReadActions"]["actions"] == ["pricing:GetProducts"]
    assert statements["AllowUnscopedInstanceProfileListAction"]["actions"] == [
        "iam:ListInstanceProfiles"]
    for statement in statements.values():
        assert statement["effect"] == "Allow"
        assert not any("*" in action for action in statement["actions"])


def test_controller_reads_only_this_queue_and_this_cluster(example):
    statements = controller_statements(example)
    assert statements["AllowInterruptionQueueActions"]["resources"] == [
        example.ref("aws_sqs_queue", "Karpenter/InterruptionQueue", "arn")]
    assert statements["AllowAPIServerEndpointDiscovery"]["resources"] == [
        example.ref("aws_eks_cluster", "Cluster/Cluster", "arn")]
    ssm = statements["AllowSSMReadActions"]["resources"]
    assert len(ssm) == 1 and ssm[0].endswith("::parameter/aws/service/*")


def _as_iam_json(statement):
    """A policy-document statement as IAM stores it (what the size limit counts)."""
    out = {"Sid": statement["sid"], "Effect": statement["effect"],
           "Action": statement["actions"]}
    if "resources" in statement:
        out["Resource"] = statement["resources"]
    grouped: dict = {}
    for condition in statement.get("condition", []):
        grouped.setdefault(condition["test"], {})[condition["variable"]] = condition["values"]
    if grouped:
        out["Condition"] = grouped
    return out


def test_inline_policies_fit_the_per_role_size_limit(example):
    """IAM allows 10,240 characters of inline policy per role (whitespace not counted)."""

    def resolved(match):  # pessimistic lengths for what references resolve to
        ref = match.group(0)
        if ref.endswith(".arn}"):
            return "x" * 120
        return {"name}": "x" * 20, "account_id}": "1" * 12, "partition}": "aws-us-gov"}.get(
            ref.rsplit(".", 1)[1], "x" * 64)

    total = 0
    for key in ("ControllerNodeLifecycle", "ControllerIamIntegration", "ControllerDiscovery",
                "ControllerInterruption"):
        statements = example.policy(f"Karpenter/ControllerRole/{key}/Document")
        rendered = json.dumps({"Version": "2012-10-17",
                               "Statement": [_as_iam_json(s) for s in statements]},
                              separators=(",", ":"))
        total += len(re.sub(r"\$\{[^}]+\}", resolved, rendered))
    assert 4000 < total < 10_240, total


# --- nodes ---------------------------------------------------------------------------------


def test_node_role_joins_with_an_ec2_linux_access_entry(example):
    entry = example.by_path("aws_eks_access_entry", "Karpenter/NodeAccessEntry")
    assert entry["type"] == "EC2_LINUX"
    assert entry["principal_arn"] == example.ref("aws_iam_role", "Karpenter/NodeRole/Role", "arn")
    (trust,) = example.policy("Karpenter/NodeRole/Trust")
    assert trust["principals"] == [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}]
    attachments = sorted(
        a["policy_arn"].rsplit("/", 1)[1]
        for a in example.resources("aws_iam_role_policy_attachment").values()
        if "/Karpenter/NodeRole/" in a["//"]["metadata"]["path"])
    assert attachments == ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy",
                           "AmazonSSMManagedInstanceCore"]


# --- interruption queue and rules --------------------------------------------------------------


def test_interruption_queue_is_encrypted_short_lived_and_tls_only(example):
    queue = example.by_path("aws_sqs_queue", "Karpenter/InterruptionQueue")
    assert queue["sqs_managed_sse_enabled"] is True
    assert queue["message_retention_seconds"] == 300
    statements = {s["sid"]: s for s in example.policy("Karpenter/InterruptionQueuePolicyDocument")}
    deny = statements["DenyInsecureTransport"]
    assert deny["effect"] == "Deny"
    assert conditions(deny) == {("Bool", "aws:SecureTransport"): ["false"]}


def test_only_the_four_rules_may_send_to_the_queue(example):
    statements = {s["sid"]: s for s in example.policy("Karpenter/InterruptionQueuePolicyDocument")}
    allow = statements["EventBridgeDelivers"]
    assert allow["actions"] == ["sqs:SendMessage"]
    assert allow["principals"] == [{"type": "Service", "identifiers": ["events.amazonaws.com"]}]
    rule_arns = sorted(example.ref("aws_cloudwatch_event_rule", f"Karpenter/{key}", "arn")
                       for key, *_ in INTERRUPTION_RULES)
    assert sorted(conditions(allow)[("ArnEquals", "aws:SourceArn")]) == rule_arns


def test_event_patterns_cover_the_four_interruption_kinds(example):
    patterns = {body["name"]: json.loads(body["event_pattern"])
                for body in example.resources("aws_cloudwatch_event_rule").values()}
    assert patterns == {
        "sdaas-karpenter-spot-interruption": {
            "source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "sdaas-karpenter-rebalance": {
            "source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        "sdaas-karpenter-scheduled-change": {
            "source": ["aws.health"], "detail-type": ["AWS Health Event"],
            "detail": {"eventTypeCategory": ["scheduledChange"], "service": ["EC2"]}},
        "sdaas-karpenter-instance-state-change": {
            "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {"state": ["stopping", "stopped", "shutting-down", "terminated"]}},
    }


def test_each_event_is_delivered_once(example):
    """No event matches two rules (the (source, detail-type) pairs are disjoint) and each rule
    has exactly one target: the interruption queue."""
    patterns = [json.loads(b["event_pattern"])
                for b in example.resources("aws_cloudwatch_event_rule").values()]
    for one, two in itertools.combinations(patterns, 2):
        pairs_one = set(itertools.product(one["source"], one["detail-type"]))
        pairs_two = set(itertools.product(two["source"], two["detail-type"]))
        assert not pairs_one & pairs_two, (one, two)
    targets = list(example.resources("aws_cloudwatch_event_target").values())
    rule_names = sorted(example.ref("aws_cloudwatch_event_rule", f"Karpenter/{key}", "name")
                        for key, *_ in INTERRUPTION_RULES)
    assert sorted(t["rule"] for t in targets) == rule_names
    queue = example.ref("aws_sqs_queue", "Karpenter/InterruptionQueue", "arn")
    assert {t["arn"] for t in targets} == {queue}


# --- Karpenter releases ----------------------------------------------------------------------


def test_karpenter_chart_is_pinned_and_crds_come_from_their_own_release(example):
    found = releases(example)
    karpenter, crd = found["karpenter"], found["karpenter-crd"]
    for release in (karpenter, crd):
        assert release["repository"] == "oci://public.ecr.aws/karpenter"
        assert release["version"] == DEFAULT_CHART_VERSION == "1.14.1"
    assert karpenter["chart"] == "karpenter" and crd["chart"] == "karpenter-crd"
    assert karpenter["skip_crds"] is True
    assert example.address_of("helm_release", "Karpenter/KarpenterCrd") in karpenter["depends_on"]


def test_karpenter_waits_for_nodes_addons_identity_and_queue_policy(example):
    depends = releases(example)["karpenter"]["depends_on"]
    for ready in example.cluster.ready:
        assert f"{ready.terraform_resource_type}.{ready.friendly_unique_id}" in depends
    assert example.address_of("aws_eks_pod_identity_association",
                              "Karpenter/ControllerPodIdentity") in depends
    assert example.address_of("aws_sqs_queue_policy", "Karpenter/InterruptionQueuePolicy") in (
        depends)


def test_karpenter_values_are_the_defaults_merged_with_the_cluster_settings(example):
    values = release_values(example, "karpenter")
    defaults = yaml.safe_load(Path("helm-values/karpenter.yaml").read_text())
    cluster = example.address_of("aws_eks_cluster", "Cluster/Cluster")
    queue = example.address_of("aws_sqs_queue", "Karpenter/InterruptionQueue")
    assert values["settings"] == {
        **defaults["settings"],
        "clusterName": "${" + cluster + ".name}",
        "clusterEndpoint": "${" + cluster + ".endpoint}",
        "interruptionQueue": "${" + queue + ".name}",
    }
    assert values["nodeSelector"] == {"kubernetes.io/os": "linux", "sd.node-role": "system"}
    assert values["controller"]["env"] == [
        {"name": "AWS_REGION", "value": example.data_ref("aws_region", "Cluster/Region", "id")}]
    # Everything else is the defaults file, untouched.
    for key in ("tolerations", "replicas", "serviceAccount", "logLevel"):
        assert values[key] == defaults[key], key
    assert values["controller"]["resources"] == defaults["controller"]["resources"]


def test_values_are_dumped_with_sorted_keys(example):
    """Each values document is exactly what dump_values writes: keys sorted at every level,
    references single-quoted (so a resolved value stays a YAML string)."""
    for release in releases(example).values():
        for text in release.get("values", []):
            assert dump_values(yaml.safe_load(text)) == text
            top = [line.split(":", 1)[0] for line in text.splitlines()
                   if line and not line.startswith((" ", "-"))]
            assert top == sorted(top)
            assert "'${" in text


# --- pools ---------------------------------------------------------------------------------


def test_one_pool_release_per_runtime_from_the_packaged_local_chart(example):
    pools = {name: r for name, r in releases(example).items() if name.startswith("gpu-")}
    assert sorted(pools) == ["gpu-comfyui", "gpu-sdruntime"]
    charts = {r["chart"] for r in pools.values()}
    assert len(charts) == 1
    (chart,) = charts
    assert re.fullmatch(r"assets/[A-Za-z0-9_]+/[0-9A-F]+", chart), chart  # relative, hashed
    packaged = example.stack_dir / chart
    for source in chart_dir("gpu-nodepool").rglob("*"):
        if source.is_file():
            copy = packaged / source.relative_to(chart_dir("gpu-nodepool"))
            assert copy.read_bytes() == source.read_bytes(), source.name
    for release in pools.values():
        assert example.address_of("helm_release", "Karpenter/Karpenter") in release["depends_on"]
        assert example.address_of("aws_eks_access_entry", "Karpenter/NodeAccessEntry") in (
            release["depends_on"])


def test_pool_values_carry_the_configured_pool(example):
    values = release_values(example, "gpu-comfyui")
    assert values["poolName"] == "comfyui" and values["runtime"] == "comfyui"
    assert values["clusterName"] == example.ref("aws_eks_cluster", "Cluster/Cluster", "name")
    assert values["nodeRole"] == example.ref("aws_iam_role", "Karpenter/NodeRole/Role", "name")
    assert values["amiAlias"] == "bottlerocket@v1.54.0"
    assert values["allowLatestAmi"] is False
    assert values["instanceFamilies"] == ["g6", "g6e", "g5"]
    assert values["spot"] == {"enabled": True, "weight": 100, "gpuLimit": 8}
    assert values["onDemand"] == {"enabled": True, "weight": 10, "gpuLimit": 4}
    assert values["disruption"] == {"consolidateAfter": "5m", "budgets": [{"nodes": "10%"}]}
    assert values["expireAfter"] == "720h"
    assert values["terminationGracePeriod"] == "15m"  # 600 s task + 300 s margin
    assert values["volumes"]["dataVolumeSize"] == "200Gi"
    assert values["tags"] == {"project": "sd-async-eks", "sd-async/stack": "sdaas"}


def test_pool_for_gives_selector_tolerations_cap_and_drain_bound(example):
    ref = example.pool.pool_for("sdruntime")
    assert ref.name == "sdruntime"
    assert ref.node_selector == {"sd.pool": "sdruntime"}
    assert ref.tolerations == (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "sd.runtime", "operator": "Equal", "value": "sdruntime",
         "effect": "NoSchedule"},
    )
    assert ref.gpu_limit == 8 + 4  # spot NodePool + on-demand NodePool limits
    assert ref.termination_grace_period_seconds == 900
    with pytest.raises(KeyError, match="no GPU pool for runtime 'nope'; configured: "
                                       "sdruntime, comfyui"):
        example.pool.pool_for("nope")


def test_gpu_cap_counts_only_enabled_node_pools(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=RUNTIMES, on_demand_fallback=False, spot_gpu_limit=6))
    assert synth.pool.pool_for("comfyui").gpu_limit == 6
    assert release_values(synth, "gpu-comfyui")["onDemand"]["enabled"] is False


def test_drain_bound_follows_each_runtimes_longest_task(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=(GpuPoolRuntime(name="fast", task_timeout_seconds=60),
                  GpuPoolRuntime(name="slow", task_timeout_seconds=3601))))
    assert synth.pool.pool_for("fast").termination_grace_period_seconds == 360
    assert synth.pool.pool_for("slow").termination_grace_period_seconds == 3960  # 66 min
    assert release_values(synth, "gpu-slow")["terminationGracePeriod"] == "1h6m"


def test_per_runtime_overrides_apply_to_that_pool_only(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=(GpuPoolRuntime(name="sdruntime", task_timeout_seconds=600,
                                 instance_families=("g6e",), spot_gpu_limit=2,
                                 image_cache_snapshot_id="snap-0123456789abcdef0",
                                 volume_initialization_rate_mibps=200),
                  GpuPoolRuntime(name="comfyui", task_timeout_seconds=600))))
    sd, comfy = release_values(synth, "gpu-sdruntime"), release_values(synth, "gpu-comfyui")
    assert sd["instanceFamilies"] == ["g6e"] and comfy["instanceFamilies"] == ["g6", "g6e", "g5"]
    assert sd["spot"]["gpuLimit"] == 2 and comfy["spot"]["gpuLimit"] == 8
    assert sd["imageCache"] == {"snapshotID": "snap-0123456789abcdef0",
                                "volumeInitializationRate": 200}
    assert comfy["imageCache"] == {"snapshotID": "", "volumeInitializationRate": None}


def test_shared_pool_serves_every_runtime(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=(GpuPoolRuntime(name="a", task_timeout_seconds=600),
                  GpuPoolRuntime(name="b", task_timeout_seconds=1200)),
        pool_model="shared"))
    assert sorted(n for n in releases(synth) if n.startswith("gpu-")) == ["gpu-shared"]
    values = release_values(synth, "gpu-shared")
    assert values["runtime"] == "" and values["terminationGracePeriod"] == "25m"
    for runtime in ("a", "b"):
        ref = synth.pool.pool_for(runtime)
        assert ref.node_selector == {"sd.pool": "shared"}
        assert ref.tolerations == ({"key": "nvidia.com/gpu", "operator": "Exists",
                                    "effect": "NoSchedule"},)
        assert ref.termination_grace_period_seconds == 1500


def test_instance_store_raid0_turns_on_soci_parallel_pull(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=RUNTIMES, instance_store_raid0=True))
    values = release_values(synth, "gpu-sdruntime")
    assert values["instanceStore"]["enabled"] is True
    assert values["instanceStore"]["soci"]["enabled"] is True
    assert values["imageCache"]["snapshotID"] == ""


def test_newer_driver_families_produce_a_synth_warning(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=RUNTIMES, instance_families=("g6", "g7e")))
    warnings = [entry.data for entry in synth.pool.node.metadata
                if entry.type == "@cdktf/warn"]
    assert len(warnings) == 1
    assert "g7e" in warnings[0] and "newer NVIDIA driver" in warnings[0]
    quiet = synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
        runtimes=RUNTIMES))
    assert not [e for e in quiet.pool.node.metadata if e.type == "@cdktf/warn"]


# --- compatibility gate ------------------------------------------------------------------------


@pytest.mark.parametrize(("kubernetes", "minimum"), [
    ("1.33", "1.5.0"), ("1.34", "1.6.0"), ("1.35", "1.9.0"), ("1.36", "1.13.0")])
def test_gate_accepts_the_minimum_and_refuses_the_release_before(kubernetes, minimum):
    assert KARPENTER_MINIMUM_FOR_KUBERNETES[kubernetes] == minimum
    check_karpenter_compatibility(minimum, kubernetes)
    check_karpenter_compatibility("1.14.1", kubernetes)
    major, minor, _ = (int(p) for p in minimum.split("."))
    older = f"{major}.{minor - 1}.9"
    with pytest.raises(ValueError, match=(
            rf"karpenter chart_version {re.escape(older)} does not support Kubernetes "
            rf"{re.escape(kubernetes)}: it needs {re.escape(minimum)} or later")):
        check_karpenter_compatibility(older, kubernetes)


def test_gate_refuses_unknown_kubernetes_and_pre_v1_charts():
    with pytest.raises(ValueError, match=r"Kubernetes 1\.40 is not in Karpenter's compatibility"):
        check_karpenter_compatibility("1.14.1", "1.40")
    with pytest.raises(ValueError, match=r"predates the karpenter\.sh/v1 API"):
        check_karpenter_compatibility("0.37.0", "1.30")
    with pytest.raises(ValueError, match="exact version"):
        check_karpenter_compatibility("1.14", "1.35")


def test_gate_runs_at_synth(synth_variant):
    with pytest.raises(ValueError, match=r"1\.8\.0 does not support Kubernetes 1\.35"):
        synth_variant(cluster_props=GpuEksClusterProps(), pool_props=KarpenterGpuPoolProps(
            runtimes=RUNTIMES, chart_version="1.8.0"))


# --- props validation --------------------------------------------------------------------------


def test_snapshot_and_raid0_are_never_combined():
    with pytest.raises(ValueError, match="image_cache_snapshot_id and instance_store_raid0 "
                                         "cannot be combined"):
        KarpenterGpuPoolProps(runtimes=RUNTIMES, instance_store_raid0=True,
                              image_cache_snapshot_id="snap-0123456789abcdef0")
    with pytest.raises(ValueError, match=r"runtimes\[comfyui\]\.image_cache_snapshot_id and "
                                         "instance_store_raid0 cannot be combined"):
        KarpenterGpuPoolProps(runtimes=(GpuPoolRuntime(
            name="comfyui", task_timeout_seconds=60,
            image_cache_snapshot_id="snap-0123456789abcdef0"),), instance_store_raid0=True)


def test_props_list_every_problem_in_the_users_words():
    with pytest.raises(ValueError) as info:
        KarpenterGpuPoolProps(
            runtimes=(GpuPoolRuntime(name="Bad_Name", task_timeout_seconds=0),),
            instance_families=("g6", "g6", "gpu"),
            spot=False, on_demand_fallback=False,
            bottlerocket_alias="bottlerocket@latest",
            volume_initialization_rate_mibps=50,
            consolidate_after="5 minutes",
            disruption_budgets=(DisruptionBudget(nodes="ten", schedule="@daily"),),
            tags=(("karpenter.sh/nodepool", "x"), ("eks:eks-cluster-name", "y")),
        )
    text = str(info.value)
    for expected in (
        "runtimes[Bad_Name]: the name must be a DNS label",
        "runtimes[Bad_Name].task_timeout_seconds must be >= 1 (got 0)",
        "instance_families lists a family twice",
        '"gpu" is not an EC2 instance family like g6 or g6e',
        "enable spot, on_demand_fallback or both",
        "bottlerocket_alias bottlerocket@latest replaces every GPU node",
        "volume_initialization_rate_mibps needs image_cache_snapshot_id",
        "volume_initialization_rate_mibps must be 100..300 (got 50)",
        'consolidate_after must be a duration like "5m"',
        'disruption_budgets[0].nodes must be a count or a percentage',
        "disruption_budgets[0]: schedule and duration go together",
        'tags: "karpenter.sh/nodepool" is set by Karpenter or the pool chart',
        'tags: "eks:eks-cluster-name" is set by Karpenter or the pool chart',
    ):
        assert expected in text, expected


def test_latest_alias_only_when_asked():
    props = KarpenterGpuPoolProps(runtimes=RUNTIMES, bottlerocket_alias="bottlerocket@latest",
                                  allow_latest_ami=True)
    assert props.bottlerocket_alias == "bottlerocket@latest"


def test_drain_bound_shorter_than_a_task_is_refused():
    with pytest.raises(ValueError) as info:
        KarpenterGpuPoolProps(runtimes=(GpuPoolRuntime(name="comfyui", task_timeout_seconds=900),),
                              termination_grace_period="10m")
    assert ("termination_grace_period 10m (600 s) is shorter than runtime comfyui's longest task "
            "(900 s) plus the shutdown margin (300 s)") in str(info.value)
    assert "use at least 20m" in str(info.value)
    ok = KarpenterGpuPoolProps(runtimes=(GpuPoolRuntime(name="comfyui", task_timeout_seconds=900),),
                               termination_grace_period="20m")
    assert ok.termination_grace_period == "20m"


def test_per_runtime_settings_need_dedicated_pools():
    with pytest.raises(ValueError, match='per-runtime pool settings need pool_model="dedicated"'):
        KarpenterGpuPoolProps(pool_model="shared", runtimes=(GpuPoolRuntime(
            name="a", task_timeout_seconds=60, spot_gpu_limit=2),))


@pytest.mark.parametrize(("text", "seconds"), [
    ("1m30s", 90), ("15m", 900), ("1h", 3600), ("1h1m30s", 3690), ("720h", 2_592_000)])
def test_durations_round_trip(text, seconds):
    assert duration_seconds(text) == seconds
    assert format_duration(seconds) == text


def test_durations_accept_karpenter_spellings_and_refuse_others():
    assert duration_seconds("90s") == 90
    assert duration_seconds("2h0m") == 7200
    for bad in ("", "5", "5 m", "1d", "-5m"):
        with pytest.raises(ValueError, match="is not a duration"):
            duration_seconds(bad)
    with pytest.raises(ValueError, match="must be positive"):
        format_duration(0)


def test_props_from_config_reads_pools_and_runtime_timeouts(example_config):
    data = yaml.safe_load(Path("config.example.yaml").read_text())
    data["runtimes"][1]["task_timeout_seconds"] = 1800
    data["karpenter"]["pools"] = {"comfyui": {"spot_gpu_limit": 2,
                                              "image_cache_snapshot_id": "snap-0123456789abcdef0"}}
    props = karpenter_props(parse_config(data))
    by_name = {r.name: r for r in props.runtimes}
    assert by_name["comfyui"].task_timeout_seconds == 1800
    assert by_name["comfyui"].spot_gpu_limit == 2
    assert by_name["comfyui"].image_cache_snapshot_id == "snap-0123456789abcdef0"
    assert by_name["sdruntime"].spot_gpu_limit is None
    assert props.chart_version == example_config.karpenter.chart_version == "1.14.1"
    data["karpenter"]["pools"] = {"nope": {"spot_gpu_limit": 1}}
    with pytest.raises(ValueError, match=r"karpenter\.pools\.nope: names no runtime"):
        parse_config(data)


def test_config_refuses_latest_alias_and_snapshot_with_raid0():
    data = yaml.safe_load(Path("config.example.yaml").read_text())
    data["karpenter"]["gpu"].update(bottlerocket_alias="bottlerocket@latest",
                                    instance_store_raid0=True)
    with pytest.raises(ValueError, match="bottlerocket@latest replaces every GPU node"):
        parse_config(data)
    data["karpenter"]["gpu"].update(bottlerocket_alias="bottlerocket@v1.54.0",
                                    image_cache_snapshot_id="snap-0123456789abcdef0")
    with pytest.raises(ValueError, match="cannot be combined"):
        parse_config(data)


def test_controller_replicas_need_as_many_system_nodes(synth_variant):
    with pytest.raises(ValueError, match="runs 2 Karpenter replicas, each on its own system "
                                         "node, but the system node group has 1"):
        synth_variant(cluster_props=GpuEksClusterProps(system_node_desired_size=1),
                      pool_props=KarpenterGpuPoolProps(runtimes=RUNTIMES))


def test_pool_release_timeout_covers_draining_the_pool(example):
    for name, release in releases(example).items():
        if name.startswith("gpu-"):
            ref = example.pool.pool_for(name[len("gpu-"):])
            assert release["timeout"] >= ref.termination_grace_period_seconds
