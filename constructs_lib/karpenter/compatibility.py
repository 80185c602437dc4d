"""Which Karpenter chart versions support which Kubernetes versions (checked at synth)."""

from __future__ import annotations

import re

DEFAULT_CHART_VERSION = "1.14.1"
# Lowest Karpenter chart that supports each Kubernetes minor version
# (https://karpenter.sh/docs/upgrading/compatibility/).
KARPENTER_MINIMUM_FOR_KUBERNETES = {
    "1.29": "0.34.0",
    "1.30": "0.37.0",
    "1.31": "1.0.5",
    "1.32": "1.2.0",
    "1.33": "1.5.0",
    "1.34": "1.6.0",
    "1.35": "1.9.0",
    "1.36": "1.13.0",
}
SEMVER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _version(text: str) -> tuple[int, int, int]:
    match = SEMVER_RE.match(text)
    if not match:
        raise ValueError(f'"{text}" is not a version like 1.14.1')
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def compatibility_problems(chart_version: str, kubernetes_version: str) -> list[str]:
    """Why Karpenter ``chart_version`` cannot run on ``kubernetes_version`` (empty: it can).

    A problem about the chart starts with ``karpenter chart_version``, one about the
    Kubernetes version with ``Kubernetes``.
    """
    if not SEMVER_RE.match(chart_version):
        return [f'karpenter chart_version must be an exact version like '
                f'{DEFAULT_CHART_VERSION} (got "{chart_version}")']
    if _version(chart_version) < (1, 0, 0):
        return [f"karpenter chart_version {chart_version} predates the karpenter.sh/v1 API "
                "that charts/gpu-nodepool uses: use 1.0.0 or later"]
    minimum = KARPENTER_MINIMUM_FOR_KUBERNETES.get(kubernetes_version)
    if minimum is None:
        known = ", ".join(KARPENTER_MINIMUM_FOR_KUBERNETES)
        return [f"Kubernetes {kubernetes_version} is not in Karpenter's compatibility table "
                f"(https://karpenter.sh/docs/upgrading/compatibility/): use one of {known}"]
    if _version(chart_version) < _version(minimum):
        return [f"karpenter chart_version {chart_version} does not support Kubernetes "
                f"{kubernetes_version}: it needs {minimum} or later (or a lower "
                "kubernetes_version)"]
    return []


def check_karpenter_compatibility(chart_version: str, kubernetes_version: str) -> None:
    """Raise ``ValueError`` unless Karpenter ``chart_version`` supports ``kubernetes_version``."""
    problems = compatibility_problems(chart_version, kubernetes_version)
    if problems:
        raise ValueError("; ".join(problems))
