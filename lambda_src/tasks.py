"""The task table (schema and rules in docs/contracts.md): create, read, mark published.

Items are converted with boto3's DynamoDB type (de)serialisers; numbers come back as
``int`` or ``float`` rather than ``Decimal``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from lambda_src import aws
from lambda_src.validation import Submission

STATUS_QUEUED = "queued"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def _to_item(record: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in record.items()}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: plain(_deserializer.deserialize(value)) for key, value in item.items()}


def new_record(
    submission: Submission, sha256: str, output_location: str, now: datetime, ttl_days: int
) -> dict[str, Any]:
    stamp = iso_timestamp(now)
    record: dict[str, Any] = {
        "id": submission.id,
        "runtime": submission.runtime,
        "tasktype": submission.tasktype,
        "status": STATUS_QUEUED,
        "attempts": 0,
        "created_at": stamp,
        "updated_at": stamp,
        "output_location": output_location,
        "prefix": submission.prefix,
        "request_sha256": sha256,
        "source": submission.source,
        "published": False,
        "expires_at": int(now.timestamp()) + ttl_days * 86_400,
    }
    if submission.has_context:
        record["context"] = json.dumps(submission.context, separators=(",", ":"))
    return record


def create(table: str, record: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Create the record unless a live one has the id: ``None`` if created, else the existing.

    An item past its ``expires_at`` counts as gone (DynamoDB deletes expired items lazily),
    so an expired id can be used again.
    """
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=table,
            Item=_to_item(record),
            ConditionExpression="attribute_not_exists(id) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise aws.classify("dynamodb", "PutItem", exc) from exc
        old = exc.response.get("Item")
        if old:
            return _from_item(old)
        existing = get(table, record["id"])
        # Deleted between the two calls: report as a (transient) conflict to retry.
        if existing is None:
            raise aws.DependencyError(
                "dynamodb", "PutItem", "ConcurrentDelete", transient=True
            ) from exc
        return existing
    except BotoCoreError as exc:
        raise aws.classify("dynamodb", "PutItem", exc) from exc
    return None


def get(table: str, task_id: str) -> dict[str, Any] | None:
    response = aws.call(
        "dynamodb",
        "GetItem",
        aws.client("dynamodb").get_item,
        TableName=table,
        Key={"id": {"S": task_id}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return _from_item(item) if item else None


def mark_published(table: str, task_id: str, sha256: str) -> None:
    """Set ``published`` on this submission's record (and only on it)."""
    aws.call(
        "dynamodb",
        "UpdateItem",
        aws.client("dynamodb").update_item,
        TableName=table,
        Key={"id": {"S": task_id}},
        UpdateExpression="SET published = :true",
        ConditionExpression="request_sha256 = :sha",
        ExpressionAttributeValues={":true": {"BOOL": True}, ":sha": {"S": sha256}},
    )


def is_expired(record: dict[str, Any], now: datetime) -> bool:
    expires_at = record.get("expires_at")
    return isinstance(expires_at, int | float) and expires_at < now.timestamp()
