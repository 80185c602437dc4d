"""The library as another team gets it: the built wheel, installed with only its declared
dependencies into a fresh virtual environment outside the repository, runs the consumer
project of ``examples/`` from a directory with no checkout around it, and synthesizes
exactly what the checkout does.

Slow: it builds the wheel and installs it with its dependencies from the package index
(pip's cache makes reruns faster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.consumer import EXAMPLES, STACK
from tests.support.terraform import Terraform, without_in_cluster, write_stack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# What a clean clone holds that the build reads (pyproject.toml names the packages).
SOURCES = ("pyproject.toml", "README.md", "constructs_lib", "sdaas", "agent", "lambda_src",
           "task_contract", "charts", "helm-values")


def _run(args: list[str], *, cwd: Path, timeout: int = 1800,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _outside_env() -> dict[str, str]:
    """This process's environment without anything pointing at the checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "CDKTF_OUTDIR")}
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(origin, source / name)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
          "--disable-pip-version-check", "-w", str(out), str(source)], cwd=out)
    (built,) = out.glob("sd_async_eks-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory, wheel) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], cwd=venv)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          str(wheel)], cwd=venv, env=_outside_env())
    return python


@pytest.fixture(scope="module")
def consumer_run(tmp_path_factory, venv_python) -> tuple[Path, dict]:
    project = tmp_path_factory.mktemp("platform-team") / "stack"
    shutil.copytree(EXAMPLES, project, ignore=shutil.ignore_patterns("__pycache__",
                                                                      "cdktf.out"))
    env = _outside_env()
    _run([str(venv_python), "main.py"], cwd=project, env=env, timeout=900)
    probe = _run([str(venv_python), "-c",
                  "import json, sys, constructs_lib, lambda_src, task_contract\n"
                  "print(json.dumps({'library': constructs_lib.__file__,\n"
                  "                  'lambda_src': lambda_src.__file__,\n"
                  "                  'task_contract': task_contract.__file__,\n"
                  "                  'path': sys.path}))"], cwd=project, env=env)
    return project / "cdktf.out" / "stacks" / STACK, json.loads(probe.stdout)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_wheel_ships_every_asset_and_the_lambda_packages(wheel):
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist()}
    expected = {}
    for folder in ("charts", "helm-values"):
        for path, data in _tree(REPO / folder).items():
            expected[f"constructs_lib/_assets/{folder}/{path}"] = data
    for path, data in _tree(REPO / "constructs_lib" / "teardown" / "scripts").items():
        expected[f"constructs_lib/teardown/scripts/{path}"] = data
    for package in ("lambda_src", "task_contract"):
        for path, data in _tree(REPO / package).items():
            if path.endswith(".py") and "__pycache__" not in path:
                expected[f"{package}/{path}"] = data
    missing = sorted(set(expected) - set(shipped))
    assert missing == []
    assert {n: shipped[n] for n in expected} == expected
    assert "constructs_lib/py.typed" in shipped
    assert not any(n.startswith(("tests/", "examples/")) for n in shipped)


def test_the_consumer_runs_on_the_installed_wheel_alone(consumer_run, venv_python):
    _, probe = consumer_run
    venv = venv_python.parent.parent
    for module in ("library", "lambda_src", "task_contract"):
        assert Path(probe[module]).resolve().is_relative_to(venv.resolve()), probe[module]
    assert not any(Path(p).resolve() == REPO for p in probe["path"] if p)


def test_the_installed_wheel_synthesizes_what_the_checkout_does(consumer_run, consumer_synth):
    stack_dir, _ = consumer_run
    assert _tree(stack_dir) == _tree(consumer_synth.stack_dir)


@pytest.mark.terraform
def test_the_installed_wheels_configuration_validates(consumer_run, tmp_path):
    stack_dir, _ = consumer_run
    doc = json.loads((stack_dir / "cdk.tf.json").read_text())
    aws_only, _ = without_in_cluster(doc)
    tf = Terraform(write_stack(aws_only, stack_dir, tmp_path / "stack"))
    tf.init()
    result = json.loads(tf.run("validate", "-json").stdout)
    assert result["valid"] is True, result["diagnostics"]
