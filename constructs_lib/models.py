"""Where each runtime type reads its checkpoints, relative to its prefix in the model bucket.

A light module (no CDKTF import), shared by :class:`~constructs_lib.runtime.SdRuntime` and
the model upload tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

CHECKPOINT_DIRS: Mapping[str, str] = MappingProxyType(
    {"sdwebui": "Stable-diffusion", "comfyui": "checkpoints"})

__all__ = ["CHECKPOINT_DIRS"]
