"""Render Helm charts offline and validate what they produce.

- ``render_chart`` renders a chart (a directory or a ``.tgz``) with the Helm SDK bundled in
  ``helm-python-sdk`` (no ``helm`` binary, no cluster, no network) for a given Kubernetes
  version, and returns the manifests as dictionaries.
- ``validate_strict`` checks every manifest: built-in kinds against the Kubernetes schemas
  bundled with ``kubernetes-validate`` (strict mode), custom resources against the CRDs of
  the pinned upstream charts (``tests/support/crds.py``: closed objects, schema defaults,
  CEL rules).

Nothing is skipped: an unknown kind, or a custom resource validated without CRDs, is an
error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from helm_python import _native

from constructs_lib.helm_values import deep_merge  # noqa: F401 - re-exported for tests
from tests.support.crds import CrdSet

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
# Rendering
# --------------------------------------------------------------------------------------


def render_templates(
    chart_path: str | os.PathLike[str],
    values: Mapping[str, Any] | None,
    release_name: str,
    namespace: str,
    *,
    kube_version: str | None = None,
) -> dict[str, str]:
    """Render a chart offline: ``{template path: text}``, NOTES.txt included.

    ``kube_version`` (``"v1.35.0"``) is what templates see as
    ``.Capabilities.KubeVersion``; without it, Helm's default. Any refusal (values schema,
    ``fail``, ``required``, template error) raises ``ChartRenderError`` with Helm's message.
    """
    options: dict[str, Any] = {"name": release_name, "namespace": namespace,
                               "is_install": True}
    try:
        with helm.Chart.load(os.fspath(chart_path)) as chart:
            if kube_version is None:
                return chart.render(dict(values or {}), **options)
            # helm-python-sdk 0.2.2's Chart.render does not pass kube_version on, although
            # the libhelm_c render entry point it calls accepts it: make the same call with
            # the option added (tests/charts/test_validation_tooling.py proves it arrives).
            options["kube_version"] = kube_version
            rendered: dict[str, str] = json.loads(_native.call_string(
                "helm_render", chart._raw(), json.dumps(dict(values or {})),
                json.dumps(options)))
            return rendered
    except helm.HelmError as exc:
        raise ChartRenderError(str(exc)) from exc


def manifests_of(rendered: Mapping[str, str]) -> list[Manifest]:
    """The manifests of rendered templates, in template-path order (NOTES.txt and other
    non-YAML output left out)."""
    manifests: list[Manifest] = []
    for template in sorted(rendered):
        if not template.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(rendered[template]):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ChartRenderError(f"{template}: rendered a non-mapping document: {doc!r}")
            manifests.append(doc)
    return manifests


def render_chart(
    chart_path: str | os.PathLike[str],
    values: Mapping[str, Any] | None,
    release_name: str,
    namespace: str,
    *,
    kube_version: str | None = None,
) -> list[Manifest]:
    """Render a chart offline and return its manifests, in template-path order.

    Helm validates ``values`` against the chart's ``values.schema.json`` first; see
    :func:`render_templates`.
    """
    return manifests_of(render_templates(chart_path, values, release_name, namespace,
                                         kube_version=kube_version))


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


def validate_strict(manifests: Iterable[Manifest], *, crds: CrdSet | None = None,
                    kubernetes_version: str = KUBERNETES_VERSION, cel: bool = True) -> None:
    """Validate every manifest strictly; raise ``ManifestValidationError`` listing all
    problems found (not only the first).

    Built-in kinds: the strict schemas of ``kubernetes_version``. Custom resources: the
    schema of their CRD in ``crds`` as the API server applies it (defaults, closed objects,
    and with ``cel`` the CEL rules); a custom resource without ``crds`` is a problem.
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
        if crds is not None and (api_version, kind) in crds:
            problems.extend(f"{name}: {p}" for p in crds.problems(manifest, cel=cel))
            continue
        try:
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            where = "the CRDs given" if crds is not None else "no CRDs were given"
            problems.append(
                f"{name}: no schema for {api_version} {kind}: neither a Kubernetes "
                f"{kubernetes_version} built-in kind nor a custom resource ({where})")
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{name}: {_path(error)}: {error.message}")
    if count == 0:
        problems.append("no manifests to validate")
    if problems:
        raise ManifestValidationError(problems)
