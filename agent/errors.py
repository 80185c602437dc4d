"""Failure classes of a task.

A :class:`PermanentError` means retrying cannot help (bad payload, validation error, refused
input, unknown model): the task fails once and its message is deleted. A
:class:`TransientError` means a later attempt may succeed (timeouts, connection errors, 5xx,
throttling): the message stays on the queue, SQS delivers it again and the dead-letter queue
takes it after ``maxReceiveCount`` attempts.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_CHARS = 600


def clip(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Shorten text from a remote party so a log line or error stays small."""
    value = str(text)
    return value if len(value) <= limit else value[: limit - 3] + "..."


class TaskError(Exception):
    """A failure of one task, with a stable ``code`` and JSON-safe ``details``."""

    permanent = False

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = clip(message)
        self.details = details if details is not None else []

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class PermanentError(TaskError):
    """Retrying cannot help: fail the task once."""

    permanent = True


class TransientError(TaskError):
    """A later attempt may succeed: leave the message for SQS to deliver again."""

    permanent = False
