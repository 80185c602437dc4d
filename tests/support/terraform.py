"""Running the real Terraform binary in tests, through the project's runner
(:class:`sdaas.terraform.Terraform`).

* Providers come from the directory named by ``TF_PLUGIN_DIR`` (a filesystem mirror:
  ``<dir>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/``); ``.ci/run``
  discovers it. Without it, tests that need Terraform are skipped with the reason.
* :func:`without_in_cluster` is the documented helper that removes the in-cluster part
  (Helm and Kubernetes providers and their resources), which cannot be initialised
  offline, and returns what it removed so tests can prove nothing else went;
  :func:`without_types` removes any other resource types the same way.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from sdaas import terraform as runner

IN_CLUSTER_PROVIDERS = ("helm", "kubernetes")
IN_CLUSTER_PREFIXES = tuple(f"{p}_" for p in IN_CLUSTER_PROVIDERS)


def plugin_dir() -> Path:
    value = os.environ.get("TF_PLUGIN_DIR")
    if not value:
        message = "TF_PLUGIN_DIR is not set: no offline provider mirror for terraform"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run every Terraform test)")
        pytest.skip(message)
    try:
        return runner.check_mirror(Path(value))
    except runner.TerraformError as exc:
        pytest.fail(str(exc))


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    return binary


def without_types(doc: dict[str, Any],
                  drop: Callable[[str], bool]) -> tuple[dict[str, Any], list[str]]:
    """A copy of a synthesized ``cdk.tf.json`` without the resources and data sources whose
    type ``drop`` accepts, and without ``depends_on`` entries that named them.

    Returns the copy and the sorted addresses removed; the input is left as it was.
    """
    out = copy.deepcopy(doc)
    removed: list[str] = []
    for block in ("resource", "data"):
        for rtype in list(out.get(block, {})):
            if drop(rtype):
                prefix = "data." if block == "data" else ""
                removed.extend(f"{prefix}{rtype}.{name}" for name in out[block][rtype])
                del out[block][rtype]
        if block in out and not out[block]:
            del out[block]
    gone = set(removed)
    for block in ("resource", "data"):
        for resources in out.get(block, {}).values():
            for body in resources.values():
                if "depends_on" in body:
                    body["depends_on"] = [d for d in body["depends_on"] if d not in gone]
                    if not body["depends_on"]:
                        del body["depends_on"]
    return out, sorted(removed)


def without_in_cluster(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of a synthesized ``cdk.tf.json`` without Helm/Kubernetes providers and resources.

    Returns the copy and the sorted addresses (and provider names) removed. Anything that is
    not a Helm or Kubernetes provider, resource or data source stays.
    """
    out, removed = without_types(doc, lambda rtype: rtype.startswith(IN_CLUSTER_PREFIXES))
    for provider in IN_CLUSTER_PROVIDERS:
        if provider in out.get("provider", {}):
            del out["provider"][provider]
            removed.append(f"provider.{provider}")
        required = out.get("terraform", {}).get("required_providers", {})
        if provider in required:
            del required[provider]
    return out, sorted(removed)


class Terraform(runner.Terraform):
    """``terraform`` in one working directory, with providers from the offline mirror, the
    AWS CLI installed beside this interpreter first on the PATH (destroy-time steps call it)
    and no user CLI configuration; ``env`` adds variables."""

    def __init__(self, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        super().__init__(workdir, binary=terraform_binary(), env={
            **os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "PATH": path, **(env or {})})

    def init(self, *, backend: bool = False) -> None:
        self.plugin_dir = plugin_dir()
        super().init(backend=backend)


def write_stack(doc: dict[str, Any], stack_dir: Path, workdir: Path) -> Path:
    """Copy a synthesized stack (its assets too) to ``workdir`` with ``doc`` as cdk.tf.json."""
    workdir.mkdir(parents=True, exist_ok=True)
    assets = stack_dir / "assets"
    if assets.is_dir():
        shutil.copytree(assets, workdir / "assets", dirs_exist_ok=True)
    (workdir / "cdk.tf.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    return workdir


def validate_aws_part(doc: dict[str, Any], stack_dir: Path, workdir: Path) -> dict[str, Any]:
    """``terraform validate -json`` of ``doc`` without its in-cluster part (copied with the
    stack's assets to ``workdir``); the validation report."""
    aws_only, _ = without_in_cluster(doc)
    terraform = Terraform(write_stack(aws_only, stack_dir, workdir))
    terraform.init()
    return json.loads(terraform.run("validate", "-json", check=False).stdout)
