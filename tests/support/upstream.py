"""The upstream releases of a synthesized plan, rendered from the pinned chart archives.

:func:`render_release` renders a ``helm_release`` of an upstream chart with the values the
plan passes (or others) for the plan's Kubernetes version; :func:`plan_crds` collects the
CustomResourceDefinitions those releases install, the schemas every custom resource of
the project is validated against.
"""

from __future__ import annotations

import copy
import functools
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm

from tests.support.charts import ChartRenderError, Manifest, manifests_of, render_templates
from tests.support.crds import CrdSet
from tests.support.upstream_charts import UpstreamRelease, require_chart, upstream_releases


def kube_version_tag(kubernetes_version: str) -> str:
    """``"1.35"`` -> ``"v1.35.0"``: the version a cluster of that minor reports."""
    parts = kubernetes_version.lstrip("v").split(".")
    return "v" + ".".join([*parts, "0", "0"][:3])


@functools.cache
def _semver_chart() -> str:
    """A one-template chart evaluating Helm's own ``semverCompare`` (the Masterminds
    constraints ``kubeVersion`` in Chart.yaml uses)."""
    root = Path(tempfile.mkdtemp(prefix="semver-chart-")) / "semver"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: semver\nversion: 0.1.0\n")
    (root / "templates" / "check.txt").write_text(
        "{{ semverCompare .Values.constraint .Values.version }}")
    return os.fspath(root)


def kube_version_allowed(constraint: str, kube_version: str) -> bool:
    """Whether ``kube_version`` satisfies a chart's ``kubeVersion`` constraint, decided by
    the Helm library itself."""
    rendered = render_templates(_semver_chart(), {"constraint": constraint,
                                                  "version": kube_version}, "semver", "default")
    return rendered["semver/templates/check.txt"].strip() == "true"


@dataclass(frozen=True, kw_only=True)
class RenderedRelease:
    """One upstream release rendered from its pinned archive."""

    release: UpstreamRelease
    archive: Path
    kube_version: str
    values: dict[str, Any]  # what was passed to Helm
    defaults: dict[str, Any]  # the chart's own values.yaml
    metadata: dict[str, Any]  # the chart's Chart.yaml
    templates: dict[str, str]  # template path -> rendered text (NOTES.txt included)

    @property
    def manifests(self) -> list[Manifest]:
        objects = manifests_of(self.templates)
        if not self.release.skip_crds:
            objects.extend(self.chart_crds)
        return objects

    @property
    def chart_crds(self) -> list[Manifest]:
        """The CRDs in the chart's ``crds/`` directory (Helm installs them first unless the
        release skips them)."""
        with helm.Chart.load(os.fspath(self.archive)) as chart:
            texts = {crd["filename"]: crd["data"] for crd in chart.crds}
        return manifests_of(texts)


def render_release(release: UpstreamRelease, kubernetes_version: str,
                   values: Mapping[str, Any] | None = None) -> RenderedRelease:
    """Render ``release`` with ``values`` (default: the values the plan passes) for
    ``kubernetes_version``; a chart that cannot be had skips (or, in CI, fails) the test."""
    archive = require_chart(release.pin)
    chosen = dict(release.values if values is None else values)
    with helm.Chart.load(os.fspath(archive)) as chart:
        defaults, metadata = chart.values, chart.metadata
    tag = kube_version_tag(kubernetes_version)
    templates = render_templates(archive, chosen, release.release_name, release.namespace,
                                 kube_version=tag)
    return RenderedRelease(release=release, archive=archive, kube_version=tag, values=chosen,
                           defaults=defaults, metadata=metadata, templates=templates)


def crds_of(releases: Iterable[RenderedRelease]) -> CrdSet:
    return CrdSet.from_manifests(m for r in releases for m in r.manifests)


def plan_crds(doc: Mapping[str, Any], kubernetes_version: str) -> CrdSet:
    """The CRDs the plan's upstream releases install, rendered from the pinned charts."""
    return crds_of(render_release(release, kubernetes_version)
                   for release in upstream_releases(doc).values())


# --- the values a release passes, against the chart's own values.yaml ---------------------

Path_ = tuple[str, ...]


def dotted(path: Path_) -> str:
    return ".".join(path)


def unknown_value_keys(values: Mapping[str, Any], defaults: Any,
                       prefix: Path_ = ()) -> list[str]:
    """Keys of ``values`` the chart's ``values.yaml`` does not have, as dotted paths.

    Helm silently ignores a key no template reads, so a misspelt or misplaced key is a
    setting that never happens. Any key is allowed below a free-form map: a key whose
    default is an empty mapping or null (``podAnnotations: {}``), or a Kubernetes string
    map by name (``nodeSelector``, ``*labels``, ``*annotations``).
    """
    problems: list[str] = []
    if not isinstance(defaults, Mapping) or not defaults or _string_map(prefix):
        return problems
    for key, value in values.items():
        path = (*prefix, key)
        if key not in defaults:
            problems.append(dotted(path))
        elif isinstance(value, Mapping) and isinstance(defaults[key], Mapping):
            problems.extend(unknown_value_keys(value, defaults[key], path))
    return problems


def _string_map(path: Path_) -> bool:
    name = path[-1].lower() if path else ""
    return name == "nodeselector" or name.endswith(("labels", "annotations"))


_MISSING = object()


def leaf_paths(values: Mapping[str, Any], prefix: Path_ = ()) -> list[tuple[Path_, Any]]:
    """``(path, value)`` of every leaf: a scalar, a list, null or an empty mapping."""
    out: list[tuple[Path_, Any]] = []
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            out.extend(leaf_paths(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out


def value_at(tree: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return _MISSING
        tree = tree[key]
    return tree


def without(values: Mapping[str, Any], path: Path_) -> dict[str, Any]:
    """A deep copy of ``values`` without the key at ``path``."""
    out = copy.deepcopy(dict(values))
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def values_without_effect(rendered: RenderedRelease) -> list[str]:
    """Leaves of the release's values that differ from the chart default yet, removed,
    leave the rendered output unchanged: settings that do nothing."""
    idle: list[str] = []
    for path, value in leaf_paths(rendered.values):
        if value_at(rendered.defaults, path) == value:
            continue  # the chart's own default: removing it changes nothing by design
        try:
            again = render_release(rendered.release, rendered.kube_version,
                                   without(rendered.values, path))
        except ChartRenderError:
            continue  # the chart refuses to render without it: it has an effect
        if again.templates == rendered.templates:
            idle.append(dotted(path))
    return idle


def inherited_resources(values: Mapping[str, Any], defaults: Any,
                        prefix: Path_ = ()) -> list[str]:
    """Resource requirements (every leaf under a ``resources`` mapping of the chart's
    values.yaml) the release does not set itself: what it would inherit unchosen.
    A value set to null counts as chosen (it removes the default)."""
    out: list[str] = []
    if not isinstance(defaults, Mapping):
        return out
    for key, default in defaults.items():
        path = (*prefix, key)
        if key == "resources" and isinstance(default, Mapping):
            out.extend(dotted(p) for p, _ in leaf_paths(default, path)
                       if value_at(values, p[len(prefix):]) is _MISSING)
        else:
            out.extend(inherited_resources(
                value_at(values, (key,)) if isinstance(values, Mapping) else {},
                default, path))
    return out
