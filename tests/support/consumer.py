"""The consumer project of ``examples/``: a stack that is not this project's, built from
the library's public names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STACK = "platform"


def synth_example(outdir: Path) -> Path:
    """Run the example's ``build(outdir).synth()`` in this process; return its stack dir."""
    spec = importlib.util.spec_from_file_location("consumer_example", EXAMPLES / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(str(outdir)).synth()
    return outdir / "stacks" / STACK
