"""Failure classes of a task.

A :class:`PermanentError` means retrying cannot help (bad payload, validation error, refused
input, unknown model): the task fails once and its message is deleted. A
:class:`TransientError` means a later attempt may succeed (timeouts, connection errors, 5xx,
throttling): the message stays on the queue, SQS delivers it again and the dead-letter queue
takes it after ``maxReceiveCount`` attempts.
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_CHARS = 600
MAX_DETAILS_CHARS = 4096  # details go into the task record and the result message


def clip(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Shorten text from a remote party so a log line or error stays small."""
    value = str(text)
    return value if len(value) <= limit else value[: limit - 3] + "..."


def bounded(details: Any, limit: int = MAX_DETAILS_CHARS) -> Any:
    """JSON-safe details of at most about ``limit`` characters.

    Runtimes echo parts of the request in their errors (a 422 may quote a whole field); the
    details end up in the task record and the result message, which have size limits.
    """
    try:
        text = json.dumps(details, default=str)
    except (TypeError, ValueError):
        return [clip(repr(details), limit)]
    if len(text) <= limit:
        return json.loads(text)
    original = json.loads(text)
    for chars, items in ((200, 20), (80, 10), (40, 5), (20, 3)):
        shortened = _shorten(original, chars, items)
        text = json.dumps(shortened)
        if len(text) <= limit:
            return shortened
    return [clip(text, limit)]


def _shorten(value: Any, chars: int, items: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return clip(value, chars)
    if depth >= 6 and isinstance(value, (list, dict)):
        return "..."
    if isinstance(value, list):
        return [_shorten(v, chars, items, depth + 1) for v in value[:items]]
    if isinstance(value, dict):
        return {k: _shorten(v, chars, items, depth + 1)
                for k, v in list(value.items())[: items * 2]}
    return value


class TaskError(Exception):
    """A failure of one task, with a stable ``code`` and JSON-safe ``details``."""

    permanent = False

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = clip(message)
        self.details = bounded(details if details is not None else [])

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class PermanentError(TaskError):
    """Retrying cannot help: fail the task once."""

    permanent = True


class TransientError(TaskError):
    """A later attempt may succeed: leave the message for SQS to deliver again."""

    permanent = False
