"""The upstream releases of a synthesized plan, rendered from the pinned chart archives.

:func:`render_release` renders a ``helm_release`` of an upstream chart with the values the
plan passes (or others) for the plan's Kubernetes version; :func:`plan_crds` collects the
CustomResourceDefinitions those releases install, the schemas every custom resource of
the project is validated against.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm

from tests.support.charts import Manifest, manifests_of, render_templates
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
