"""The chart validation tooling in tests/support/charts.py catches what it claims to.

Each CEL check is shown rejecting a bad manifest derived from a good rendered one; the
strict schema validation is shown rejecting unknown fields, unknown kinds and bad types.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import charts
from tests.support.charts import (
    ManifestValidationError,
    check_cel_rules,
    close_schema,
    find_one,
    validate_strict,
)

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def node_class(pool_manifests) -> dict[str, Any]:
    return find_one(pool_manifests["sdruntime"], "EC2NodeClass")


@pytest.fixture(scope="module")
def node_pool(pool_manifests) -> dict[str, Any]:
    return find_one(pool_manifests["sdruntime"], "NodePool", "sdruntime-spot")


@pytest.fixture(scope="module")
def scaled_object(scaler_manifests) -> dict[str, Any]:
    return find_one(scaler_manifests["sdruntime"], "ScaledObject")


@pytest.fixture(scope="module")
def trigger_auth(scaler_manifests) -> dict[str, Any]:
    return find_one(scaler_manifests["sdruntime"], "TriggerAuthentication")


def mutated(manifest: dict[str, Any], mutation: Mutation) -> dict[str, Any]:
    bad = copy.deepcopy(manifest)
    mutation(bad["spec"])
    return bad


def test_rendered_manifests_pass_every_cel_check(
    pool_manifests, runtime_manifests, scaler_manifests
):
    for manifests in [
        *pool_manifests.values(),
        *runtime_manifests.values(),
        *scaler_manifests.values(),
    ]:
        for manifest in manifests:
            assert check_cel_rules(manifest) == [], manifest["metadata"]["name"]


def _set(path: str, value: Any) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(key: str) -> Mutation:
    return lambda spec: spec.pop(key)


def _append(path: str, value: Any) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        node = spec
        for key in path.split("."):
            node = node[int(key)] if key.isdigit() else node[key]
        node.append(value)

    return apply


def _all(*mutations: Mutation) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(spec)

    return apply


EC2NODECLASS_CASES = {
    "role and instanceProfile together": (
        _set("instanceProfile", "node-profile"),
        "exactly one of",
    ),
    "neither role nor instanceProfile": (_delete("role"), "exactly one of"),
    "empty role": (_set("role", ""), "role cannot be empty"),
    "alias beside another term": (
        _append("amiSelectorTerms", {"id": "ami-0123456789"}),
        "alias' is mutually exclusive",
    ),
    "alias with tags in one term": (
        _set("amiSelectorTerms.0.tags", {"a": "b"}),
        "alias' is mutually exclusive",
    ),
    "alias without version": (_set("amiSelectorTerms.0.alias", "bottlerocket"), "family@version"),
    "unsupported alias family": (_set("amiSelectorTerms.0.alias", "ubuntu@v1"), "not supported"),
    "windows alias pinned": (
        _set("amiSelectorTerms.0.alias", "windows2022@v1"),
        "only use 'latest'",
    ),
    "amiFamily disagrees with alias": (_set("amiFamily", "AL2023"), "'Bottlerocket' or 'Custom'"),
    "no alias and no amiFamily": (
        _set("amiSelectorTerms", [{"name": "my-ami"}]),
        "must specify amiFamily",
    ),
    "empty ami term": (_set("amiSelectorTerms", [{}]), "expected at least one of"),
    "no subnet terms": (_set("subnetSelectorTerms", []), "subnetSelectorTerms cannot be empty"),
    "subnet id with tags": (
        _set("subnetSelectorTerms.0.id", "subnet-0abc"),
        "'id' is mutually exclusive",
    ),
    "empty subnet tag value": (
        _set("subnetSelectorTerms.0.tags", {"karpenter.sh/discovery": ""}),
        "empty tag values",
    ),
    "no security group terms": (_set("securityGroupSelectorTerms", []), "cannot be empty"),
    "security group name with tags": (
        _set("securityGroupSelectorTerms.0.name", "sg"),
        "'name' is mutually exclusive",
    ),
    "two root volumes": (
        _set("blockDeviceMappings.1.rootVolume", True),
        "only one blockDeviceMappings with rootVolume",
    ),
    "ebs without size or snapshot": (
        lambda spec: spec["blockDeviceMappings"][1]["ebs"].pop("volumeSize"),
        "snapshotID or volumeSize",
    ),
    "initialization rate without snapshot": (
        _set("blockDeviceMappings.1.ebs.volumeInitializationRate", 200),
        "snapshotID must be set when volumeInitializationRate",
    ),
    "restricted tag": (_set("tags", {"karpenter.sh/nodeclaim": "x"}), "restricted tag"),
    "cluster ownership tag": (
        _set("tags", {"kubernetes.io/cluster/sd-async": "owned"}),
        "restricted tag",
    ),
}


@pytest.mark.parametrize("case", sorted(EC2NODECLASS_CASES))
def test_ec2nodeclass_cel_checks_catch(node_class, case):
    mutation, message = EC2NODECLASS_CASES[case]
    problems = check_cel_rules(mutated(node_class, mutation))
    assert any(message in p for p in problems), problems


NODEPOOL_CASES = {
    "In without values": (
        _set("template.spec.requirements.1.values", []),
        "must have a value defined",
    ),
    "Gt with a non-integer": (
        _append(
            "template.spec.requirements",
            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["one"]},
        ),
        "single positive integer",
    ),
    "Gt with two values": (
        _append(
            "template.spec.requirements",
            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["1", "2"]},
        ),
        "single positive integer",
    ),
    "minValues above the values": (_set("template.spec.requirements.1.minValues", 5), "minValues"),
    "restricted karpenter.sh requirement": (
        _append("template.spec.requirements", {"key": "karpenter.sh/foo", "operator": "Exists"}),
        'label domain "karpenter.sh" is restricted',
    ),
    "nodepool requirement": (
        _append(
            "template.spec.requirements", {"key": "karpenter.sh/nodepool", "operator": "Exists"}
        ),
        '"karpenter.sh/nodepool" is restricted',
    ),
    "hostname requirement": (
        _append(
            "template.spec.requirements", {"key": "kubernetes.io/hostname", "operator": "Exists"}
        ),
        '"kubernetes.io/hostname" is restricted',
    ),
    "unknown karpenter.k8s.aws label": (
        _set("template.metadata.labels", {"karpenter.k8s.aws/made-up": "x"}),
        'label domain "karpenter.k8s.aws" is restricted',
    ),
    "schedule without duration": (
        _set("disruption.budgets", [{"nodes": "0", "schedule": "@daily"}]),
        "'schedule' must be set with 'duration'",
    ),
    "empty nodeClassRef name": (
        _set("template.spec.nodeClassRef.name", ""),
        "name may not be empty",
    ),
    "weight on a static pool": (
        _set("replicas", 2),
        "'weight' is not supported on static NodePools",
    ),
    "gpu limit on a static pool": (
        _all(_set("replicas", 2), lambda spec: spec.pop("weight")),
        "only 'limits.nodes'",
    ),
}


@pytest.mark.parametrize("case", sorted(NODEPOOL_CASES))
def test_nodepool_cel_checks_catch(node_pool, case):
    mutation, message = NODEPOOL_CASES[case]
    problems = check_cel_rules(mutated(node_pool, mutation))
    assert any(message in p for p in problems), problems


def test_nodepool_allows_well_known_karpenter_aws_labels(node_pool):
    ok = mutated(
        node_pool,
        _append(
            "template.spec.requirements",
            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]},
        ),
    )
    assert check_cel_rules(ok) == []


def test_scaledobject_checks_catch_min_above_max_and_fallback_without_average_value(scaled_object):
    problems = check_cel_rules(mutated(scaled_object, _set("minReplicaCount", 9)))
    assert any(
        "minReplicaCount must be less than or equal to maxReplicaCount" in p for p in problems
    )
    problems = check_cel_rules(mutated(scaled_object, _set("triggers.0.metricType", "Value")))
    assert any("fallback is only supported with metricType AverageValue" in p for p in problems)


def test_triggerauthentication_check_catches_role_arn_with_identity_owner(trigger_auth):
    bad = mutated(trigger_auth, _set("podIdentity.roleArn", "arn:aws:iam::123456789012:role/r"))
    assert check_cel_rules(bad) == [
        "spec.podIdentity: roleArn and identityOwner are mutually exclusive"
    ]


# --------------------------------------------------------------------------------------
# Strict schema validation
# --------------------------------------------------------------------------------------


def test_closed_schema_rejects_a_misplaced_scale_on_in_flight(scaled_object):
    bad = copy.deepcopy(scaled_object)
    bad["spec"]["triggers"][0]["scaleOnInFlight"] = "true"
    with pytest.raises(ManifestValidationError, match="scaleOnInFlight"):
        validate_strict([bad])


def test_validate_strict_reports_every_problem(scaled_object, node_class):
    bad_scaled = mutated(scaled_object, _set("minReplicaCount", 9))
    bad_scaled["spec"]["pollingInterval"] = "15"
    bad_class = mutated(node_class, _set("metadataOptions.httpPutResponseHopLimit", 0))
    with pytest.raises(ManifestValidationError) as info:
        validate_strict([bad_scaled, bad_class])
    problems = info.value.problems
    assert any("pollingInterval" in p for p in problems)
    assert any("minReplicaCount must be less" in p for p in problems)
    assert any("httpPutResponseHopLimit" in p for p in problems)


def test_built_in_kinds_are_validated_strictly(runtime_manifests):
    deployment = copy.deepcopy(find_one(runtime_manifests["comfyui"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
    with pytest.raises(ManifestValidationError, match="startupProbes"):
        validate_strict([deployment])


def test_unknown_kinds_are_errors_not_skipped():
    manifest = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ManifestValidationError, match=r"no schema for example\.com/v1 Widget"):
        validate_strict([manifest])


def test_nothing_to_validate_is_an_error():
    with pytest.raises(ManifestValidationError, match="no manifests"):
        validate_strict([])


def test_close_schema_keeps_preserve_unknown_fields_open():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "open": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"c": {}},
            },
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    closed = close_schema(schema)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["open"]
    assert closed["properties"]["map"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in schema  # the input is not modified


def test_missing_crds_fail_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("SD_SHARED_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="SD_SHARED_DIR"):
        charts.crds_dir()


def test_shared_dir_override(monkeypatch, tmp_path):
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "x.yaml").write_text("kind: Nothing\n")
    monkeypatch.setenv("SD_SHARED_DIR", str(tmp_path))
    assert charts.crds_dir() == tmp_path / "crds"


def test_default_shared_dir_is_beside_the_repository(monkeypatch):
    monkeypatch.delenv("SD_SHARED_DIR", raising=False)
    assert charts.shared_dir() == charts.REPO_ROOT.parent / "shared"
