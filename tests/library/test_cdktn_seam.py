"""Moving to CDK Terrain (``cdktn``, the maintained fork of the archived CDKTF) is the two
seam modules plus the pins: ``_cdktf.py`` (the framework) and ``_providers.py`` (the
bindings' package names).

The proof runs the consumer project of ``examples/`` on CDK Terrain: a throwaway virtual
environment gets ``cdktn`` and its prebuilt AWS and Helm bindings, the library is copied
with only its two seams pointed at them (and the consumer's own imports likewise), and the
synthesized configuration is compared with the CDKTF one. Slow: it installs CDK Terrain.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.consumer import EXAMPLES, STACK
from tests.support.provider_schema import cache_dir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CDKTN = ("cdktn==0.24.0", "cdktn-provider-aws==25.8.1", "cdktn-provider-helm==15.1.0",
         "pyyaml==6.0.3")
SEAMS = {
    "constructs_lib/_cdktf.py": (("from cdktf import", "from cdktn import"),),
    "constructs_lib/_providers.py": (('"cdktf_cdktf_provider_', '"cdktn_provider_'),),
}
CONSUMER_RENAMES = (("from cdktf import", "from cdktn import"),
                    ("cdktf_cdktf_provider_", "cdktn_provider_"))


def _rewrite(path: Path, renames: tuple[tuple[str, str], ...]) -> None:
    text = path.read_text(encoding="utf-8")
    for old, new in renames:
        assert old in text, f"{path.name} no longer holds {old!r}: update the seam test"
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def _binding_classes() -> set[tuple[str, str]]:
    """``(module, Class)`` of every AWS binding class the library names
    (``aws.<module>.<Class>``, or ``<alias>.<Class>`` after ``<alias> = aws.<module>``)."""
    uses = set()
    for path in (REPO / "constructs_lib").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "aws"):
                aliases.update({t.id: node.value.attr for t in node.targets
                                if isinstance(t, ast.Name)})
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr[:1].isupper():
                continue
            inner = node.value
            if (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)
                    and inner.value.id == "aws"):
                uses.add((inner.attr, node.attr))
            elif isinstance(inner, ast.Name) and inner.id in aliases:
                uses.add((aliases[inner.id], node.attr))
    return uses


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_every_binding_class_the_library_uses_exists_in_cdk_terrains_bindings():
    wheels = cache_dir() / "cdktn-wheels"
    found = sorted(wheels.glob("cdktn_provider_aws-25.8.1-*.whl"))
    if not found:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
              "--disable-pip-version-check", "cdktn-provider-aws==25.8.1", "-d", str(wheels)],
             timeout=900)
        found = sorted(wheels.glob("cdktn_provider_aws-25.8.1-*.whl"))
    uses = _binding_classes()
    assert len(uses) > 100 and ("sqs_queue", "SqsQueue") in uses
    missing = []
    with zipfile.ZipFile(found[0]) as archive:
        names = set(archive.namelist())
        for module, cls in sorted(uses):
            source = f"cdktn_provider_aws/{module}/__init__.py"
            if source not in names or not re.search(
                    rf"^class {cls}\b", archive.read(source).decode(), re.MULTILINE):
                missing.append(f"{module}.{cls}")
    assert missing == []


@pytest.fixture(scope="module")
def terrain_stack(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("cdktn-venv")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          *CDKTN], timeout=1800)
    source = tmp_path_factory.mktemp("library")
    for name in ("constructs_lib", "task_contract", "lambda_src", "charts", "helm-values"):
        shutil.copytree(REPO / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for seam, renames in SEAMS.items():
        _rewrite(source / seam, renames)
    consumer = tmp_path_factory.mktemp("consumer")
    shutil.copy2(EXAMPLES / "main.py", consumer / "main.py")
    _rewrite(consumer / "main.py", CONSUMER_RENAMES)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CDKTF_OUTDIR")}
    env["PYTHONPATH"] = str(source)
    _run([str(python), "main.py"], cwd=consumer, env=env, timeout=900)
    return consumer / "cdktf.out" / "stacks" / STACK


def _bodies(doc: dict) -> dict[str, dict]:
    out = {}
    for block in ("resource", "data"):
        for rtype, items in doc.get(block, {}).items():
            for name, body in items.items():
                out[f"{block}.{rtype}.{name}"] = {k: v for k, v in body.items() if k != "//"}
    return out


def test_the_consumer_synthesizes_the_same_configuration_on_cdk_terrain(terrain_stack,
                                                                         consumer_synth):
    terrain = json.loads((terrain_stack / "cdk.tf.json").read_text())
    assert _bodies(terrain) == _bodies(consumer_synth.doc)
    assert terrain["output"] == consumer_synth.doc["output"]
    assert terrain["terraform"] == consumer_synth.doc["terraform"]
