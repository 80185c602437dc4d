"""The stack the runtime tests synthesize: the whole service, built by the application's own
builder (:func:`sdaas.app.build_app`, what ``main.py`` writes), with editors that may
rewrite each runtime's props and the GPU pools' props (to provoke consistency errors).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from constructs_lib import karpenter as karpenter_lib
from constructs_lib import runtime as runtime_lib
from sdaas.app import Built, Edit, Edits, build_app
from sdaas.config import Config


def build(config: Config, outdir: Path | str, *,
          runtime_props: Edit[runtime_lib.SdRuntimeProps] | None = None,
          pool_props: Edit[karpenter_lib.KarpenterGpuPoolProps] | None = None) -> Built:
    """The whole stack for ``config``, the editors applied."""
    return build_app(config, outdir, edits=Edits(runtime=runtime_props, karpenter=pool_props))


def synth(built: Built) -> Path:
    return built.synth()


def load(stack_dir: Path) -> dict[str, Any]:
    return json.loads((stack_dir / "cdk.tf.json").read_text(encoding="utf-8"))


def with_props(**changes: Any) -> Edit[runtime_lib.SdRuntimeProps]:
    """A ``runtime_props`` editor applying ``changes`` to every runtime."""
    return lambda props: replace(props, **changes)
