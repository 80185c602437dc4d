"""Where the library's assets are: the one resolver every construct asks (STYLE 14).

The assets are package data, so an installed wheel synthesizes what a clone does:

* ``charts/<chart>``: the local Helm charts (repository folder ``charts/``);
* ``helm-values/<release>.yaml``: the default values of every Helm release (repository
  folder ``helm-values/``);
* ``teardown/scripts/<script>``: the destroy-time scripts;
* the Python packages bundled into the Lambda zip (``lambda_src`` and ``task_contract``,
  top-level packages of the same distribution).

``charts/`` and ``helm-values/`` stay top-level folders of the repository; the package
reaches them through ``constructs_lib/_assets/`` (symbolic links in a clone, which an
editable install follows, and real copies in a built wheel, which setuptools makes by
following the links). Nothing here depends on the working directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "_assets"
CHARTS_DIR = ASSETS_DIR / "charts"
HELM_VALUES_DIR = ASSETS_DIR / "helm-values"
TEARDOWN_SCRIPTS_DIR = PACKAGE_DIR / "teardown" / "scripts"
# The packages of the Lambda zip: the handlers and the task rules they share with the agent.
LAMBDA_PACKAGES = ("lambda_src", "task_contract")


class AssetNotFoundError(FileNotFoundError):
    """An asset the library needs is missing from this installation."""


def _plain_name(kind: str, name: str, example: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{kind} must be a plain file stem like {example!r} (got {name!r})")
    return name


def chart_dir(chart: str) -> Path:
    """The directory of the local chart ``chart`` (it holds a ``Chart.yaml``)."""
    directory = CHARTS_DIR / _plain_name("chart", chart, "sd-runtime")
    if not (directory / "Chart.yaml").is_file():
        known = sorted(p.name for p in CHARTS_DIR.iterdir()) if CHARTS_DIR.is_dir() else []
        raise AssetNotFoundError(
            f"no local chart {chart!r} in charts/ (known: {', '.join(known) or 'none'})")
    return directory


def helm_values_file(release: str) -> Path:
    """``helm-values/<release>.yaml`` (the file need not exist)."""
    return HELM_VALUES_DIR / f"{_plain_name('release', release, 'karpenter')}.yaml"


def teardown_script(script: str) -> Path:
    """The destroy-time script ``script``."""
    path = TEARDOWN_SCRIPTS_DIR / _plain_name("script", script, "wait-for-karpenter-nodes.sh")
    if not path.is_file():
        raise AssetNotFoundError(f"no teardown script {script!r} in teardown/scripts/")
    return path


def package_dir(package: str) -> Path:
    """The directory of the installed top-level Python package ``package``, found without
    importing it (a Lambda package is bundled, never run, by the library)."""
    if "." in package:
        raise ValueError(f"package must be a top-level package name (got {package!r})")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetNotFoundError(f"package {package!r} is not installed beside constructs_lib")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def lambda_package_dirs() -> tuple[Path, ...]:
    """The directories of :data:`LAMBDA_PACKAGES`, in that order."""
    return tuple(package_dir(name) for name in LAMBDA_PACKAGES)


__all__ = [
    "CHARTS_DIR",
    "HELM_VALUES_DIR",
    "LAMBDA_PACKAGES",
    "TEARDOWN_SCRIPTS_DIR",
    "AssetNotFoundError",
    "chart_dir",
    "helm_values_file",
    "lambda_package_dirs",
    "package_dir",
    "teardown_script",
]
