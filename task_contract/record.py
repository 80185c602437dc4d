"""The task record (DynamoDB task table): its attribute names, status values and the way
its values are written (docs/contracts.md, "Task table")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

# Status values: queued -> running -> completed | failed; queued or running -> cancelled
# (POST /v1alpha2/tasks/{id}/cancel). A final status is never changed.
QUEUED: Final = "queued"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
FINAL_STATUSES = (COMPLETED, FAILED, CANCELLED)

SECONDS_PER_DAY = 86_400
# Days a record lives (TASK_TTL_DAYS of both programs): the default and the allowed range.
TASK_TTL_DAYS = 30
TASK_TTL_DAYS_RANGE = (1, 3650)


class Fields:
    """Attribute names of a task record."""

    ID: Final = "id"
    RUNTIME: Final = "runtime"
    TASKTYPE: Final = "tasktype"
    STATUS: Final = "status"
    ATTEMPTS: Final = "attempts"
    CREATED_AT: Final = "created_at"
    UPDATED_AT: Final = "updated_at"
    OUTPUT_LOCATION: Final = "output_location"
    PREFIX: Final = "prefix"
    CONTEXT: Final = "context"
    REQUEST_SHA256: Final = "request_sha256"
    SOURCE: Final = "source"
    PUBLISHED: Final = "published"
    IMAGES: Final = "images"
    OUTPUTS: Final = "outputs"
    ERROR: Final = "error"
    TIMINGS: Final = "timings"
    RESULT_PUBLISHED: Final = "result_published"
    DEAD_LETTERED_AT: Final = "dead_lettered_at"
    EXPIRES_AT: Final = "expires_at"
    WEBHOOK: Final = "webhook"  # {"url", "events"} as ingest checked it; absent: none


def not_final(status_name: str = "#status") -> tuple[str, dict[str, str]]:
    """The DynamoDB condition "the record's status is not final" (or it has none): the
    expression, with ``status_name`` for the status attribute, and its values
    (``:final0`` ...). Every write that must never change a final status uses it."""
    values = {f":final{index}": status for index, status in enumerate(FINAL_STATUSES)}
    expression = (f"attribute_not_exists({status_name}) OR "
                  f"NOT ({status_name} IN ({', '.join(values)}))")
    return expression, values


def timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z`` suffix (``created_at``, ``updated_at``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: Any) -> datetime | None:
    """The moment a :func:`timestamp` names; ``None`` for anything else."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def expires_at(now: datetime, ttl_days: int) -> int:
    """``expires_at``: epoch seconds ``ttl_days`` after ``now``."""
    return int(now.timestamp()) + ttl_days * SECONDS_PER_DAY


def encode_context(context: Any) -> str:
    """``context`` as stored: the client's JSON value as compact JSON text."""
    return json.dumps(context, separators=(",", ":"))


def decode_context(stored: Any) -> Any:
    """The client's ``context`` back from the record (text that is not JSON as it is)."""
    if isinstance(stored, str):
        try:
            return json.loads(stored)
        except json.JSONDecodeError:
            return stored
    return stored


def plain(value: Any) -> Any:
    """A deserialised DynamoDB value as plain JSON types (``Decimal`` -> int/float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes | bytearray):
        return None  # binary attributes have no JSON form; the contract defines none
    return value


def storable(value: Any) -> Any:
    """A JSON value as DynamoDB takes it: floats as ``Decimal`` (rounded to 4 places)."""
    if isinstance(value, float):
        return Decimal(str(round(value, 4)))
    if isinstance(value, dict):
        return {str(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def is_expired(record: dict[str, Any], now: datetime) -> bool:
    """Past its ``expires_at``: counts as gone (DynamoDB deletes expired items lazily)."""
    moment = record.get(Fields.EXPIRES_AT)
    return isinstance(moment, int | float) and moment < now.timestamp()
