"""The chart validation tooling (tests/support/charts.py, crds.py, upstream.py) catches
what it claims to.

Each CEL rule of the pinned CRDs that our objects could break is shown rejecting a bad
manifest derived from a good rendered one, evaluated by a CEL library after schema
defaults; the strict schema validation is shown rejecting unknown fields, unknown kinds and
bad types. Rules not evaluated, and why, are listed in ``NOT_EVALUATED_RULES``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.charts import (
    ManifestValidationError,
    find_one,
    render_templates,
    validate_strict,
)
from tests.support.crds import NOT_EVALUATED, CrdSet, cel_rules, close_schema, evaluate
from tests.support.upstream import kube_version_allowed, kube_version_tag

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


def test_rendered_custom_resources_pass_every_cel_rule(
    upstream_crds, pool_manifests, scaler_manifests
):
    checked = 0
    for manifests in [*pool_manifests.values(), *scaler_manifests.values()]:
        for manifest in manifests:
            assert (manifest["apiVersion"], manifest["kind"]) in upstream_crds
            assert upstream_crds.problems(manifest) == [], manifest["metadata"]["name"]
            checked += 1
    assert checked == 2 * (3 + 2)  # per runtime: EC2NodeClass + 2 NodePools, 2 KEDA objects


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
        "may only specify version 'latest'",
    ),
    "amiFamily disagrees with alias": (_set("amiFamily", "AL2023"), "'Bottlerocket' or 'Custom'"),
    "no alias and no amiFamily": (
        _set("amiSelectorTerms", [{"name": "my-ami"}]),
        "must specify amiFamily",
    ),
    "empty ami term": (_set("amiSelectorTerms", [{}]), "expected at least one, got none"),
    "no subnet terms": (_set("subnetSelectorTerms", []), "subnetSelectorTerms cannot be empty"),
    "subnet id with tags": (
        _set("subnetSelectorTerms.0.id", "subnet-0abc"),
        "'id' is mutually exclusive",
    ),
    "empty subnet tag value": (
        _set("subnetSelectorTerms.0.tags", {"karpenter.sh/discovery": ""}),
        "empty tag keys or values",
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
def test_ec2nodeclass_cel_rules_catch(upstream_crds, node_class, case):
    mutation, message = EC2NODECLASS_CASES[case]
    problems = upstream_crds.problems(mutated(node_class, mutation))
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
def test_nodepool_cel_rules_catch(upstream_crds, node_pool, case):
    mutation, message = NODEPOOL_CASES[case]
    problems = upstream_crds.problems(mutated(node_pool, mutation))
    assert any(message in p for p in problems), problems


def test_nodepool_allows_well_known_karpenter_aws_labels(upstream_crds, node_pool):
    ok = mutated(
        node_pool,
        _append(
            "template.spec.requirements",
            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]},
        ),
    )
    assert upstream_crds.problems(ok) == []


def test_scaledobject_rule_catches_min_above_max(upstream_crds, scaled_object):
    problems = upstream_crds.problems(mutated(scaled_object, _set("minReplicaCount", 9)))
    assert problems == [".spec: minReplicaCount must be less than or equal to maxReplicaCount"]


def test_scaledobject_rule_sees_the_default_max_of_100(upstream_crds, scaled_object):
    within = mutated(scaled_object, _all(_set("minReplicaCount", 50),
                                         lambda spec: spec.pop("maxReplicaCount")))
    assert upstream_crds.problems(within) == []
    above = mutated(within, _set("minReplicaCount", 101))
    assert any("minReplicaCount must be less" in p for p in upstream_crds.problems(above))


# --------------------------------------------------------------------------------------
# CEL evaluation: defaults first, every rule evaluable, the ones that are not listed
# --------------------------------------------------------------------------------------

# Every CEL rule of the pinned CRDs of the kinds the project renders that is NOT evaluated,
# with its reason (tests/support/crds.py NOT_EVALUATED). A new chart version that brings
# another such rule fails test_every_cel_rule_is_evaluated_or_listed until it is listed.
NOT_EVALUATED_RULES = {
    ("NodePool", ".spec", "has(self.replicas) == has(oldSelf.replicas)"): "transition rule",
    ("NodePool", ".spec.template.spec.nodeClassRef", "self.group == oldSelf.group"):
        "transition rule",
    ("NodePool", ".spec.template.spec.nodeClassRef", "self.kind == oldSelf.kind"):
        "transition rule",
}
PROJECT_KINDS = ("NodePool", "EC2NodeClass", "ScaledObject", "TriggerAuthentication")


def _kind_schemas(crds: CrdSet) -> dict[str, Any]:
    return {kind: schema for (_, kind), schema in crds.schemas.items() if kind in PROJECT_KINDS}


def test_every_cel_rule_is_evaluated_or_listed(upstream_crds):
    schemas = _kind_schemas(upstream_crds)
    assert sorted(schemas) == sorted(PROJECT_KINDS)
    skipped, evaluated = {}, 0
    for kind, schema in schemas.items():
        for rule in cel_rules(schema):
            if rule.is_transition_rule:
                skipped[(kind, rule.path, rule.rule)] = "transition rule"
                continue
            # Compiles with the functions provided; evaluating on an empty value of the
            # wrong shape gives a CEL error or a boolean, never an unknown function.
            outcome = evaluate(rule.rule, {})
            assert "undeclared reference" not in str(outcome), (kind, rule.rule, outcome)
            evaluated += 1
    assert skipped == NOT_EVALUATED_RULES
    assert set(NOT_EVALUATED_RULES.values()) <= set(NOT_EVALUATED)
    assert evaluated >= 70  # 17 NodePool + 54 EC2NodeClass + 1 ScaledObject today


def test_a_rule_that_does_not_hold_or_errors_is_a_problem_never_a_pass():
    assert evaluate("self.a > 1", {"a": 2}) is True
    assert evaluate("self.a > 1", {"a": 0}) == "false"
    assert str(evaluate("self.missing > 1", {"a": 0})).startswith("CEL error")
    assert str(evaluate("self.a.noSuchFunction()", {"a": "x"})).startswith("CEL error")
    assert str(evaluate("self.a >", {"a": 0})).startswith("CEL error")  # does not parse


def test_kubernetes_string_functions_behave_as_documented():
    assert evaluate("self.split('@') == ['bottlerocket', 'v1.54.0']",
                    "bottlerocket@v1.54.0") is True
    assert evaluate("self.find('^([^/]+)') == 'karpenter.sh'", "karpenter.sh/x") is True
    assert evaluate("self.find('[0-9]+') == ''", "abc") is True


TOY_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "toys.example.com"},
    "spec": {"group": "example.com", "names": {"kind": "Toy", "plural": "toys"},
             "scope": "Namespaced", "versions": [{
                 "name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                     "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                     "metadata": {"type": "object"},
                     "spec": {
                         "type": "object",
                         "properties": {
                             "limit": {"type": "integer", "default": 5},
                             "used": {"type": "integer"},
                             "budget": {"type": "object", "default": {},
                                        "properties": {"nodes": {"type": "string",
                                                                 "default": "10%"}}},
                         },
                         "x-kubernetes-validations": [
                             {"rule": "self.used <= self.limit", "message": "over the limit"},
                             {"rule": "self.budget.nodes == '10%'", "message": "nested default"},
                         ],
                     }}}}}]}}


def test_schema_defaults_are_applied_before_the_rules():
    crds = CrdSet.from_manifests([TOY_CRD])
    toy = {"apiVersion": "example.com/v1", "kind": "Toy", "metadata": {"name": "t"}}
    assert crds.problems({**toy, "spec": {"used": 3}}) == []  # limit defaults to 5
    assert crds.problems({**toy, "spec": {"used": 7}}) == [".spec: over the limit"]
    assert crds.problems({**toy, "spec": {"used": 1, "budget": {"nodes": "1"}}}) == [
        ".spec: nested default"]
    assert crds.problems({**toy, "spec": {"used": 1, "extra": True}}) == [
        "/spec: Additional properties are not allowed ('extra' was unexpected)"]


# --------------------------------------------------------------------------------------
# Strict schema validation
# --------------------------------------------------------------------------------------


def test_closed_schema_rejects_a_misplaced_scale_on_in_flight(upstream_crds, scaled_object):
    bad = copy.deepcopy(scaled_object)
    bad["spec"]["triggers"][0]["scaleOnInFlight"] = "true"
    with pytest.raises(ManifestValidationError, match="scaleOnInFlight"):
        validate_strict([bad], crds=upstream_crds)


def test_validate_strict_reports_every_problem(upstream_crds, scaled_object, node_class):
    bad_scaled = mutated(scaled_object, _set("minReplicaCount", 9))
    bad_scaled["spec"]["pollingInterval"] = "15"
    bad_class = mutated(node_class, _set("metadataOptions.httpPutResponseHopLimit", 0))
    with pytest.raises(ManifestValidationError) as info:
        validate_strict([bad_scaled, bad_class], crds=upstream_crds)
    problems = info.value.problems
    assert any("pollingInterval" in p for p in problems)
    assert any("minReplicaCount must be less" in p for p in problems)
    assert any("httpPutResponseHopLimit" in p for p in problems)


def test_built_in_kinds_are_validated_strictly(runtime_manifests):
    deployment = copy.deepcopy(find_one(runtime_manifests["comfyui"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
    with pytest.raises(ManifestValidationError, match="startupProbes"):
        validate_strict([deployment])


def test_unknown_kinds_are_errors_not_skipped(upstream_crds):
    manifest = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ManifestValidationError, match=r"no schema for example\.com/v1 Widget"):
        validate_strict([manifest], crds=upstream_crds)


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


def test_custom_resources_need_crds(scaled_object):
    with pytest.raises(ManifestValidationError, match="no CRDs were given"):
        validate_strict([scaled_object])


# --------------------------------------------------------------------------------------
# Rendering for a Kubernetes version
# --------------------------------------------------------------------------------------

VERSION_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    "templates/version.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n"
        "  version: {{ .Capabilities.KubeVersion.Version | quote }}\n"),
}


def test_the_kubernetes_version_reaches_the_templates(tmp_path):
    for name, text in VERSION_CHART.items():
        (tmp_path / "probe" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "probe" / name).write_text(text)
    for version in ("v1.33.0", "v1.35.0"):
        rendered = render_templates(tmp_path / "probe", {}, "p", "default", kube_version=version)
        assert f'version: "{version}"' in rendered["probe/templates/version.yaml"]


def test_kube_version_constraints_are_decided_by_helm():
    assert kube_version_tag("1.35") == "v1.35.0"
    assert kube_version_allowed(">=v1.23.0-0", "v1.35.0")
    assert not kube_version_allowed(">=v1.23.0-0", "v1.22.0")
    assert not kube_version_allowed(">=1.29.0-0 <1.34.0-0", "v1.35.0")
