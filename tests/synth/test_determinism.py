"""The synthesized configuration is byte-stable and independent of how bindings load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdaas.config import EXAMPLE_CONFIG, REPO_ROOT

pytestmark = pytest.mark.slow


def _synth_in(workdir: Path, *, eager: bool = False) -> Path:
    """Run ``main.py`` as a user would, from ``workdir``; return the stack directory."""
    outdir = workdir / "cdktf.out"
    env = {**os.environ, "SD_CONFIG": str(EXAMPLE_CONFIG), "CDKTF_OUTDIR": str(outdir)}
    env.pop("SD_EAGER_PROVIDER_IMPORT", None)
    if eager:
        env["SD_EAGER_PROVIDER_IMPORT"] = "1"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "main.py")], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (stack,) = (outdir / "stacks").iterdir()
    return stack


def _tree(stack: Path) -> dict[str, bytes]:
    return {p.relative_to(stack).as_posix(): p.read_bytes()
            for p in sorted(stack.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def lazy_stack(tmp_path_factory) -> Path:
    return _synth_in(tmp_path_factory.mktemp("first"))


def test_two_directories_give_identical_bytes(lazy_stack, tmp_path):
    other = _synth_in(tmp_path)
    assert _tree(other) == _tree(lazy_stack)


def test_eager_import_gives_identical_bytes(lazy_stack, tmp_path):
    eager = _synth_in(tmp_path, eager=True)
    assert _tree(eager) == _tree(lazy_stack)


def test_no_absolute_paths_or_timestamps(lazy_stack):
    text = (lazy_stack / "cdk.tf.json").read_text()
    for needle in (str(REPO_ROOT), str(lazy_stack.parent.parent), os.path.expanduser("~"),
                   "/tmp/"):
        assert needle not in text, f"{needle} leaked into cdk.tf.json"
