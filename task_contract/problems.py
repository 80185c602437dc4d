"""Every problem of a document, each with its path (``task.metadata.id``), collected at once.

Both programs report the same problems the same way: ingest lists them in a 400 response,
the agent in the failed task's error ``details``.
"""

from __future__ import annotations

import json
from typing import Any, Final


class _Missing:
    """The value of a key that is not there (distinct from a JSON ``null``)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


class Problems:
    """Collects ``{"path", "message"}`` items in document order."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def summary(self, limit: int = 10) -> str:
        """``path: message; ...`` for the first ``limit`` problems, for a one-line error."""
        parts = [f"{item['path']}: {item['message']}" if item["path"] else item["message"]
                 for item in self.items[:limit]]
        if len(self.items) > limit:
            parts.append(f"{len(self.items) - limit} more problems")
        return "; ".join(parts)


def join(path: str, key: str | int) -> str:
    """The path of a child: ``task`` + ``metadata`` -> ``task.metadata``; ``a`` + 0 -> ``a[0]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


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
    """A short JSON rendering of a client value for a message (strings only; else the type)."""
    text = json.dumps(value) if isinstance(value, str) else json_type(value)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def child(container: Any, key: str) -> Any:
    """``container[key]``, or :data:`MISSING` when the key (or the object) is not there."""
    return container.get(key, MISSING) if isinstance(container, dict) else MISSING


def required(value: Any, kind: type, name: str, path: str, problems: Problems) -> Any:
    """``value`` if it is a ``kind`` (JSON ``name``); else ``None`` and a problem. ``null``
    counts as absent."""
    if value is MISSING or value is None:
        problems.add(path, "is required")
        return None
    if not isinstance(value, kind):
        problems.add(path, f"must be {name} (got {json_type(value)})")
        return None
    return value


def required_object(value: Any, path: str, problems: Problems) -> dict[str, Any] | None:
    """A required JSON object."""
    found: dict[str, Any] | None = required(value, dict, "an object", path, problems)
    return found


def required_string(value: Any, path: str, problems: Problems) -> str | None:
    """A required non-empty string."""
    found: str | None = required(value, str, "a string", path, problems)
    if found == "":
        problems.add(path, "must not be empty")
        return None
    return found
