"""The SNS envelope runtime queues deliver tasks in (raw message delivery off,
ARCHITECTURE §4): ``{"Type": "Notification", "Message": "<the task as JSON text>", ...}``.
A body published straight to a queue has no envelope."""

from __future__ import annotations

from typing import Any


def enveloped_message(document: Any) -> str | None:
    """The text an SNS notification carries; ``None`` when ``document`` is not one."""
    if (isinstance(document, dict) and document.get("Type") == "Notification"
            and isinstance(document.get("Message"), str)):
        return str(document["Message"])
    return None
