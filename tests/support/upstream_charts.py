"""The upstream Helm charts the stack pins, obtained the way ``helm pull`` would.

The synthesized plan is the only source of truth for which charts: every ``helm_release``
with a ``repository`` names a chart by repository, name and version
(:func:`upstream_releases`), so a changed pin in the configuration is followed with no
change here.

Where an archive ``<name>-<version>.tgz`` comes from (:func:`chart_archive`):

1. ``$SD_CHART_MIRROR`` when set: a directory of archives for machines that cannot reach
   the registries (like ``TF_PLUGIN_DIR`` for Terraform providers). Only the mirror is
   used then; a pinned chart it lacks is an error naming the variable and the file.
2. Otherwise the cache outside the work tree (``$XDG_CACHE_HOME/sd-async-eks/charts`` or
   ``~/.cache/sd-async-eks/charts``), keyed by repository, name and version, filled by
   ``helm pull`` (helm-python-sdk: OCI references and HTTP chart repositories alike).

A chart that cannot be had is :class:`ChartUnavailable`; :func:`require_chart` turns it
into a skip with the reason outside CI and a failure in CI (``CI=true``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from constructs_lib.helm_values import deep_merge

MIRROR_VARIABLE = "SD_CHART_MIRROR"
PULL_TIMEOUT_SECONDS = 120.0


class ChartUnavailable(Exception):
    """A pinned chart is neither in the mirror, nor in the cache, nor pullable."""


@dataclass(frozen=True, kw_only=True)
class ChartPin:
    """One upstream chart at one exact version, as a ``helm_release`` names it."""

    repository: str
    name: str
    version: str

    @property
    def archive_name(self) -> str:
        """``<name>-<version>.tgz``: what ``helm pull`` writes and a mirror holds."""
        return f"{self.name}-{self.version}.tgz"

    @property
    def is_oci(self) -> bool:
        return self.repository.startswith("oci://")

    def __str__(self) -> str:
        return f"{self.repository} {self.name} {self.version}"


@dataclass(frozen=True, kw_only=True)
class UpstreamRelease:
    """A ``helm_release`` of an upstream chart in a synthesized plan."""

    address: str  # helm_release.<logical id>
    release_name: str
    namespace: str
    pin: ChartPin
    values: dict[str, Any]  # the release's values documents, merged in order
    skip_crds: bool


def upstream_releases(doc: Mapping[str, Any]) -> dict[str, UpstreamRelease]:
    """``{release name: release}`` for every ``helm_release`` of ``doc`` (a synthesized
    ``cdk.tf.json``) that installs a chart from a repository. Local charts (no
    ``repository``) are not upstream charts and are left out."""
    out: dict[str, UpstreamRelease] = {}
    for logical_id, body in (doc.get("resource", {}).get("helm_release") or {}).items():
        repository = body.get("repository")
        if not repository:
            continue
        values: dict[str, Any] = {}
        for text in body.get("values") or []:  # later documents win, as with helm -f a -f b
            values = deep_merge(values, yaml.safe_load(text) or {})
        out[body["name"]] = UpstreamRelease(
            address=f"helm_release.{logical_id}",
            release_name=body["name"],
            namespace=body.get("namespace", "default"),
            pin=ChartPin(repository=repository, name=body["chart"], version=body["version"]),
            values=values,
            skip_crds=bool(body.get("skip_crds", False)),
        )
    return out


# --- where archives live ------------------------------------------------------------------


def cache_root() -> Path:
    """The chart cache: ``$XDG_CACHE_HOME/sd-async-eks/charts`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sd-async-eks" / "charts"


def cache_path(pin: ChartPin, root: Path) -> Path:
    """Where ``pin`` is cached under ``root``: one directory per repository (readable
    slug plus a digest of the exact URL, so two repositories never share a directory),
    then ``<name>-<version>.tgz``."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", pin.repository).strip("_")[:80]
    digest = hashlib.sha256(pin.repository.encode()).hexdigest()[:12]
    return root / f"{slug}-{digest}" / pin.archive_name


def mirror_dir() -> Path | None:
    value = os.environ.get(MIRROR_VARIABLE)
    return Path(value) if value else None


def pull(pin: ChartPin, destination: Path, *,
         timeout_seconds: float = PULL_TIMEOUT_SECONDS) -> Path:
    """``helm pull`` of ``pin`` into ``destination`` (created); returns the archive path.

    The native pull has no timeout of its own: it runs in a daemon thread and is abandoned
    after ``timeout_seconds`` with :class:`ChartUnavailable`.
    """
    destination.mkdir(parents=True, exist_ok=True)
    if pin.is_oci:
        args: tuple[str, dict[str, Any]] = (f"{pin.repository.rstrip('/')}/{pin.name}", {})
    else:
        args = (pin.name, {"repo_url": pin.repository})
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            helm.pull(args[0], version=pin.version, destination=destination, **args[1])
        except helm.HelmError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"helm-pull-{pin.name}", daemon=True)
    worker.start()
    worker.join(timeout_seconds)
    if worker.is_alive():
        raise ChartUnavailable(f"helm pull {pin} did not finish in {timeout_seconds:.0f} s")
    if "error" in outcome:
        raise ChartUnavailable(f"helm pull {pin} failed: {outcome['error']}")
    archive = destination / pin.archive_name
    if not archive.is_file():
        raise ChartUnavailable(f"helm pull {pin} wrote no {pin.archive_name} in {destination}")
    return archive


def check_archive(pin: ChartPin, archive: Path) -> None:
    """The archive is the pinned chart (name and version in its Chart.yaml)."""
    try:
        with helm.Chart.load(os.fspath(archive)) as chart:
            name, version = chart.name, chart.version
    except helm.HelmError as exc:
        raise ChartUnavailable(f"{archive} is not a chart archive: {exc}") from exc
    if (name, version) != (pin.name, pin.version):
        raise ChartUnavailable(
            f"{archive} holds chart {name} {version}, not {pin.name} {pin.version}")


def chart_archive(pin: ChartPin, *, mirror: Path | None = None,
                  cache: Path | None = None) -> Path:
    """The archive of ``pin``: from ``mirror`` when given (and only from there), else from
    the cache, pulling it into the cache first when it is not there yet."""
    if mirror is not None:
        archive = mirror / pin.archive_name
        if not archive.is_file():
            raise ChartUnavailable(
                f"{MIRROR_VARIABLE}={mirror} has no {pin.archive_name} ({pin}): add the "
                "archive `helm pull` downloads for that chart and version")
        check_archive(pin, archive)
        return archive
    cached = cache_path(pin, cache or cache_root())
    if cached.is_file():
        check_archive(pin, cached)
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Pull beside the cache entry, then move it in: a failed or partial pull leaves no file
    # under the cache key.
    with tempfile.TemporaryDirectory(dir=cached.parent, prefix=".pull-") as tmp:
        try:
            archive = pull(pin, Path(tmp))
        except ChartUnavailable as exc:
            raise ChartUnavailable(
                f"{exc}; without network access set {MIRROR_VARIABLE} to a directory "
                f"holding {pin.archive_name}") from exc
        check_archive(pin, archive)
        os.replace(archive, cached)
    return cached


def require_chart(pin: ChartPin) -> Path:
    """:func:`chart_archive` for a test: a chart that cannot be had skips the test with
    the reason outside CI and fails it in CI (``CI=true``)."""
    try:
        return chart_archive(pin, mirror=mirror_dir())
    except ChartUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI must render every upstream chart)", pytrace=False)
        pytest.skip(str(exc))
