"""Structured logs: one JSON object a line on stdout (CloudWatch keeps each line as an event).

The line format is the task contract's (``task_contract.logformat``), the agent's too.
Callers pass only facts that are safe to keep: ids, runtime names, outcomes, sizes, error
codes. Request headers, the API key and request bodies are never passed here.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from task_contract.logformat import LEVELS, log_line


def _threshold() -> int:
    return LEVELS.get(os.environ.get("LOG_LEVEL", "INFO").strip().upper(), LEVELS["INFO"])


def log(level: str, event: str, **fields: Any) -> None:
    """Write one log line if ``level`` passes ``LOG_LEVEL``; ``None`` fields are left out."""
    if LEVELS[level] < _threshold():
        return
    # sys.stdout is looked up on every call so a replaced stream (tests, runtimes) is honoured.
    sys.stdout.write(log_line(level, event, fields, time.time()) + "\n")
    sys.stdout.flush()
