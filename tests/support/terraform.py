"""Running the real Terraform binary in tests.

* Providers come from the directory named by ``TF_PLUGIN_DIR`` (a filesystem mirror:
  ``<dir>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/``); ``.ci/run``
  discovers it. Without it, tests that need Terraform are skipped with the reason.
* :func:`without_in_cluster` is the documented helper that removes the in-cluster part
  (Helm and Kubernetes providers and their resources), which cannot be initialised
  offline, and returns what it removed so tests can prove nothing else went.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IN_CLUSTER_PROVIDERS = ("helm", "kubernetes")
IN_CLUSTER_PREFIXES = tuple(f"{p}_" for p in IN_CLUSTER_PROVIDERS)


def plugin_dir() -> Path:
    value = os.environ.get("TF_PLUGIN_DIR")
    if not value:
        message = "TF_PLUGIN_DIR is not set: no offline provider mirror for terraform"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run every Terraform test)")
        pytest.skip(message)
    path = Path(value)
    if not (path / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.fail(f"TF_PLUGIN_DIR={value} holds no registry.terraform.io/hashicorp/aws")
    return path


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    return binary


def without_in_cluster(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of a synthesized ``cdk.tf.json`` without Helm/Kubernetes providers and resources.

    Returns the copy and the sorted addresses (and provider names) removed. Anything that is
    not a Helm or Kubernetes provider, resource or data source stays.
    """
    out = copy.deepcopy(doc)
    removed: list[str] = []
    for block in ("resource", "data"):
        for rtype in list(out.get(block, {})):
            if rtype.startswith(IN_CLUSTER_PREFIXES):
                for name in out[block][rtype]:
                    prefix = "data." if block == "data" else ""
                    removed.append(f"{prefix}{rtype}.{name}")
                del out[block][rtype]
        if block in out and not out[block]:
            del out[block]
    for provider in IN_CLUSTER_PROVIDERS:
        if provider in out.get("provider", {}):
            del out["provider"][provider]
            removed.append(f"provider.{provider}")
        required = out.get("terraform", {}).get("required_providers", {})
        if provider in required:
            del required[provider]
    # depends_on entries that named a removed resource
    gone = {a for a in removed if not a.startswith("provider.")}
    for block in ("resource", "data"):
        for resources in out.get(block, {}).values():
            for body in resources.values():
                if "depends_on" in body:
                    body["depends_on"] = [d for d in body["depends_on"] if d not in gone]
                    if not body["depends_on"]:
                        del body["depends_on"]
    return out, sorted(removed)


@dataclass
class Terraform:
    """``terraform`` in one working directory, with providers from the offline mirror."""

    workdir: Path
    env: dict[str, str] | None = None

    def run(self, *args: str, check: bool = True,
            timeout: int = 900) -> subprocess.CompletedProcess:
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
               "CHECKPOINT_DISABLE": "1", **(self.env or {})}
        env.pop("TF_CLI_CONFIG_FILE", None)
        # Destroy-time steps call the AWS CLI: the one installed beside this interpreter.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["TF_CLI_CONFIG_FILE"] = os.devnull
        proc = subprocess.run(
            [terraform_binary(), *args, "-no-color"],
            cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
            )
        return proc

    def init(self, *, backend: bool = False) -> None:
        args = ["init", "-input=false", f"-plugin-dir={plugin_dir()}"]
        if not backend:
            args.append("-backend=false")
        self.run(*args)


def write_stack(doc: dict[str, Any], stack_dir: Path, workdir: Path) -> Path:
    """Copy a synthesized stack (its assets too) to ``workdir`` with ``doc`` as cdk.tf.json."""
    workdir.mkdir(parents=True, exist_ok=True)
    assets = stack_dir / "assets"
    if assets.is_dir():
        shutil.copytree(assets, workdir / "assets", dirs_exist_ok=True)
    (workdir / "cdk.tf.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    return workdir
