"""The real upstream charts (Karpenter, KEDA), rendered with the values the plan passes.

For each configuration of ``tests/charts/conftest.py`` (the example; a shared GPU pool in
an existing VPC), every ``helm_release`` of an upstream chart in the synthesized plan is
rendered from the archive of exactly the pinned chart version (``SD_CHART_MIRROR`` or the
registries, see tests/support/upstream_charts.py) with its ``values`` documents, for the
plan's Kubernetes version. Terraform references in the values stay as the plan writes them
(``${aws_eks_cluster.<id>.name}``), so the checks see which resource each setting names.

CEL rules of the pinned CRDs that are not evaluated, and why: see
tests/charts/test_validation_tooling.py (``NOT_EVALUATED_RULES``): only transition rules,
which the API server evaluates on update alone.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from constructs_lib.helm_values import deep_merge
from tests.charts.conftest import PLAN_NAMES
from tests.runtime.placeholders import resolve_all
from tests.support.charts import Manifest, find, render_chart, validate_strict
from tests.support.upstream import (
    RenderedRelease,
    crds_of,
    inherited_resources,
    kube_version_allowed,
    render_release,
    unknown_value_keys,
    values_without_effect,
)
from tests.support.upstream_charts import upstream_releases

if TYPE_CHECKING:  # the application (and its provider bindings) loads in the plans fixture
    from tests.support.plans import Plan

UPSTREAM = ("karpenter-crd", "karpenter", "keda")
CONTROLLERS = ("karpenter", "keda")
# Values that differ from the chart default and change nothing in the rendered output,
# kept on purpose; each with its reason (anything else that changes nothing fails).
KEPT_WITHOUT_EFFECT = {
    ("karpenter", "serviceAccount.name"):
        "the EKS Pod Identity association names this account: pinned so that the name "
        "never depends on the chart's naming of its release",
}
GPU_TAINT_KEYS = ("nvidia.com/gpu", "sd.runtime")


@pytest.fixture(scope="module", params=PLAN_NAMES)
def plan(request, plans) -> Plan:
    return plans[request.param]


@pytest.fixture(scope="module")
def releases(plan) -> dict[str, RenderedRelease]:
    """``{release name: rendered}`` for every upstream release of the plan."""
    return {name: render_release(release, plan.kubernetes_version)
            for name, release in upstream_releases(plan.doc).items()}


@pytest.fixture(scope="module")
def crds(releases):
    return crds_of(releases.values())


def local_release_manifests(plan: Plan, *, namespace: str | None = None,
                            chart_prefix: str = "") -> dict[str, list[Manifest]]:
    """``{release name: manifests}`` of the plan's releases of the project's own charts
    (packaged assets), values resolved to realistic stand-ins for Terraform references."""
    out = {}
    for body in plan.resources("helm_release").values():
        if body.get("repository") or not body["chart"].startswith(chart_prefix):
            continue
        if namespace is not None and body["namespace"] != namespace:
            continue
        values: dict[str, Any] = {}
        for text in body.get("values") or []:
            values = deep_merge(values, resolve_all(plan.doc, yaml.safe_load(text)))
        out[body["name"]] = render_chart(plan.stack_dir / body["chart"], values, body["name"],
                                         body["namespace"])
    return out


def deployments(rendered: RenderedRelease) -> list[Manifest]:
    return find(rendered.manifests, "Deployment")


def pod_spec(deployment: Manifest) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


# --- rendering and schemas ------------------------------------------------------------------


def test_the_plan_pins_every_upstream_chart(plan, releases):
    assert sorted(releases) == sorted(UPSTREAM)
    assert releases["karpenter"].release.pin.version == \
        releases["karpenter-crd"].release.pin.version
    for rendered in releases.values():
        assert rendered.metadata["name"] == rendered.release.pin.name
        assert rendered.metadata["version"] == rendered.release.pin.version


def test_every_release_renders_for_the_configured_kubernetes_version(plan, releases, crds):
    version = releases["keda"].kube_version
    assert version == f"v{plan.kubernetes_version}.0"
    for name, rendered in releases.items():
        constraint = rendered.metadata.get("kubeVersion")
        if constraint:
            assert kube_version_allowed(constraint, version), (name, constraint, version)
        notes = rendered.templates.get(f"{rendered.release.pin.name}/templates/NOTES.txt", "")
        assert "WARNING" not in notes, notes  # KEDA warns of versions and deprecated values
        manifests = rendered.manifests
        assert manifests, name
        validate_strict(manifests, crds=crds, kubernetes_version=plan.kubernetes_version)


def test_the_crds_come_from_the_pinned_charts(releases, crds):
    assert ("karpenter.sh/v1", "NodePool") in crds
    assert ("karpenter.k8s.aws/v1", "EC2NodeClass") in crds
    assert ("keda.sh/v1alpha1", "ScaledObject") in crds
    assert ("keda.sh/v1alpha1", "TriggerAuthentication") in crds
    # the karpenter release leaves its CRDs to the karpenter-crd release
    assert releases["karpenter"].release.skip_crds
    assert not find(releases["karpenter"].manifests, "CustomResourceDefinition")
    assert len(find(releases["karpenter-crd"].manifests, "CustomResourceDefinition")) >= 2


# --- the values the stack sets ----------------------------------------------------------------


def test_every_value_key_exists_in_the_charts_values(releases):
    for name, rendered in releases.items():
        assert unknown_value_keys(rendered.values, rendered.defaults) == [], name


def test_a_misspelt_or_misplaced_key_is_caught(releases):
    keda = copy.deepcopy(releases["keda"].values)
    keda["resources"]["operater"] = keda["resources"].pop("operator")
    keda["nodeSelectr"] = keda.pop("nodeSelector")
    keda["operator"]["resources"] = {"limits": {"memory": "1Gi"}}  # belongs under resources
    assert sorted(unknown_value_keys(keda, releases["keda"].defaults)) == [
        "nodeSelectr", "operator.resources", "resources.operater"]
    karpenter = copy.deepcopy(releases["karpenter"].values)
    karpenter["settings"]["interuptionQueue"] = karpenter["settings"].pop("interruptionQueue")
    assert unknown_value_keys(karpenter, releases["karpenter"].defaults) == [
        "settings.interuptionQueue"]


def test_every_value_that_differs_from_the_default_changes_the_output(releases):
    idle = {(name, path) for name in CONTROLLERS
            for path in values_without_effect(releases[name])}
    assert idle == set(KEPT_WITHOUT_EFFECT)


def test_a_value_without_effect_is_caught(plan, releases):
    rendered = releases["karpenter"]
    planted = copy.deepcopy(rendered.values)
    # exists in values.yaml, but only a ServiceMonitor (disabled) would read it
    planted["serviceMonitor"] = {"additionalLabels": {"team": "ml"}}
    again = render_release(rendered.release, plan.kubernetes_version, planted)
    assert "serviceMonitor.additionalLabels.team" in values_without_effect(again)


def test_no_resource_requirement_is_inherited_unchosen(releases):
    for name in CONTROLLERS:
        rendered = releases[name]
        assert inherited_resources(rendered.values, rendered.defaults) == [], name
        for deployment in deployments(rendered):
            for container in pod_spec(deployment)["containers"]:
                resources = container["resources"]
                assert set(resources["requests"]) == {"cpu", "memory"}, container["name"]
                # CPU is compressible: no limit (see helm-values/*.yaml); memory is capped.
                assert set(resources["limits"]) == {"memory"}, container["name"]


def test_an_inherited_resource_requirement_is_caught(releases):
    keda = copy.deepcopy(releases["keda"].values)
    del keda["resources"]["operator"]["limits"]["cpu"]
    del keda["resources"]["webhooks"]["requests"]
    assert sorted(inherited_resources(keda, releases["keda"].defaults)) == [
        "resources.operator.limits.cpu", "resources.webhooks.requests.cpu",
        "resources.webhooks.requests.memory"]


# --- identities, settings, placement ---------------------------------------------------------


def test_pod_identity_associations_name_the_accounts_the_charts_render(plan, releases):
    associations = list(plan.resources("aws_eks_pod_identity_association").values())
    runtimes = local_release_manifests(plan, chart_prefix="assets/Chart-SdRuntime")
    assert len(associations) == 2 + len(runtimes)  # Karpenter, KEDA, one per runtime
    for association in associations:
        namespace, account = association["namespace"], association["service_account"]
        manifests = [m for r in releases.values() if r.release.namespace == namespace
                     for m in r.manifests]
        manifests += [m for ms in local_release_manifests(plan, namespace=namespace).values()
                      for m in ms]
        accounts = [m for m in find(manifests, "ServiceAccount")
                    if m["metadata"]["name"] == account]
        assert len(accounts) == 1, (namespace, account)
        assert accounts[0]["metadata"].get("namespace", namespace) == namespace
        users = [d for d in find(manifests, "Deployment")
                 if pod_spec(d).get("serviceAccountName") == account]
        assert users, f"no Deployment in {namespace} runs as {account}"
        for deployment in users:
            assert deployment["metadata"].get("namespace", namespace) == namespace


def test_keda_operator_is_the_identity_that_reads_the_queues(plan, releases):
    (operator,) = [d for d in deployments(releases["keda"])
                   if d["metadata"]["name"] == "keda-operator"]
    assert pod_spec(operator)["serviceAccountName"] == "keda-operator"
    # TriggerAuthentication podIdentity.provider=aws uses the operator's own credentials
    env = {e["name"]: e.get("value") for e in pod_spec(operator)["containers"][0]["env"]}
    assert "AWS_ROLE_ARN" not in env  # IRSA stays off: credentials come from Pod Identity


def test_karpenter_settings_name_the_plans_resources(plan, releases):
    (deployment,) = deployments(releases["karpenter"])
    (container,) = pod_spec(deployment)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    cluster = plan.address_of("aws_eks_cluster", "Cluster/Cluster")
    queue = plan.address_of("aws_sqs_queue", "Karpenter/InterruptionQueue")
    assert env["CLUSTER_NAME"] == "${" + cluster + ".name}"
    assert env["CLUSTER_ENDPOINT"] == "${" + cluster + ".endpoint}"
    assert env["INTERRUPTION_QUEUE"] == "${" + queue + ".name}"
    # the cluster's region data source, which takes the provider's (configured) region
    regions = {rid: body for rid, body in plan.doc["data"]["aws_region"].items()
               if body["//"]["metadata"]["path"].endswith("/Cluster/Region")}
    (region,) = regions
    # ``id`` is the region's name in provider 5.x and 6.x (``name`` is deprecated in 6.x)
    assert env["AWS_REGION"] == "${data.aws_region." + region + ".id}"
    assert set(regions[region]) == {"//"}  # no region argument of its own
    assert plan.doc["provider"]["aws"][0]["region"] == "us-west-2"


def test_controllers_run_only_on_the_system_node_group(plan, releases):
    (node_group,) = plan.resources("aws_eks_node_group").values()
    system_labels = node_group["labels"]
    pools = [m for ms in local_release_manifests(plan, chart_prefix="assets/Karpenter_").values()
             for m in find(ms, "NodePool")]
    assert pools
    checked = 0
    for name in CONTROLLERS:
        for deployment in deployments(releases[name]):
            spec = pod_spec(deployment)
            selector = spec.get("nodeSelector") or {}
            assert selector and selector.items() <= {**system_labels,
                                                     "kubernetes.io/os": "linux"}.items()
            assert any(key in system_labels for key in selector), deployment["metadata"]
            for pool in pools:  # no GPU node carries the system label
                labels = pool["spec"]["template"]["metadata"]["labels"]
                assert not selector.items() <= labels.items()
            for toleration in spec.get("tolerations") or []:
                assert toleration.get("key") not in (None, *GPU_TAINT_KEYS), toleration
            checked += 1
    assert checked == 1 + 3  # Karpenter; KEDA operator, metrics server, webhooks


# --- the project's own custom resources against the pinned CRDs ------------------------------


def test_the_projects_custom_resources_pass_the_pinned_crds(plan, crds):
    manifests = [m for ms in local_release_manifests(plan).values() for m in ms]
    kinds = sorted({m["kind"] for m in manifests if (m["apiVersion"], m["kind"]) in crds})
    assert kinds == ["EC2NodeClass", "NodePool", "ScaledObject", "TriggerAuthentication"]
    validate_strict(manifests, crds=crds, kubernetes_version=plan.kubernetes_version)
