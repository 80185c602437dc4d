"""Turning an SQS message into a :class:`Task`.

Accepted bodies (ARCHITECTURE §4):
- an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``) or a raw body;
- ``{"metadata": {...}, "content": {...}}``, the task itself;
- ``{"metadata": {...}, "content_ref": "s3://<output bucket>/<key>"}``, a claim check whose
  object holds the whole task;
- a legacy v1alpha1 body: a flat SD WebUI body with ``alwayson_scripts.task`` and
  ``id_task`` (and ``sd_model_checkpoint``, ``save_dir``, ``image_link``), either at the top
  level or inside ``alwayson_scripts``.

Anything else raises :class:`InvalidMessage`, which carries the task id when it is known so
that a failed result can still be reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent.errors import PermanentError

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TASK_TYPES = {
    "sdwebui": ("text-to-image", "image-to-image", "extra-single-image", "extra-batch-images"),
    "comfyui": ("pipeline",),
}
DEFAULT_PREFIX = "output"
_LEGACY_KEYS = ("task", "id_task", "sd_model_checkpoint", "save_dir", "image_link", "uid")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()=+,;:@ -]+$")


class InvalidMessage(PermanentError):
    """The message is not a valid task; ``task_id`` is set when the id could be read."""

    def __init__(self, message: str, task_id: str | None = None, details: Any = None) -> None:
        super().__init__("invalid_task", message, details)
        self.task_id = task_id


@dataclass
class Task:
    """One task as the agent processes it."""

    id: str
    runtime: str
    tasktype: str
    content: dict[str, Any]
    prefix: str = DEFAULT_PREFIX
    context: Any = ""
    source: str = "v1alpha2"
    checkpoint: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{self.id}/{name}"


def unwrap_envelope(body: str) -> dict[str, Any]:
    """Parse the message body and remove an SNS envelope if there is one."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise InvalidMessage(f"message body is not JSON: {exc.msg if hasattr(exc, 'msg') else exc}"
                             ) from exc
    if isinstance(document, dict) and document.get("Type") == "Notification" and isinstance(
        document.get("Message"), str
    ):
        try:
            document = json.loads(document["Message"])
        except json.JSONDecodeError as exc:
            raise InvalidMessage(f"SNS message is not JSON: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise InvalidMessage("message body must be a JSON object")
    return document


def sanitise_prefix(prefix: Any) -> str:
    """The output prefix, validated: relative, no ``..``, no empty parts."""
    if prefix is None or prefix == "":
        return DEFAULT_PREFIX
    if not isinstance(prefix, str) or len(prefix) > 512:
        raise ValueError("prefix must be a string of at most 512 characters")
    cleaned = prefix.strip().strip("/") if not prefix.startswith("/") else None
    if cleaned is None:
        raise ValueError("prefix must be relative (no leading '/')")
    parts = cleaned.split("/")
    if any(part in ("", ".", "..") or not _PREFIX_PART.match(part) for part in parts):
        raise ValueError(f"prefix {prefix!r} must be relative, without '..' or empty parts")
    return cleaned


def parse_task(
    body: str,
    runtime_type: str,
    runtime_name: str,
    load_claim_check: Callable[[str], str],
    output_bucket: str,
) -> Task:
    """Parse and validate one message body for this runtime."""
    document = unwrap_envelope(body)
    if "metadata" not in document and _is_legacy(document):
        return _parse_legacy(document, runtime_type, runtime_name)
    metadata = document.get("metadata")
    task_id = _read_id(metadata)
    problems: list[str] = []
    if not isinstance(metadata, dict):
        raise InvalidMessage("message has no 'metadata' object", task_id)
    if "content_ref" in document and "content" not in document:
        document = _load_claim_check(document, task_id, load_claim_check, output_bucket)
        metadata = document.get("metadata", metadata) if isinstance(document, dict) else metadata
    content = document.get("content")
    if not isinstance(content, dict):
        problems.append("'content' must be a JSON object (the runtime's request body)")
    if task_id is None:
        problems.append("metadata.id must be 1-64 characters of [A-Za-z0-9_-]")
    runtime = metadata.get("runtime") or runtime_name
    if runtime != runtime_name:
        problems.append(
            f"metadata.runtime is {runtime!r} but this queue serves runtime {runtime_name!r}"
        )
    tasktype = metadata.get("tasktype")
    allowed = TASK_TYPES.get(runtime_type, ())
    if tasktype not in allowed:
        problems.append(f"metadata.tasktype must be one of {', '.join(allowed)} for a "
                        f"{runtime_type} runtime (got {tasktype!r})")
    try:
        prefix = sanitise_prefix(metadata.get("prefix"))
    except ValueError as exc:
        problems.append(f"metadata.prefix: {exc}")
        prefix = DEFAULT_PREFIX
    if problems:
        raise InvalidMessage("; ".join(problems), task_id, problems)
    assert task_id is not None and isinstance(content, dict)
    checkpoint = None
    if runtime_type == "sdwebui":
        content, legacy = _strip_legacy_scripts(content)
        checkpoint = legacy.get("sd_model_checkpoint")
    return Task(
        id=task_id,
        runtime=runtime_name,
        tasktype=str(tasktype),
        content=content,
        prefix=prefix,
        context=metadata.get("context", ""),
        source=str(metadata.get("source") or "v1alpha2"),
        checkpoint=checkpoint if isinstance(checkpoint, str) and checkpoint else None,
    )


def _read_id(metadata: Any) -> str | None:
    if isinstance(metadata, dict):
        value = metadata.get("id")
        if isinstance(value, str) and ID_PATTERN.match(value):
            return value
    return None


def _load_claim_check(
    document: dict[str, Any], task_id: str | None, load: Callable[[str], str], bucket: str
) -> dict[str, Any]:
    ref = document.get("content_ref")
    parts = urlsplit(ref) if isinstance(ref, str) else None
    if parts is None or parts.scheme != "s3" or parts.netloc != bucket or not parts.path[1:]:
        raise InvalidMessage(
            f"content_ref must be an s3:// URL in the output bucket {bucket!r}", task_id
        )
    try:
        stored = json.loads(load(ref))
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"claim-checked body is not JSON: {exc.msg}", task_id) from exc
    except InvalidMessage:
        raise
    except PermanentError as exc:
        raise InvalidMessage(exc.message, task_id, exc.details) from exc
    if not isinstance(stored, dict) or not isinstance(stored.get("content"), dict):
        raise InvalidMessage("claim-checked body has no 'content' object", task_id)
    stored_id = _read_id(stored.get("metadata"))
    if stored_id is not None and task_id is not None and stored_id != task_id:
        raise InvalidMessage(
            f"claim-checked body belongs to task {stored_id!r}, not {task_id!r}", task_id
        )
    return {"metadata": document["metadata"], "content": stored["content"]}


def _is_legacy(document: dict[str, Any]) -> bool:
    scripts = document.get("alwayson_scripts")
    return isinstance(scripts, dict) and "task" in scripts


def _strip_legacy_scripts(content: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Remove the legacy routing keys that the WebUI would reject; return them separately."""
    legacy: dict[str, Any] = {}
    content = dict(content)
    for key in _LEGACY_KEYS:
        if key in content and key != "task":
            legacy[key] = content.pop(key)
    scripts = content.get("alwayson_scripts")
    if isinstance(scripts, dict) and any(k in scripts for k in _LEGACY_KEYS):
        scripts = dict(scripts)
        for key in _LEGACY_KEYS:
            if key in scripts:
                legacy.setdefault(key, scripts.pop(key))
        if scripts:
            content["alwayson_scripts"] = scripts
        else:
            content.pop("alwayson_scripts")
    override = content.get("override_settings")
    if isinstance(override, dict) and "sd_model_checkpoint" in override:
        legacy.setdefault("sd_model_checkpoint", override["sd_model_checkpoint"])
    return content, legacy


def _parse_legacy(document: dict[str, Any], runtime_type: str, runtime_name: str) -> Task:
    content, legacy = _strip_legacy_scripts(document)
    raw_id = legacy.get("id_task")
    task_id = raw_id if isinstance(raw_id, str) and ID_PATTERN.match(raw_id) else None
    problems: list[str] = []
    if task_id is None:
        problems.append("id_task must be 1-64 characters of [A-Za-z0-9_-]")
    if runtime_type != "sdwebui":
        problems.append(f"v1alpha1 bodies are for sdwebui runtimes, not {runtime_type}")
    tasktype = legacy.get("task")
    if tasktype not in TASK_TYPES["sdwebui"]:
        problems.append(f"alwayson_scripts.task must be one of "
                        f"{', '.join(TASK_TYPES['sdwebui'])} (got {tasktype!r})")
    try:
        prefix = sanitise_prefix(legacy.get("save_dir"))
    except ValueError as exc:
        problems.append(f"save_dir: {exc}")
        prefix = DEFAULT_PREFIX
    image_link = legacy.get("image_link")
    if image_link is not None and not isinstance(image_link, str):
        problems.append("image_link must be a URL string")
    if problems:
        raise InvalidMessage("; ".join(problems), task_id, problems)
    assert task_id is not None
    if isinstance(image_link, str) and image_link:
        if tasktype == "image-to-image" and not content.get("init_images"):
            content["init_images"] = [image_link]
        elif tasktype == "extra-single-image" and not content.get("image"):
            content["image"] = image_link
    checkpoint = legacy.get("sd_model_checkpoint")
    return Task(
        id=task_id,
        runtime=runtime_name,
        tasktype=str(tasktype),
        content=content,
        prefix=prefix,
        context=legacy.get("uid", ""),
        source="v1alpha1",
        checkpoint=checkpoint if isinstance(checkpoint, str) and checkpoint else None,
    )
