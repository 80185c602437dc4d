"""The reference's legacy routing keys (v1alpha1) inside SD WebUI bodies.

A v1alpha1 body is a flat WebUI body whose ``alwayson_scripts`` also carries ``task``,
``id_task``, ``uid``, ``sd_model_checkpoint``, ``save_dir`` and ``image_link``. These keys
are not WebUI script arguments: they are read for routing and removed before the WebUI is
called. v2 bodies may carry them too (``image_link``, ``sd_model_checkpoint``).
"""

from __future__ import annotations

import re
from typing import Any

from task_contract.content import with_image_link

LEGACY_KEYS = ("task", "id_task", "uid", "sd_model_checkpoint", "save_dir", "image_link")
CHECKPOINT = "sd_model_checkpoint"
_CHECKPOINT_HASH = re.compile(r"\s*\[[0-9A-Fa-f]{6,64}\]$")


def unwrap(body: Any) -> Any:
    """The legacy body; an early reference client wrapped it in ``{"task": ...}``."""
    if isinstance(body, dict) and "alwayson_scripts" not in body and isinstance(
            body.get("task"), dict):
        return body["task"]
    return body


def is_v1alpha1(document: Any) -> bool:
    """A message that is a legacy body rather than a task ``{"metadata", "content"}``."""
    if not isinstance(document, dict) or "metadata" in document:
        return False
    body = unwrap(document)
    scripts = body.get("alwayson_scripts")
    return isinstance(scripts, dict) and "task" in scripts


def checkpoint_name(name: str) -> str:
    """``model.safetensors [6ce0161689]`` (a WebUI title) -> ``model.safetensors``."""
    return _CHECKPOINT_HASH.sub("", name.strip())


def requested_checkpoint(content: dict[str, Any]) -> str | None:
    """The checkpoint an SD WebUI body asks for: ``alwayson_scripts.sd_model_checkpoint`` (the
    legacy routing key), else ``override_settings.sd_model_checkpoint``, else a top-level one."""
    scripts = content.get("alwayson_scripts")
    override = content.get("override_settings")
    for source in (scripts, override, content):
        value = source.get(CHECKPOINT) if isinstance(source, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def webui_body(content: dict[str, Any], tasktype: str) -> dict[str, Any]:
    """What the WebUI is sent for ``content``: ``image_link`` copied to the input image field
    when that is empty, the legacy keys removed (top level and ``alwayson_scripts``, which
    goes when nothing else is left in it). A copy; nested values are shared."""
    body = {key: value for key, value in with_image_link(content, tasktype).items()
            if key == "task" or key not in LEGACY_KEYS}
    scripts = body.get("alwayson_scripts")
    if isinstance(scripts, dict) and any(key in scripts for key in LEGACY_KEYS):
        kept = {key: value for key, value in scripts.items() if key not in LEGACY_KEYS}
        if kept:
            body["alwayson_scripts"] = kept
        else:
            body.pop("alwayson_scripts")
    return body
