"""Dead-letter consumer: a task whose message reached its runtime's dead-letter queue ends
``failed``, its failed result is published once, and the message is kept for inspection.

Handler string: ``lambda_src.dead_letters.handler``. Events come from an SQS event source
mapping on each runtime's dead-letter *intake*, the queue the task queue's redrive policy
names (docs/contracts.md, "Dead letters"). Per message:

1. the task id is read from the body (``task_contract.deadletter.task_id_of``);
2. a conditional write marks the task ``failed`` with code ``dead_lettered`` and the message's
   ``ApproximateReceiveCount``, only if its record exists and is not final: of duplicate
   deliveries of one message, exactly one wins that write, and only the winner publishes
   the failed result (built by ``task_contract.result``, the agent's shape), then sets
   ``result_published``. A task the agent itself failed on its last delivery is only stamped
   ``dead_lettered_at`` (its result went out already), so a redrive may run it again. A record
   found failed by the consumer but not yet ``result_published`` (an earlier invocation died
   between the write and the publish) is published once it is ``SETTLE_SECONDS`` old;
3. the message (body and attributes unchanged) is sent to the runtime's dead-letter queue,
   where ``sdctl dlq list`` shows it and ``sdctl dlq redrive`` moves it back.

Only then does the handler return, and the event source mapping deletes the message from the
intake. Any failure raises (a function error, which the consumer's alarm counts): the message
stays in the intake and comes back after its visibility timeout; after the intake's own
``maxReceiveCount`` SQS moves it to the dead-letter queue unhandled, so nothing loops for ever
and nothing is lost. The mapping hands over one message per invocation.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lambda_src import aws, config, tasks
from lambda_src.config import DeadLetterConfig, DeadLetterSource
from lambda_src.jsonlog import log
from task_contract.deadletter import dead_letter_error, task_id_of
from task_contract.record import (
    COMPLETED,
    Fields,
    is_expired,
    parse_timestamp,
    timestamp,
)
from task_contract.result import message_attributes, message_from_record, message_text

# A failed dead-lettered record this much younger than now may still be being published by
# the invocation that wrote it: wait until it is this old before publishing it again.
SETTLE_SECONDS = 5.0

Clock = Callable[[], datetime]


class UnknownSource(Exception):
    """A record from a queue that DEAD_LETTER_QUEUES does not name."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, config.dead_letter_config(), clock=lambda: datetime.now(UTC),
                  sleep=time.sleep)


def handle(event: Any, cfg: DeadLetterConfig, *, clock: Clock,
           sleep: Callable[[float], None]) -> dict[str, Any]:
    """Settle and keep every message of an SQS event; raise on the first failure."""
    records = event.get("Records") if isinstance(event, dict) else None
    outcomes = []
    for record in records or []:
        started = time.monotonic()
        source = cfg.sources.get(record.get("eventSourceARN"))
        if source is None:
            log("ERROR", "dead_letter_failed", message_id=record.get("messageId"),
                source=record.get("eventSourceARN"), error="unknown_source")
            raise UnknownSource(f"{record.get('eventSourceARN')} is not in DEAD_LETTER_QUEUES")
        fields: dict[str, Any] = {"message_id": record.get("messageId"),
                                  "runtime": source.runtime,
                                  "receive_count": receive_count(record)}
        try:
            task_id = task_id_of(record.get("body"))
            fields["task_id"] = task_id
            fields["outcome"] = (settle(cfg, task_id, fields["receive_count"], clock, sleep)
                                 if task_id is not None else "no_task_id")
            keep(source, record)
        except aws.DependencyError as exc:
            fields.update(dependency=f"{exc.service}:{exc.operation}",
                          dependency_error=exc.code,
                          duration_ms=round((time.monotonic() - started) * 1000, 1))
            log("ERROR", "dead_letter_failed", **fields)
            raise
        fields["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        log("WARNING" if fields["outcome"] == "failed" else "INFO", "dead_letter", **fields)
        outcomes.append(fields["outcome"])
    return {"outcomes": outcomes}


def receive_count(record: dict[str, Any]) -> int:
    """The message's ``ApproximateReceiveCount`` as the event carries it (0 if absent)."""
    raw = (record.get("attributes") or {}).get("ApproximateReceiveCount")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def settle(cfg: DeadLetterConfig, task_id: str, count: int, clock: Clock,
           sleep: Callable[[float], None]) -> str:
    """Fail the task once and publish its result once; what was found, as an outcome name."""
    now = clock()
    failed = tasks.fail_dead_lettered(cfg.table, task_id, dead_letter_error(count),
                                      timestamp(now))
    if failed is not None:
        publish(cfg, failed)
        return "failed"
    record = tasks.get(cfg.table, task_id)
    if record is None or is_expired(record, now):
        return "no_record"
    if record.get(Fields.STATUS) == COMPLETED:
        return "already_completed"
    if Fields.DEAD_LETTERED_AT not in record:
        # The agent failed it on its last delivery and reported it: keep it redrivable.
        tasks.stamp_dead_lettered(cfg.table, task_id, timestamp(now))
    if record.get(Fields.RESULT_PUBLISHED):
        return "already_reported"
    written = parse_timestamp(record.get(Fields.UPDATED_AT))
    age = (now - written).total_seconds() if written is not None else SETTLE_SECONDS
    if age < SETTLE_SECONDS:
        sleep(SETTLE_SECONDS - age)
        record = tasks.get(cfg.table, task_id) or record
        if record.get(Fields.RESULT_PUBLISHED):
            return "already_reported"
    publish(cfg, record)
    return "republished"


def publish(cfg: DeadLetterConfig, record: dict[str, Any]) -> None:
    """The record's result on the result topic, then ``result_published``."""
    message = message_from_record(record, cfg.bucket)
    aws.call("sns", "Publish", aws.client("sns").publish, TopicArn=cfg.topic_arn,
             Message=message_text(message), MessageAttributes=message_attributes(message))
    tasks.mark_result_published(cfg.table, str(record[Fields.ID]))


def keep(source: DeadLetterSource, record: dict[str, Any]) -> None:
    """The message, body and attributes unchanged, into the runtime's dead-letter queue."""
    kwargs: dict[str, Any] = {"QueueUrl": source.queue_url, "MessageBody": record["body"]}
    attributes = sqs_attributes(record.get("messageAttributes") or {})
    if attributes:
        kwargs["MessageAttributes"] = attributes
    aws.call("sqs", "SendMessage", aws.client("sqs").send_message, **kwargs)


def sqs_attributes(event_attributes: dict[str, Any]) -> dict[str, Any]:
    """An event record's ``messageAttributes`` (Lambda's spelling) as SendMessage takes them."""
    converted: dict[str, Any] = {}
    for name, value in event_attributes.items():
        data_type = value.get("dataType") or "String"
        if value.get("stringValue") is not None:
            converted[name] = {"DataType": data_type, "StringValue": value["stringValue"]}
        elif value.get("binaryValue") is not None:
            converted[name] = {"DataType": data_type,
                               "BinaryValue": base64.b64decode(value["binaryValue"])}
    return converted
