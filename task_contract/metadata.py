"""Task ids, output prefixes, task types per runtime type and the metadata size limit."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from task_contract.layout import CLAIM_CHECK_PREFIX, DEFAULT_PREFIX
from task_contract.problems import (
    MISSING,
    Problems,
    json_type,
    quote,
    required,
    required_string,
)

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

TASKTYPES: Mapping[str, tuple[str, ...]] = {
    "sdwebui": ("text-to-image", "image-to-image", "extra-single-image", "extra-batch-images"),
    "comfyui": ("pipeline",),
}
RUNTIME_TYPES = tuple(TASKTYPES)
ALL_TASKTYPES = tuple(t for types in TASKTYPES.values() for t in types)

MAX_PREFIX_CHARS = 512
PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# First segments an output prefix may not have: claim-checked request bodies live there.
RESERVED_PREFIXES = (CLAIM_CHECK_PREFIX.rstrip("/"),)
MAX_METADATA_BYTES = 65_536  # metadata travels in every message and in the task record


def is_task_id(value: Any) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_id(value: Any, path: str, problems: Problems) -> str | None:
    """A task id: 1-64 characters of ``A-Z a-z 0-9 _ -``."""
    found = required(value, str, "a string", path, problems)
    if found is None:
        return None
    if not is_task_id(found):
        problems.add(
            path, f"must be 1-64 characters of A-Z, a-z, 0-9, _ and - (got {quote(found)})"
        )
        return None
    return found


def check_prefix(value: Any, path: str, problems: Problems) -> str | None:
    """A relative S3 key prefix: trailing slashes removed, ``null``/absent -> ``output``."""
    if value is MISSING or value is None:
        return DEFAULT_PREFIX
    if not isinstance(value, str):
        problems.add(path, f"must be a string (got {json_type(value)})")
        return None
    prefix = value.rstrip("/")
    if not prefix:
        problems.add(path, f"must not be empty (leave it out for the default '{DEFAULT_PREFIX}')")
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


def check_tasktype(value: Any, path: str, runtime_type: str | None, runtime_name: str | None,
                   problems: Problems) -> str | None:
    """A task type valid for ``runtime_type`` (any runtime type's when it is unknown)."""
    found = required_string(value, path, problems)
    if found is None:
        return None
    allowed = TASKTYPES[runtime_type] if runtime_type in TASKTYPES else ALL_TASKTYPES
    if found not in allowed:
        where = f" for runtime '{runtime_name}' ({runtime_type})" if runtime_name else ""
        problems.add(path, f"{quote(found)} is not valid{where}; expected one of "
                           f"{', '.join(allowed)}")
        return None
    return found


def check_metadata_size(metadata: dict[str, Any], path: str, problems: Problems) -> None:
    size = len(json.dumps(metadata, separators=(",", ":")))
    if size > MAX_METADATA_BYTES:
        problems.add(
            path,
            f"is {size} bytes as JSON; at most {MAX_METADATA_BYTES} allowed (context included)",
        )
