"""The one log line format of both programs: one JSON object a line.

``{"time": "<ISO 8601 UTC, ms, Z>", "level": "INFO", "event": "<snake_case name>", ...}``
followed by the event's fields; fields that are ``None`` are left out. Callers pass only
facts that are safe to keep (ids, names, outcomes, sizes, codes, timings), never request
bodies, prompts, headers or credentials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from task_contract.record import timestamp

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def log_line(level: str, event: str, fields: Mapping[str, Any], created: float) -> str:
    """The line for ``event`` logged at epoch seconds ``created`` (no newline)."""
    record: dict[str, Any] = {
        "time": timestamp(datetime.fromtimestamp(created, UTC)),
        "level": level,
        "event": event,
    }
    record.update((key, value) for key, value in fields.items()
                  if value is not None and key not in record)
    return json.dumps(record, default=str, separators=(",", ":"))
