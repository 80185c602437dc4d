"""The task table (schema and rules in docs/contracts.md): create, read, mark published,
cancel, and the dead-letter consumer's writes (fail a dead-lettered task once, stamp one the
agent failed, mark its result published).

Items are converted with boto3's DynamoDB type (de)serialisers; numbers come back as
``int`` or ``float`` rather than ``Decimal``. Attribute names, status values and value
formats are the task contract's (``task_contract.record``), shared with the agent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from lambda_src import aws
from lambda_src.validation import Submission
from task_contract.record import (
    CANCELLED,
    FAILED,
    QUEUED,
    Fields,
    encode_context,
    expires_at,
    not_final,
    plain,
    timestamp,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_item(record: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in record.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a record of plain JSON values."""
    return {key: plain(_deserializer.deserialize(value)) for key, value in item.items()}


def new_record(
    submission: Submission, sha256: str, output_location: str, now: datetime, ttl_days: int
) -> dict[str, Any]:
    stamp = timestamp(now)
    record: dict[str, Any] = {
        Fields.ID: submission.id,
        Fields.RUNTIME: submission.runtime,
        Fields.TASKTYPE: submission.tasktype,
        Fields.STATUS: QUEUED,
        Fields.ATTEMPTS: 0,
        Fields.CREATED_AT: stamp,
        Fields.UPDATED_AT: stamp,
        Fields.OUTPUT_LOCATION: output_location,
        Fields.PREFIX: submission.prefix,
        Fields.REQUEST_SHA256: sha256,
        Fields.SOURCE: submission.source,
        Fields.PUBLISHED: False,
        Fields.EXPIRES_AT: expires_at(now, ttl_days),
    }
    if submission.has_context:
        record[Fields.CONTEXT] = encode_context(submission.context)
    if submission.webhook is not None:
        record[Fields.WEBHOOK] = submission.webhook
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
            ConditionExpression=(
                f"attribute_not_exists({Fields.ID}) OR {Fields.EXPIRES_AT} < :now"
            ),
            ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise aws.classify("dynamodb", "PutItem", exc) from exc
        old = exc.response.get("Item")
        if old:
            return from_item(old)
        existing = get(table, record[Fields.ID])
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
        Key={Fields.ID: {"S": task_id}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return from_item(item) if item else None


def mark_published(table: str, task_id: str, sha256: str) -> None:
    """Set ``published`` on this submission's record (and only on it)."""
    aws.call(
        "dynamodb",
        "UpdateItem",
        aws.client("dynamodb").update_item,
        TableName=table,
        Key={Fields.ID: {"S": task_id}},
        UpdateExpression=f"SET {Fields.PUBLISHED} = :true",
        ConditionExpression=f"{Fields.REQUEST_SHA256} = :sha",
        ExpressionAttributeValues={":true": {"BOOL": True}, ":sha": {"S": sha256}},
    )


def _condition_failed(exc: aws.DependencyError) -> bool:
    return exc.code == "ConditionalCheckFailedException"


def fail_dead_lettered(table: str, task_id: str, error: dict[str, Any],
                       stamp: str) -> dict[str, Any] | None:
    """Mark a task ``failed`` with ``error`` and stamp ``dead_lettered_at``, only if its
    record exists and its status is not final: the whole record after the write, or ``None``
    when the condition held it back (no record, or final already: a duplicate delivery)."""
    condition, finals = not_final()
    try:
        answer = aws.call(
            "dynamodb", "UpdateItem", aws.client("dynamodb").update_item,
            TableName=table,
            Key={Fields.ID: {"S": task_id}},
            UpdateExpression=("SET #status = :failed, #error = :error, #updated = :now, "
                              "#dead = :now, #published = :false"),
            ConditionExpression=f"attribute_exists(#id) AND ({condition})",
            ExpressionAttributeNames={
                "#id": Fields.ID, "#status": Fields.STATUS, "#error": Fields.ERROR,
                "#updated": Fields.UPDATED_AT, "#dead": Fields.DEAD_LETTERED_AT,
                "#published": Fields.RESULT_PUBLISHED},
            ExpressionAttributeValues={
                ":failed": {"S": FAILED}, ":error": _serializer.serialize(error),
                ":now": {"S": stamp}, ":false": {"BOOL": False},
                **{name: {"S": value} for name, value in finals.items()}},
            ReturnValues="ALL_NEW",
        )
    except aws.DependencyError as exc:
        if _condition_failed(exc):
            return None
        raise
    return from_item(answer.get("Attributes") or {})


def stamp_dead_lettered(table: str, task_id: str, stamp: str) -> None:
    """Stamp ``dead_lettered_at`` on a task the agent failed itself on its last delivery
    (so a redrive may run it again); nothing when it is stamped already or not failed."""
    try:
        aws.call(
            "dynamodb", "UpdateItem", aws.client("dynamodb").update_item,
            TableName=table,
            Key={Fields.ID: {"S": task_id}},
            UpdateExpression="SET #dead = :now",
            ConditionExpression="#status = :failed AND attribute_not_exists(#dead)",
            ExpressionAttributeNames={"#status": Fields.STATUS,
                                      "#dead": Fields.DEAD_LETTERED_AT},
            ExpressionAttributeValues={":failed": {"S": FAILED}, ":now": {"S": stamp}},
        )
    except aws.DependencyError as exc:
        if not _condition_failed(exc):
            raise


def mark_result_published(table: str, task_id: str) -> None:
    """Set ``result_published`` on an existing record."""
    aws.call(
        "dynamodb", "UpdateItem", aws.client("dynamodb").update_item,
        TableName=table,
        Key={Fields.ID: {"S": task_id}},
        UpdateExpression="SET #published = :true",
        ConditionExpression="attribute_exists(#id)",
        ExpressionAttributeNames={"#id": Fields.ID, "#published": Fields.RESULT_PUBLISHED},
        ExpressionAttributeValues={":true": {"BOOL": True}},
    )


def cancel(table: str, task_id: str, now: datetime) -> tuple[dict[str, Any] | None, bool]:
    """Set a live, not final task ``cancelled``: ``(record, True)`` with the record as written;
    else ``(record, False)`` with the record as it is (``None``: no such task)."""
    condition, finals = not_final()
    values = {":cancelled": CANCELLED, ":now": timestamp(now),
              ":epoch": int(now.timestamp()), **finals}
    try:
        answer = aws.client("dynamodb").update_item(
            TableName=table,
            Key={Fields.ID: {"S": task_id}},
            UpdateExpression="SET #status = :cancelled, #updated = :now",
            ConditionExpression=(f"attribute_exists(#id) AND ({condition}) AND "
                                 "(attribute_not_exists(#expires) OR #expires >= :epoch)"),
            ExpressionAttributeNames={"#id": Fields.ID, "#status": Fields.STATUS,
                                      "#updated": Fields.UPDATED_AT,
                                      "#expires": Fields.EXPIRES_AT},
            ExpressionAttributeValues={k: _serializer.serialize(v) for k, v in values.items()},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise aws.classify("dynamodb", "UpdateItem", exc) from exc
        old = exc.response.get("Item")
        return (from_item(old) if old else None), False
    except BotoCoreError as exc:
        raise aws.classify("dynamodb", "UpdateItem", exc) from exc
    return from_item(answer.get("Attributes") or {}), True
