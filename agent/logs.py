"""Structured logs: one JSON object a line on stdout, plus CloudWatch embedded metrics.

The line format is the task contract's (``task_contract.logformat``), the Lambdas' too.
Callers log events with fields (ids, sizes, codes, timings), never whole payloads, URLs with
query strings, or credentials: :func:`safe_url` strips what a URL may carry.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from task_contract.logformat import log_line

_LOGGER = logging.getLogger("agent")
_write_lock = threading.Lock()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "fields", None) or {})
        if record.exc_info and record.exc_info[0] is not None:
            fields["exception"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return log_line(record.levelname, record.getMessage(), fields, record.created)


def setup(level: str = "INFO") -> None:
    """Send the agent's log records to stdout as JSON lines; quiet the libraries."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    _LOGGER.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields as one JSON line."""
    _LOGGER.log(level, name, extra={"fields": fields})


def warning(name: str, **fields: Any) -> None:
    event(name, logging.WARNING, **fields)


def error(name: str, **fields: Any) -> None:
    event(name, logging.ERROR, **fields)


def safe_url(url: str) -> str:
    """A URL without user info, query or fragment (they may carry signatures or tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"[:300]


def emit_metrics(
    namespace: str, dimensions: dict[str, str], metrics: dict[str, float],
    units: dict[str, str] | None = None,
) -> None:
    """Print one CloudWatch embedded-metric-format line (EMF) on stdout.

    Metrics are in seconds unless ``units`` names another unit for them.
    """
    units = units or {}
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [sorted(dimensions)],
                    "Metrics": [
                        {"Name": name, "Unit": units.get(name, "Seconds")}
                        for name in sorted(metrics)
                    ],
                }
            ],
        },
        **dimensions,
        **{name: round(value, 4) for name, value in metrics.items()},
    }
    line = json.dumps(document, separators=(",", ":"))
    with _write_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
