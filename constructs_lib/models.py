"""Where each runtime type reads its checkpoints, relative to its prefix in the model bucket,
and what a checkpoint name may be.

A light module (no CDKTF import), shared by :class:`~constructs_lib.runtime.SdRuntime`, the
configuration file and the model upload tool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

CHECKPOINT_DIRS: Mapping[str, str] = MappingProxyType(
    {"sdwebui": "Stable-diffusion", "comfyui": "checkpoints"})
# A WebUI checkpoint title is the file name, optionally followed by " [<short hash>]".
_TITLE_HASH_RE = re.compile(r" \[[0-9a-fA-F]{8,64}\]$")
_UNSAFE_RE = re.compile(r"[/\\\x00-\x1f\x7f]")


def checkpoint_name_problems(name: str) -> list[str]:
    """``[]`` when ``name`` is a checkpoint file name (``sd_xl_turbo_1.0.safetensors``, or a
    WebUI title ``model.safetensors [6ce0161689]``), else why it is not. Checkpoints sit
    directly in the runtime's checkpoint directory: no path, no ``..``."""
    file = _TITLE_HASH_RE.sub("", name)
    if (not file or file in (".", "..") or _UNSAFE_RE.search(file) or file != file.strip()
            or len(file) > 255):
        return [f'"{name}" is not a checkpoint file name like sd_xl_turbo_1.0.safetensors '
                "(a file in the runtime's checkpoint directory: no '/', no '..')"]
    return []


__all__ = ["CHECKPOINT_DIRS", "checkpoint_name_problems"]
