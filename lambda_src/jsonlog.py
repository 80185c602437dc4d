"""Structured logs: one JSON object a line on stdout (CloudWatch keeps each line as an event).

Callers pass only facts that are safe to keep: ids, runtime names, outcomes, sizes, error
codes. Request headers, the API key and request bodies are never passed here.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def _threshold() -> int:
    return _LEVELS.get(os.environ.get("LOG_LEVEL", "INFO").strip().upper(), _LEVELS["INFO"])


def log(level: str, message: str, **fields: Any) -> None:
    """Write one log line if ``level`` passes ``LOG_LEVEL``; ``None`` fields are left out."""
    if _LEVELS[level] < _threshold():
        return
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "message": message,
    }
    record.update((key, value) for key, value in fields.items() if value is not None)
    # sys.stdout is looked up on every call so a replaced stream (tests, runtimes) is honoured.
    sys.stdout.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()
