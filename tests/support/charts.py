"""Render the local Helm charts offline and validate what they produce.

- ``render_chart`` renders a chart with the Helm SDK bundled in ``helm-python-sdk`` (no
  ``helm`` binary, no cluster, no network) and returns the manifests as dictionaries.
- ``validate_strict`` checks every manifest: custom resources against the upstream CRD
  schemas in ``<shared>/crds`` (closed objects, as ``kubectl --validate=strict`` does),
  built-in kinds against the Kubernetes 1.35 schemas bundled with ``kubernetes-validate``
  (strict mode), and the CEL rules of the CRDs that JSON Schema cannot express
  (``check_cel_rules``).

The shared directory is ``$SD_SHARED_DIR`` when set, otherwise ``shared/`` beside the
repository clone. Nothing is skipped: a missing CRD directory, an unknown kind or an
unreadable schema is an error.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

from constructs_lib.helm_values import deep_merge  # noqa: F401 - re-exported for tests

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"
HELM_VALUES_DIR = REPO_ROOT / "helm-values"
KUBERNETES_VERSION = "1.35"

Manifest = dict[str, Any]


class ChartRenderError(Exception):
    """Helm refused to render: a values-schema violation, a ``fail``/``required`` in a
    template, or a template error. The message is Helm's own."""


class ManifestValidationError(AssertionError):
    """One or more rendered manifests are invalid; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid manifests:\n  - " + "\n  - ".join(problems))


# --------------------------------------------------------------------------------------
# Locating shared CRDs
# --------------------------------------------------------------------------------------


def shared_dir() -> Path:
    """The shared directory holding ``crds/``: ``$SD_SHARED_DIR`` or ``../shared``."""
    override = os.environ.get("SD_SHARED_DIR")
    return Path(override).resolve() if override else REPO_ROOT.parent / "shared"


def crds_dir() -> Path:
    """The CRD directory; raises with instructions when it is missing."""
    path = shared_dir() / "crds"
    if not path.is_dir() or not any(path.glob("*.yaml")):
        raise FileNotFoundError(
            f"upstream CRDs not found in {path}: copy the project's shared/ directory "
            "beside the repository clone, or set SD_SHARED_DIR to the directory that "
            "contains crds/ (KEDA and Karpenter CRDs are required to validate charts)"
        )
    return path


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> openAPIV3Schema`` for every served version of every CRD."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crds_dir().glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(f"{group}/{version['name']}", kind)] = schema
    if not schemas:
        raise FileNotFoundError(f"no CustomResourceDefinition found in {crds_dir()}")
    return schemas


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The raw openAPIV3Schema of a custom resource kind (KeyError when unknown)."""
    return _crd_schemas()[(api_version, kind)]


def close_schema(schema: Any) -> Any:
    """A copy of ``schema`` where every object schema that lists ``properties`` and lacks
    ``x-kubernetes-preserve-unknown-fields`` rejects unknown fields."""
    if isinstance(schema, list):
        return [close_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: close_schema(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in closed
    ):
        closed["additionalProperties"] = False
    return closed


@functools.cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = close_schema(crd_schema(api_version, kind))
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_cls.check_schema(schema)
    return validator_cls(schema)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render_chart(
    chart_dir: str | os.PathLike[str],
    values: Mapping[str, Any] | None,
    release_name: str,
    namespace: str,
) -> list[Manifest]:
    """Render a chart offline and return its manifests, in template-path order.

    Helm validates ``values`` against the chart's ``values.schema.json`` first. Any
    refusal (schema, ``fail``, ``required``, template error) raises ``ChartRenderError``
    with Helm's message.
    """
    try:
        with helm.Chart.load(os.fspath(chart_dir)) as chart:
            rendered = chart.render(
                dict(values or {}), name=release_name, namespace=namespace, is_install=True
            )
    except helm.HelmError as exc:
        raise ChartRenderError(str(exc)) from exc
    manifests: list[Manifest] = []
    for template in sorted(rendered):
        if not template.endswith((".yaml", ".yml")):
            continue  # NOTES.txt and other non-manifest output
        for doc in yaml.safe_load_all(rendered[template]):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ChartRenderError(f"{template}: rendered a non-mapping document: {doc!r}")
            manifests.append(doc)
    return manifests


def load_values_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML values file as a dict (empty file -> ``{}``)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return data or {}


def find(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Every manifest of ``kind`` (and ``metadata.name`` when given)."""
    return [
        m
        for m in manifests
        if m.get("kind") == kind and (name is None or m.get("metadata", {}).get("name") == name)
    ]


def find_one(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The single manifest of ``kind`` (and name); AssertionError when not exactly one."""
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _describe(manifest: Manifest) -> str:
    meta = manifest.get("metadata") or {}
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{manifest.get('kind')} {where}{meta.get('name')}"


def _path(error: jsonschema.ValidationError) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path)


def validate_strict(manifests: Iterable[Manifest], *, cel: bool = True) -> None:
    """Validate every manifest strictly; raise ``ManifestValidationError`` listing all
    problems found (not only the first).

    Custom resources: the CRD's openAPIV3Schema with unknown fields rejected. Built-in
    kinds: the Kubernetes 1.35 strict schemas. With ``cel`` (the default) also the CRD
    CEL rules (``check_cel_rules``).
    """
    problems: list[str] = []
    count = 0
    for manifest in manifests:
        count += 1
        name = _describe(manifest)
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if not api_version or not kind:
            problems.append(f"{name}: apiVersion and kind are required")
            continue
        if not (manifest.get("metadata") or {}).get("name"):
            problems.append(f"{name}: metadata.name is required")
        if (api_version, kind) in _crd_schemas():
            validator = _crd_validator(api_version, kind)
            for error in sorted(validator.iter_errors(manifest), key=lambda e: e.json_path):
                problems.append(f"{name}: {_path(error)}: {error.message}")
        else:
            try:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(
                    f"{name}: no schema for {api_version} {kind}: neither a Kubernetes "
                    f"{KUBERNETES_VERSION} built-in kind nor a CRD in {crds_dir()}"
                )
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name}: {_path(error)}: {error.message}")
        if cel:
            problems.extend(f"{name}: {p}" for p in check_cel_rules(manifest))
    if count == 0:
        problems.append("no manifests to validate")
    if problems:
        raise ManifestValidationError(problems)


# --------------------------------------------------------------------------------------
# CEL rules (x-kubernetes-validations) that JSON Schema cannot express
# --------------------------------------------------------------------------------------

_AMI_ALIAS_FAMILIES = {
    "al2": "AL2",
    "al2023": "AL2023",
    "bottlerocket": "Bottlerocket",
    "windows2019": "Windows2019",
    "windows2022": "Windows2022",
    "windows2025": "Windows2025",
}
_RESTRICTED_TAG_KEYS = (
    "eks:eks-cluster-name",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
)
_KARPENTER_SH_ALLOWED = ("karpenter.sh/capacity-type", "karpenter.sh/nodepool")


@functools.cache
def _karpenter_aws_allowed_labels() -> frozenset[str]:
    """The well-known ``karpenter.k8s.aws/*`` label keys a NodePool may use, read from the
    NodePool CRD's own CEL rule so the list follows the pinned CRD."""
    schema = crd_schema("karpenter.sh/v1", "NodePool")
    rules = schema["properties"]["spec"]["properties"]["template"]["properties"]["metadata"][
        "properties"
    ]["labels"]["x-kubernetes-validations"]
    for rule in rules:
        if 'endsWith("karpenter.k8s.aws")' in rule["rule"]:
            listed = re.search(r"\[(.*?)\]", rule["rule"])
            if listed:
                return frozenset(re.findall(r'"([^"]+)"', listed.group(1)))
    raise ValueError("NodePool CRD: the karpenter.k8s.aws label rule was not found")


def _label_domain(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _label_key_problems(key: str, where: str) -> list[str]:
    problems = []
    domain = _label_domain(key)
    if domain.endswith("karpenter.sh") and key not in _KARPENTER_SH_ALLOWED:
        problems.append(f'{where}: label domain "karpenter.sh" is restricted ({key})')
    if key == "karpenter.sh/nodepool":
        problems.append(f'{where}: label "karpenter.sh/nodepool" is restricted')
    if key == "kubernetes.io/hostname":
        problems.append(f'{where}: label "kubernetes.io/hostname" is restricted')
    if domain.endswith("karpenter.k8s.aws") and key not in _karpenter_aws_allowed_labels():
        problems.append(f'{where}: label domain "karpenter.k8s.aws" is restricted ({key})')
    return problems


def _tag_problems(tags: Mapping[str, Any], where: str, *, allow_empty_values: bool) -> list[str]:
    problems = []
    for key, value in tags.items():
        if key == "":
            problems.append(f"{where}: empty tag keys aren't supported")
        if not allow_empty_values and value == "":
            problems.append(f"{where}: empty tag values aren't supported ({key})")
    return problems


def _ec2nodeclass_problems(spec: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    has_role, has_profile = "role" in spec, "instanceProfile" in spec
    if has_role == has_profile:
        problems.append("spec: must specify exactly one of ['role', 'instanceProfile']")
    if has_role and spec["role"] == "":
        problems.append("spec.role: role cannot be empty")
    if has_profile and spec["instanceProfile"] == "":
        problems.append("spec.instanceProfile: instanceProfile cannot be empty")

    terms = spec.get("amiSelectorTerms") or []
    aliases = [t["alias"] for t in terms if "alias" in t]
    for i, term in enumerate(terms):
        where = f"spec.amiSelectorTerms[{i}]"
        if not any(k in term for k in ("tags", "id", "name", "alias", "ssmParameter")):
            problems.append(
                f"{where}: expected at least one of ['tags', 'id', 'name', 'alias', 'ssmParameter']"
            )
        if "id" in term and any(k in term for k in ("alias", "tags", "name", "owner")):
            problems.append(f"{where}: 'id' is mutually exclusive with other fields")
        if "alias" in term and any(k in term for k in ("id", "tags", "name", "owner")):
            problems.append(f"{where}: 'alias' is mutually exclusive with other fields")
        problems.extend(
            _tag_problems(term.get("tags") or {}, f"{where}.tags", allow_empty_values=False)
        )
    if aliases and len(terms) != 1:
        problems.append(
            "spec.amiSelectorTerms: 'alias' is mutually exclusive, cannot be set with a "
            "combination of other amiSelectorTerms"
        )
    for alias in aliases:
        if not re.fullmatch(r"[a-zA-Z0-9]+@.+", alias):
            problems.append(
                f"spec.amiSelectorTerms.alias: {alias!r} must match the format 'family@version'"
            )
            continue
        family, version = alias.split("@", 1)
        if family not in _AMI_ALIAS_FAMILIES:
            problems.append(f"spec.amiSelectorTerms.alias: family {family!r} is not supported")
        elif family.startswith("windows") and version != "latest":
            problems.append("spec.amiSelectorTerms.alias: windows families may only use 'latest'")
        elif "amiFamily" in spec and spec["amiFamily"] not in (
            "Custom",
            _AMI_ALIAS_FAMILIES[family],
        ):
            problems.append(
                f"spec.amiFamily: must be '{_AMI_ALIAS_FAMILIES[family]}' or 'Custom' when "
                f"using a {family} alias"
            )
    if not aliases and "amiFamily" not in spec:
        problems.append(
            "spec: must specify amiFamily if amiSelectorTerms does not contain an alias"
        )

    subnets = spec.get("subnetSelectorTerms")
    if not subnets:
        problems.append("spec.subnetSelectorTerms: subnetSelectorTerms cannot be empty")
    for i, term in enumerate(subnets or []):
        where = f"spec.subnetSelectorTerms[{i}]"
        if not ("tags" in term or "id" in term):
            problems.append(f"{where}: expected at least one of ['tags', 'id']")
        if "id" in term and "tags" in term:
            problems.append(f"{where}: 'id' is mutually exclusive with 'tags'")
        problems.extend(
            _tag_problems(term.get("tags") or {}, f"{where}.tags", allow_empty_values=False)
        )

    groups = spec.get("securityGroupSelectorTerms")
    if not groups:
        problems.append(
            "spec.securityGroupSelectorTerms: securityGroupSelectorTerms cannot be empty"
        )
    for i, term in enumerate(groups or []):
        where = f"spec.securityGroupSelectorTerms[{i}]"
        if not any(k in term for k in ("tags", "id", "name")):
            problems.append(f"{where}: expected at least one of ['tags', 'id', 'name']")
        if "id" in term and ("tags" in term or "name" in term):
            problems.append(f"{where}: 'id' is mutually exclusive with other fields")
        if "name" in term and ("tags" in term or "id" in term):
            problems.append(f"{where}: 'name' is mutually exclusive with other fields")
        problems.extend(
            _tag_problems(term.get("tags") or {}, f"{where}.tags", allow_empty_values=False)
        )

    mappings = spec.get("blockDeviceMappings") or []
    if sum(1 for m in mappings if m.get("rootVolume")) > 1:
        problems.append(
            "spec.blockDeviceMappings: must have only one blockDeviceMappings with rootVolume"
        )
    for i, mapping in enumerate(mappings):
        ebs = mapping.get("ebs")
        if ebs is None:
            continue
        where = f"spec.blockDeviceMappings[{i}].ebs"
        if "snapshotID" not in ebs and "volumeSize" not in ebs:
            problems.append(f"{where}: snapshotID or volumeSize must be defined")
        if "volumeInitializationRate" in ebs and not ebs.get("snapshotID"):
            problems.append(f"{where}: snapshotID must be set when volumeInitializationRate is set")

    tags = spec.get("tags") or {}
    problems.extend(_tag_problems(tags, "spec.tags", allow_empty_values=True))
    for key in tags:
        if key in _RESTRICTED_TAG_KEYS or key.startswith("kubernetes.io/cluster"):
            problems.append(f"spec.tags: tag contains a restricted tag matching {key}")
    return problems


def _nodepool_problems(spec: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if "replicas" in spec:
        limits = spec.get("limits") or {}
        if limits and set(limits) != {"nodes"}:
            problems.append("spec: only 'limits.nodes' is supported on static NodePools")
        if "weight" in spec:
            problems.append("spec: 'weight' is not supported on static NodePools")
    for i, budget in enumerate((spec.get("disruption") or {}).get("budgets") or []):
        if ("schedule" in budget) != ("duration" in budget):
            problems.append(f"spec.disruption.budgets[{i}]: 'schedule' must be set with 'duration'")

    template = spec.get("template") or {}
    for key in (template.get("metadata") or {}).get("labels") or {}:
        problems.extend(_label_key_problems(key, "spec.template.metadata.labels"))
    tspec = template.get("spec") or {}
    ref = tspec.get("nodeClassRef") or {}
    for field in ("group", "kind", "name"):
        if ref.get(field) == "":
            problems.append(f"spec.template.spec.nodeClassRef.{field}: {field} may not be empty")
    for i, req in enumerate(tspec.get("requirements") or []):
        where = f"spec.template.spec.requirements[{i}]"
        operator, values = req.get("operator"), req.get("values") or []
        if operator == "In" and not values:
            problems.append(f"{where}: requirements with operator 'In' must have a value defined")
        if operator in ("Gt", "Lt", "Gte", "Lte") and not (
            len(values) == 1 and re.fullmatch(r"\d+", str(values[0]))
        ):
            problems.append(
                f"{where}: operator {operator!r} must have a single positive integer value"
            )
        if operator == "In" and "minValues" in req and len(values) < req["minValues"]:
            problems.append(f"{where}: 'minValues' exceeds the number of values")
        problems.extend(_label_key_problems(req.get("key", ""), f"{where}.key"))
    return problems


def _scaledobject_problems(spec: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    minimum = spec.get("minReplicaCount")
    maximum = spec.get("maxReplicaCount", 100)
    if minimum is not None and minimum > maximum:
        problems.append("spec: minReplicaCount must be less than or equal to maxReplicaCount")
    # Not a CRD rule but KEDA's admission webhook: fallback needs AverageValue metrics.
    if "fallback" in spec:
        for i, trigger in enumerate(spec.get("triggers") or []):
            if trigger.get("metricType", "AverageValue") != "AverageValue":
                problems.append(
                    f"spec.triggers[{i}]: fallback is only supported with metricType AverageValue"
                )
    return problems


def _triggerauthentication_problems(spec: Mapping[str, Any]) -> list[str]:
    identity = spec.get("podIdentity") or {}
    if "roleArn" in identity and "identityOwner" in identity:
        return ["spec.podIdentity: roleArn and identityOwner are mutually exclusive"]
    return []


def check_cel_rules(manifest: Mapping[str, Any]) -> list[str]:
    """Problems a Kubernetes API server would report from the CRDs' CEL rules (and, for
    ScaledObject/TriggerAuthentication, KEDA's admission checks), for the rules that
    matter to these charts. Returns ``[]`` for a valid manifest or another kind.

    Rules covered: EC2NodeClass role/instanceProfile exclusivity, amiSelectorTerms alias
    rules, amiFamily consistency, subnet/security-group selector terms, block device
    mappings, restricted tags; NodePool requirement rules, restricted labels, budgets,
    nodeClassRef, static-pool rules; ScaledObject min <= max and fallback metric type;
    TriggerAuthentication roleArn/identityOwner exclusivity.
    """
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    spec = manifest.get("spec") or {}
    if (api_version, kind) == ("karpenter.k8s.aws/v1", "EC2NodeClass"):
        return _ec2nodeclass_problems(spec)
    if (api_version, kind) == ("karpenter.sh/v1", "NodePool"):
        return _nodepool_problems(spec)
    if (api_version, kind) == ("keda.sh/v1alpha1", "ScaledObject"):
        return _scaledobject_problems(spec)
    if (api_version, kind) == ("keda.sh/v1alpha1", "TriggerAuthentication"):
        return _triggerauthentication_problems(spec)
    return []
