"""Request validation: the v1alpha2 task, and the legacy v1alpha1 body mapped onto it.

Pure functions. Every problem is collected with its path (``task.metadata.id``) and all of
them are reported together in one 400. A valid request becomes a :class:`Submission`: the
normalised task that is recorded, hashed and published.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambda_src.api import ApiError
from lambda_src.config import Runtime

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TASKTYPES: Mapping[str, tuple[str, ...]] = {
    "sdwebui": ("text-to-image", "image-to-image", "extra-single-image", "extra-batch-images"),
    "comfyui": ("pipeline",),
}
ALL_TASKTYPES = tuple(t for types in TASKTYPES.values() for t in types)

DEFAULT_PREFIX = "output"
MAX_PREFIX_CHARS = 512
PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
RESERVED_PREFIXES = ("_requests",)  # claim-checked request bodies live under this prefix
MAX_METADATA_BYTES = 65_536  # metadata travels in every message and in the task record
MAX_DETAILS = 100  # an error response lists at most this many problems

_MISSING = object()


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A valid request, normalised: ``task`` is what is hashed, recorded and published."""

    task: dict[str, Any]
    id: str
    runtime: str
    tasktype: str
    prefix: str
    source: str  # "v1alpha2" or "v1alpha1"
    checkpoint: str | None = None  # v1alpha1 only: the requested sd_model_checkpoint

    @property
    def context(self) -> Any:
        return self.task["metadata"].get("context", _MISSING)

    @property
    def has_context(self) -> bool:
        return "context" in self.task["metadata"]


class Problems:
    """Collects ``{"path", "message"}`` details for one 400 response."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        details = self.items[:MAX_DETAILS]
        if len(self.items) > MAX_DETAILS:
            details.append(
                {"path": "", "message": f"{len(self.items) - MAX_DETAILS} more problems not shown"}
            )
        count = len(self.items)
        noun = "problem" if count == 1 else "problems"
        raise ApiError(400, "invalid_request", f"the request has {count} {noun}", details)


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def quote(value: Any, limit: int = 40) -> str:
    """A short JSON rendering of a client value for an error message."""
    text = json.dumps(value) if isinstance(value, str) else json_type(value)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def check_id(value: Any, path: str, problems: Problems) -> str | None:
    if value is _MISSING or value is None:
        problems.add(path, "is required")
        return None
    if not isinstance(value, str):
        problems.add(path, f"must be a string (got {json_type(value)})")
        return None
    if not ID_PATTERN.fullmatch(value):
        problems.add(
            path, f"must be 1-64 characters of A-Z, a-z, 0-9, _ and - (got {quote(value)})"
        )
        return None
    return value


def check_prefix(value: Any, path: str, problems: Problems) -> str | None:
    """A relative S3 key prefix: trailing slashes removed, ``null``/absent -> ``output``."""
    if value is _MISSING or value is None:
        return DEFAULT_PREFIX
    if not isinstance(value, str):
        problems.add(path, f"must be a string (got {json_type(value)})")
        return None
    prefix = value.rstrip("/")
    if not prefix:
        problems.add(path, "must not be empty (leave it out for the default 'output')")
        return None
    if len(prefix) > MAX_PREFIX_CHARS:
        problems.add(path, f"must be at most {MAX_PREFIX_CHARS} characters")
        return None
    if prefix.startswith("/"):
        problems.add(path, f"must be relative, without a leading '/' (got {quote(value)})")
        return None
    segments = prefix.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        problems.add(path, f"must not contain empty, '.' or '..' segments (got {quote(value)})")
        return None
    if not all(PREFIX_SEGMENT.fullmatch(segment) for segment in segments):
        problems.add(
            path, f"may contain only A-Z, a-z, 0-9, '.', '_', '-' and '/' (got {quote(value)})"
        )
        return None
    if segments[0] in RESERVED_PREFIXES:
        problems.add(path, f"must not start with the reserved '{segments[0]}/'")
        return None
    return prefix


def _check_metadata_size(metadata: dict[str, Any], path: str, problems: Problems) -> None:
    size = len(json.dumps(metadata, separators=(",", ":")))
    if size > MAX_METADATA_BYTES:
        problems.add(
            path,
            f"is {size} bytes as JSON; at most {MAX_METADATA_BYTES} allowed (context included)",
        )


def check_workflow(content: dict[str, Any], path: str, problems: Problems) -> None:
    """A ComfyUI workflow in API format: node id -> ``{"class_type", "inputs"}``."""
    if not content:
        problems.add(path, "must be a ComfyUI workflow in API format (node id -> node); got {}")
        return
    if isinstance(content.get("nodes"), list) and "links" in content:
        problems.add(
            path,
            "looks like a ComfyUI UI workflow; export it with 'Save (API Format)' instead",
        )
        return
    for node_id, node in content.items():
        where = f"{path}.{node_id if len(node_id) <= 64 else node_id[:61] + '...'}"
        if not isinstance(node, dict):
            problems.add(where, f"must be a workflow node object (got {json_type(node)})")
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            problems.add(f"{where}.class_type", "is required: the node's class name")
        if not isinstance(node.get("inputs"), dict):
            problems.add(
                f"{where}.inputs", f"must be an object (got {_type_or_missing(node, 'inputs')})"
            )


def _type_or_missing(container: dict[str, Any], key: str) -> str:
    return json_type(container[key]) if key in container else "nothing"


def _object(container: Any, key: str, path: str, problems: Problems) -> dict[str, Any] | None:
    value = container.get(key, _MISSING) if isinstance(container, dict) else _MISSING
    if value is _MISSING or value is None:
        problems.add(path, "is required")
        return None
    if not isinstance(value, dict):
        problems.add(path, f"must be an object (got {json_type(value)})")
        return None
    return value


def _string(value: Any, path: str, problems: Problems) -> str | None:
    if value is _MISSING or value is None:
        problems.add(path, "is required")
        return None
    if not isinstance(value, str):
        problems.add(path, f"must be a string (got {json_type(value)})")
        return None
    if not value:
        problems.add(path, "must not be empty")
        return None
    return value


def _runtime_list(runtimes: Mapping[str, Runtime]) -> str:
    return ", ".join(sorted(runtimes)) or "none"


def v1alpha2(body: Any, runtimes: Mapping[str, Runtime]) -> Submission:
    """Validate a ``POST /v1alpha2`` body: ``{"task": {"metadata": {...}, "content": {...}}}``."""
    problems = Problems()
    if not isinstance(body, dict):
        problems.add("", f"the body must be a JSON object (got {json_type(body)})")
        problems.raise_if_any()
    task = _object(body, "task", "task", problems)
    if task is None:
        problems.raise_if_any()
    assert task is not None
    metadata = _object(task, "metadata", "task.metadata", problems)
    task_id = runtime_name = tasktype = prefix = None
    if metadata is not None:
        task_id = check_id(metadata.get("id", _MISSING), "task.metadata.id", problems)
        runtime_name = _string(metadata.get("runtime", _MISSING), "task.metadata.runtime", problems)
        runtime = None
        if runtime_name is not None:
            runtime = runtimes.get(runtime_name)
            if runtime is None:
                problems.add(
                    "task.metadata.runtime",
                    f"unknown runtime {quote(runtime_name)}; configured: {_runtime_list(runtimes)}",
                )
                runtime_name = None
        tasktype = _string(metadata.get("tasktype", _MISSING), "task.metadata.tasktype", problems)
        if tasktype is not None:
            allowed = TASKTYPES[runtime.type] if runtime is not None else ALL_TASKTYPES
            if tasktype not in allowed:
                where = f" for runtime '{runtime.name}' ({runtime.type})" if runtime else ""
                problems.add(
                    "task.metadata.tasktype",
                    f"{quote(tasktype)} is not valid{where}; expected one of {', '.join(allowed)}",
                )
                tasktype = None
        prefix = check_prefix(metadata.get("prefix", _MISSING), "task.metadata.prefix", problems)
        if prefix is not None:
            metadata = {**metadata, "prefix": prefix}
        _check_metadata_size(metadata, "task.metadata", problems)
    content = _object(task, "content", "task.content", problems)
    if content is not None and tasktype == "pipeline":
        check_workflow(content, "task.content", problems)
    problems.raise_if_any()
    assert metadata is not None and content is not None
    assert task_id and runtime_name and tasktype and prefix
    return Submission(
        task={"metadata": metadata, "content": content},
        id=task_id,
        runtime=runtime_name,
        tasktype=tasktype,
        prefix=prefix,
        source="v1alpha2",
    )


_CHECKPOINT_HASH = re.compile(r"\s*\[[0-9A-Fa-f]{6,64}\]$")


def _checkpoint_name(name: str) -> str:
    """``model.safetensors [6ce0161689]`` (a WebUI title) and ``model.safetensors`` match."""
    return _CHECKPOINT_HASH.sub("", name.strip())


def runtime_for_checkpoint(checkpoint: str, runtimes: Mapping[str, Runtime]) -> Runtime | None:
    """The sdwebui runtime serving ``checkpoint``; else one that loads models on demand.

    Ties are broken by runtime name, so the choice is stable whatever the config order.
    """
    wanted = _checkpoint_name(checkpoint)
    candidates = [runtimes[name] for name in sorted(runtimes) if runtimes[name].type == "sdwebui"]
    for runtime in candidates:
        if any(_checkpoint_name(model) == wanted for model in runtime.models):
            return runtime
    for runtime in candidates:
        if runtime.dynamic_model:
            return runtime
    return None


# Where the WebUI API takes the input image of a legacy task that names it by image_link.
_IMAGE_FIELDS = {"image-to-image": "init_images", "extra-single-image": "image"}


def v1alpha1(body: Any, runtimes: Mapping[str, Runtime]) -> Submission:
    """Validate a legacy ``POST /v1alpha1`` body and map it onto a v1alpha2 task.

    The body is a WebUI API body whose ``alwayson_scripts`` also carries ``task``,
    ``id_task``, ``sd_model_checkpoint``, ``save_dir`` and (image input) ``image_link``.
    As in the reference, the published task is ``{"metadata": {"id": id_task, "runtime",
    "tasktype": task, "prefix": save_dir, "context": {}}, "content": <the body>}``, routed to
    the runtime that serves the checkpoint. ``image_link`` is also copied to where the WebUI
    API expects the input image when the body has none there: ``init_images`` for
    image-to-image, ``image`` for extra-single-image.
    """
    problems = Problems()
    if (
        isinstance(body, dict)
        and "alwayson_scripts" not in body
        and isinstance(body.get("task"), dict)
    ):
        body = body["task"]  # an early reference client wrapped the legacy body in "task"
    if not isinstance(body, dict):
        problems.add("", f"the body must be a JSON object (got {json_type(body)})")
        problems.raise_if_any()
    scripts = _object(body, "alwayson_scripts", "alwayson_scripts", problems)
    problems.raise_if_any()
    assert scripts is not None
    sdwebui_types = TASKTYPES["sdwebui"]
    tasktype = _string(scripts.get("task", _MISSING), "alwayson_scripts.task", problems)
    if tasktype is not None and tasktype not in sdwebui_types:
        problems.add(
            "alwayson_scripts.task",
            f"{quote(tasktype)} is not valid; expected one of {', '.join(sdwebui_types)}",
        )
        tasktype = None
    task_id = check_id(scripts.get("id_task", _MISSING), "alwayson_scripts.id_task", problems)
    checkpoint = _string(
        scripts.get("sd_model_checkpoint", _MISSING),
        "alwayson_scripts.sd_model_checkpoint",
        problems,
    )
    runtime = None
    if checkpoint is not None:
        runtime = runtime_for_checkpoint(checkpoint, runtimes)
        if runtime is None:
            problems.add(
                "alwayson_scripts.sd_model_checkpoint",
                f"no sdwebui runtime serves {quote(checkpoint)} and none loads models dynamically",
            )
    prefix = check_prefix(scripts.get("save_dir", _MISSING), "alwayson_scripts.save_dir", problems)
    image_link = scripts.get("image_link", _MISSING)
    image_field = _IMAGE_FIELDS.get(tasktype or "")
    if image_link is not _MISSING and (not isinstance(image_link, str) or not image_link):
        problems.add("alwayson_scripts.image_link", "must be a non-empty string (the image URL)")
    elif image_field and image_link is _MISSING and not body.get(image_field):
        problems.add(
            "alwayson_scripts.image_link", f"is required for {tasktype} (or give {image_field})"
        )
    problems.raise_if_any()
    assert tasktype and task_id and checkpoint and runtime and prefix
    content = dict(body)  # only top-level keys are added: the nested values are shared
    if image_field and image_link is not _MISSING and not content.get(image_field):
        content[image_field] = [image_link] if image_field == "init_images" else image_link
    metadata = {
        "id": task_id,
        "runtime": runtime.name,
        "tasktype": tasktype,
        "prefix": prefix,
        "context": {},
    }
    return Submission(
        task={"metadata": metadata, "content": content},
        id=task_id,
        runtime=runtime.name,
        tasktype=tasktype,
        prefix=prefix,
        source="v1alpha1",
        checkpoint=checkpoint,
    )
