"""The task table (DynamoDB), written as ``docs/contracts.md`` fixes it.

``running`` increments ``attempts`` and is written only while the status is not final, or
when the task failed because its message reached the dead-letter queue and was redriven
(``task_contract.deadletter``); the final status (``completed``/``failed``) is written once,
only while the status is not final; then ``result_published``. A lost race (another agent
finished the task first) is reported to the caller, never overwritten. A task the client
cancelled (``cancelled``, written by the cancel API) is claimed once by the agent that
publishes its result (``result_published`` set to false, as a final status written by an
agent has it), then ``result_published``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from agent.messages import Task
from task_contract.deadletter import is_redrivable
from task_contract.record import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SECONDS_PER_DAY,
    Fields,
    encode_context,
    not_final,
    plain,
    storable,
    timestamp,
)

_NOT_FINAL, _FINAL_VALUES = not_final()
# Not final, or failed by the dead-letter consumer and redriven since.
_STARTABLE = f"{_NOT_FINAL} OR (#status = :failed AND attribute_exists(#dead))"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def now_iso() -> str:
    return timestamp(datetime.now(UTC))


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: plain(_deserializer.deserialize(value)) for key, value in item.items()}


class Start(NamedTuple):
    """What :meth:`TaskTable.mark_running` found: the attempt number it recorded, or the
    record of a task that is final (then nothing was written); ``redriven`` when the task
    had failed by reaching the dead-letter queue."""

    attempts: int
    final: dict[str, Any] | None = None
    redriven: bool = False


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class TaskTable:
    def __init__(self, client: Any, table: str, ttl_days: int) -> None:
        self._db = client
        self.table = table
        self._ttl_seconds = ttl_days * SECONDS_PER_DAY

    def _update(self, task_id: str, expression: str, values: dict[str, Any],
                condition: str | None = None, names: dict[str, str] | None = None,
                returns: str = "NONE") -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {Fields.ID: {"S": task_id}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {
                k: _serializer.serialize(storable(v)) for k, v in values.items()
            },
            "ReturnValues": returns,
        }
        all_names = {"#status": Fields.STATUS, **(names or {})}
        used = {n: a for n, a in all_names.items() if n in expression or n in (condition or "")}
        if used:
            kwargs["ExpressionAttributeNames"] = used
        if condition:
            kwargs["ConditionExpression"] = condition
        answer = self._db.update_item(**kwargs)
        return _from_item(answer.get("Attributes") or {})

    def get(self, task_id: str) -> dict[str, Any] | None:
        answer = self._db.get_item(TableName=self.table, Key={Fields.ID: {"S": task_id}},
                                   ConsistentRead=True)
        item = answer.get("Item")
        return _from_item(item) if item else None

    def mark_running(self, task: Task, output_location: str) -> Start:
        """Mark the task running (a redriven dead-lettered task too: its dead-letter stamp and
        error go); a final task is left as it is and its record returned."""
        now = now_iso()
        names = {"#attempts": Fields.ATTEMPTS, "#updated": Fields.UPDATED_AT,
                 "#created": Fields.CREATED_AT, "#runtime": Fields.RUNTIME,
                 "#tasktype": Fields.TASKTYPE, "#output": Fields.OUTPUT_LOCATION,
                 "#prefix": Fields.PREFIX, "#context": Fields.CONTEXT,
                 "#expires": Fields.EXPIRES_AT, "#dead": Fields.DEAD_LETTERED_AT,
                 "#error": Fields.ERROR}
        expression = (
            "SET #status = :running, #attempts = if_not_exists(#attempts, :zero) + :one, "
            "#updated = :now, #created = if_not_exists(#created, :now), "
            "#runtime = if_not_exists(#runtime, :runtime), "
            "#tasktype = if_not_exists(#tasktype, :tasktype), "
            "#output = if_not_exists(#output, :output), #prefix = if_not_exists(#prefix, :prefix), "
            "#context = if_not_exists(#context, :context), "
            "#expires = if_not_exists(#expires, :expires) "
            "REMOVE #dead, #error"
        )
        values = {
            ":running": RUNNING, ":zero": 0, ":one": 1, ":now": now,
            ":runtime": task.runtime, ":tasktype": task.tasktype, ":output": output_location,
            ":prefix": task.prefix, ":context": encode_context(task.context),
            ":expires": int(time.time()) + self._ttl_seconds, ":failed": FAILED,
            **_FINAL_VALUES,
        }
        try:
            before = self._update(task.id, expression, values, _STARTABLE, names, "ALL_OLD")
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return Start(0, self.get(task.id) or {})
        attempts = before.get(Fields.ATTEMPTS)
        return Start(int(attempts) + 1 if isinstance(attempts, int) else 1,
                     redriven=is_redrivable(before))

    def mark_final(self, task: Task, status: str, images: list[str], error: dict[str, Any] | None,
                   timings: dict[str, float], output_location: str,
                   outputs: list[dict[str, Any]]) -> bool:
        """Write the final status once; False when the task was already final."""
        names = {"#images": Fields.IMAGES, "#outputs": Fields.OUTPUTS,
                 "#error": Fields.ERROR, "#timings": Fields.TIMINGS,
                 "#updated": Fields.UPDATED_AT, "#published": Fields.RESULT_PUBLISHED,
                 "#output": Fields.OUTPUT_LOCATION, "#created": Fields.CREATED_AT,
                 "#runtime": Fields.RUNTIME, "#tasktype": Fields.TASKTYPE,
                 "#expires": Fields.EXPIRES_AT, "#context": Fields.CONTEXT}
        expression = (
            "SET #status = :status, #images = :images, #outputs = :outputs, #error = :error, "
            "#timings = :timings, "
            "#updated = :now, #published = :false, #output = :output, "
            "#created = if_not_exists(#created, :now), #runtime = if_not_exists(#runtime, :rt), "
            "#tasktype = if_not_exists(#tasktype, :tt), "
            "#expires = if_not_exists(#expires, :expires), "
            "#context = if_not_exists(#context, :context)"
        )
        values = {
            ":status": status, ":images": images, ":outputs": outputs, ":error": error,
            ":timings": timings,
            ":now": now_iso(), ":false": False, ":output": output_location,
            ":rt": task.runtime, ":tt": task.tasktype,
            ":expires": int(time.time()) + self._ttl_seconds,
            ":context": encode_context(task.context),
            **_FINAL_VALUES,
        }
        try:
            self._update(task.id, expression, values, _NOT_FINAL, names)
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def status_of(self, task_id: str) -> str | None:
        """The record's status (one strongly consistent read of that attribute only)."""
        answer = self._db.get_item(TableName=self.table, Key={Fields.ID: {"S": task_id}},
                                   ConsistentRead=True, ProjectionExpression="#status",
                                   ExpressionAttributeNames={"#status": Fields.STATUS})
        status = _from_item(answer.get("Item") or {}).get(Fields.STATUS)
        return status if isinstance(status, str) else None

    def claim_cancelled(self, task_id: str) -> dict[str, Any] | None:
        """Become the agent that publishes a cancelled task's result: the record as it is now
        claimed, or ``None`` when it is not cancelled or another agent claimed it first."""
        try:
            # ``updated_at`` stays the moment of the cancellation: the status view of a
            # cancelled task does not change (a repeated cancel answers the same body).
            return self._update(
                task_id, "SET #published = :false", {":false": False, ":cancelled": CANCELLED},
                "#status = :cancelled AND attribute_not_exists(#published)",
                {"#published": Fields.RESULT_PUBLISHED}, "ALL_NEW")
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return None

    def mark_result_published(self, task_id: str) -> None:
        self._update(task_id, "SET #published = :true", {":true": True},
                     f"attribute_exists({Fields.ID})", {"#published": Fields.RESULT_PUBLISHED})

    def release_running(self, task_id: str) -> None:
        """Set a task this agent gives back (shutdown) from running to queued."""
        try:
            self._update(task_id, "SET #status = :queued, #updated = :now",
                         {":queued": QUEUED, ":now": now_iso(), ":running": RUNNING},
                         "#status = :running", {"#updated": Fields.UPDATED_AT})
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
