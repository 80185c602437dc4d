"""The dead-letter consumer against an emulated account (moto in process): a dead-lettered
task fails once, its result is published once whatever the deliveries, and its message is
kept in the runtime's dead-letter queue."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambda_src import config, dead_letters
from lambda_src.aws import DependencyError
from task_contract.record import timestamp

from .support import BUCKET, Account, t2i

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@dataclass
class Consumer:
    """The consumer's queues and result topic in the account, and a tap on the topic."""

    account: Account
    intake_arn: str
    dlq_url: str
    results_url: str
    cfg: config.DeadLetterConfig

    def record(self, body: str, *, receive_count: int = 4, message_id: str = "m-1",
               attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """An SQS event record as Lambda's event source mapping delivers it."""
        return {
            "messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body,
            "attributes": {"ApproximateReceiveCount": str(receive_count),
                           "SentTimestamp": "1767225600000", "SenderId": "AIDAEXAMPLE",
                           "ApproximateFirstReceiveTimestamp": "1767225601000"},
            "messageAttributes": attributes or {}, "md5OfBody": "-",
            "eventSource": "aws:sqs", "eventSourceARN": self.intake_arn,
            "awsRegion": "us-west-2",
        }

    def handle(self, *records: dict[str, Any], now: datetime = NOW,
               sleep: Any = None) -> list[str]:
        slept: list[float] = []
        answer = dead_letters.handle({"Records": list(records)}, self.cfg, clock=lambda: now,
                                     sleep=sleep or slept.append)
        assert not slept, f"waited {slept} without a reason"
        return answer["outcomes"]

    def results(self) -> list[dict[str, Any]]:
        return [{"body": json.loads(json.loads(m["Body"])["Message"]),
                 "attributes": {k: v["Value"] for k, v in
                                json.loads(m["Body"]).get("MessageAttributes", {}).items()}}
                for m in _drain(self.account, self.results_url)]

    def kept(self) -> list[dict[str, Any]]:
        return _drain(self.account, self.dlq_url)


def _drain(account: Account, url: str) -> list[dict[str, Any]]:
    found = []
    while True:
        batch = account.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                            MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(message)
            account.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def consumer(account: Account) -> Consumer:
    sqs = account.sqs
    intake = sqs.create_queue(QueueName="sdaas-sdruntime-dlq-intake")["QueueUrl"]
    intake_arn = sqs.get_queue_attributes(QueueUrl=intake, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    dlq = sqs.create_queue(QueueName="sdaas-sdruntime-dlq")["QueueUrl"]
    topic = account.sns.create_topic(Name="sdaas-results")["TopicArn"]
    results = sqs.create_queue(QueueName="results-tap")["QueueUrl"]
    results_arn = sqs.get_queue_attributes(QueueUrl=results, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    account.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=results_arn)
    cfg = config.dead_letter_config({
        "TASK_TABLE": "sdaas-tasks", "OUTPUT_BUCKET": BUCKET, "RESULT_TOPIC_ARN": topic,
        "DEAD_LETTER_QUEUES": json.dumps([{"runtime": "sdruntime", "source_arn": intake_arn,
                                           "queue_url": dlq}]),
    })
    return Consumer(account, intake_arn, dlq, results, cfg)


def _submitted(account: Account, task_id: str, status: str = "running") -> str:
    """Submit a task through ingest; return its message body as the task queue held it
    (SNS envelope included); set its status as an agent would have."""
    body = t2i(task_id, context={"order": 7})
    assert account.post(body).status == 202
    raw = account.sqs.receive_message(QueueUrl=account.queues["sdruntime"],
                                      MaxNumberOfMessages=1)["Messages"][0]
    account.ddb.update_item(TableName="sdaas-tasks", Key={"id": {"S": task_id}},
                            UpdateExpression="SET #s = :s, attempts = :a",
                            ExpressionAttributeNames={"#s": "status"},
                            ExpressionAttributeValues={":s": {"S": status}, ":a": {"N": "3"}})
    return str(raw["Body"])


def test_a_running_task_fails_once_with_its_receive_count(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "poison-1")
    attributes = {"trace": {"stringValue": "t-1", "dataType": "String"},
                  "blob": {"binaryValue": base64.b64encode(b"\x00\x01").decode(),
                           "dataType": "Binary"}}
    assert consumer.handle(consumer.record(body, attributes=attributes)) == ["failed"]

    record = consumer.account.record("poison-1")
    assert record["status"] == "failed"
    assert record["error"]["code"] == "dead_lettered"
    assert record["error"]["details"] == [{"receive_count": 4}]
    assert "4 receives" in record["error"]["message"]
    assert record["dead_lettered_at"] == record["updated_at"] == timestamp(NOW)
    assert record["result_published"] is True
    assert record["attempts"] == 3  # what the agents recorded is kept

    # The status API shows the failure.
    view = consumer.account.get("poison-1").body
    assert view["status"] == "failed"
    assert view["error"]["code"] == "dead_lettered"
    assert view["error"]["details"] == [{"receive_count": 4}]

    # One result, the agent's shape, with the task's context.
    [result] = consumer.results()
    assert result["attributes"] == {"runtime": "sdruntime", "status": "failed"}
    assert result["body"] == {
        "runtime": "sdruntime", "id": "poison-1", "result": False, "status": "failed",
        "image_url": [], "outputs": [],
        "output_url": f"s3://{BUCKET}/output/poison-1/result.json",
        "context": {"order": 7}, "error": record["error"], "timings": {}}

    # The message is kept, body and attributes as they were.
    [kept] = consumer.kept()
    assert kept["Body"] == body
    assert kept["MessageAttributes"]["trace"] == {"StringValue": "t-1", "DataType": "String"}
    assert kept["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"


def test_a_queued_task_fails_too(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "never-started", status="queued")
    assert consumer.handle(consumer.record(body, receive_count=3)) == ["failed"]
    assert consumer.account.record("never-started")["error"]["details"] == [
        {"receive_count": 3}]
    assert len(consumer.results()) == 1


def test_a_duplicate_delivery_publishes_nothing_more(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "dup-1")
    assert consumer.handle(consumer.record(body)) == ["failed"]
    first = consumer.account.record("dup-1")
    later = NOW + timedelta(minutes=5)
    assert consumer.handle(consumer.record(body, receive_count=5), now=later) == [
        "already_reported"]
    assert consumer.account.record("dup-1") == first  # the first write stands
    assert len(consumer.results()) == 1
    assert [m["Body"] for m in consumer.kept()] == [body, body]  # each delivery is kept


def test_a_publish_that_failed_is_done_by_the_next_delivery(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "crash-1")
    consumer.account.faults.fail("sns", "Publish", times=1)
    with pytest.raises(DependencyError):
        consumer.handle(consumer.record(body))
    record = consumer.account.record("crash-1")
    assert (record["status"], record["result_published"]) == ("failed", False)
    assert consumer.kept() == []  # not handled yet: the message stays in the intake

    later = NOW + timedelta(seconds=90)  # the intake's visibility timeout
    assert consumer.handle(consumer.record(body, receive_count=5), now=later) == [
        "republished"]
    [result] = consumer.results()
    assert result["body"]["error"]["details"] == [{"receive_count": 4}]  # the first write's
    assert consumer.account.record("crash-1")["result_published"] is True
    assert len(consumer.kept()) == 1


def test_a_concurrent_duplicate_waits_for_the_winner(consumer: Consumer) -> None:
    """The winner of the write publishes; a delivery that finds its fresh, unpublished write
    waits SETTLE_SECONDS, sees the winner's result_published, and publishes nothing."""
    body = _submitted(consumer.account, "race-1")
    consumer.account.faults.fail("sns", "Publish", times=1)
    with pytest.raises(DependencyError):  # the winner, stopped between write and publish
        consumer.handle(consumer.record(body))
    consumer.account.faults.clear()
    slept: list[float] = []

    def winner_publishes_meanwhile(seconds: float) -> None:
        slept.append(seconds)
        consumer.account.ddb.update_item(
            TableName="sdaas-tasks", Key={"id": {"S": "race-1"}},
            UpdateExpression="SET result_published = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}})

    soon = NOW + timedelta(seconds=1)
    assert consumer.handle(consumer.record(body), now=soon,
                           sleep=winner_publishes_meanwhile) == ["already_reported"]
    assert slept == [pytest.approx(dead_letters.SETTLE_SECONDS - 1)]
    assert consumer.results() == []


def test_a_task_the_agent_failed_is_only_stamped(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "exhausted-1")
    error = {"code": "runtime_error", "message": "500 (gave up after 3 deliveries)",
             "details": []}
    consumer.account.ddb.update_item(
        TableName="sdaas-tasks", Key={"id": {"S": "exhausted-1"}},
        UpdateExpression="SET #s = :f, #e = :e, result_published = :t",
        ExpressionAttributeNames={"#s": "status", "#e": "error"},
        ExpressionAttributeValues={":f": {"S": "failed"}, ":t": {"BOOL": True},
                                   ":e": {"M": {"code": {"S": "runtime_error"},
                                                "message": {"S": error["message"]},
                                                "details": {"L": []}}}})
    assert consumer.handle(consumer.record(body)) == ["already_reported"]
    record = consumer.account.record("exhausted-1")
    assert record["error"] == error  # the agent's report stands
    assert record["dead_lettered_at"] == timestamp(NOW)  # and a redrive may run it again
    assert consumer.results() == []
    assert len(consumer.kept()) == 1


def test_a_completed_task_is_left_alone(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "done-1", status="completed")
    before = consumer.account.record("done-1")
    assert consumer.handle(consumer.record(body)) == ["already_completed"]
    assert consumer.account.record("done-1") == before
    assert consumer.results() == []
    assert len(consumer.kept()) == 1


def test_a_cancelled_task_stays_cancelled_and_its_result_goes_out_once(
        consumer: Consumer) -> None:
    """Cancelled while its agent kept dying: no agent will report it, so the consumer
    publishes the cancelled result once and writes no failure over it."""
    body = _submitted(consumer.account, "cancel-1", status="cancelled")
    cancelled_at = timestamp(NOW - timedelta(minutes=5))
    consumer.account.ddb.update_item(
        TableName="sdaas-tasks", Key={"id": {"S": "cancel-1"}},
        UpdateExpression="SET updated_at = :t", ExpressionAttributeValues={
            ":t": {"S": cancelled_at}})
    assert consumer.handle(consumer.record(body)) == ["republished"]
    assert consumer.handle(consumer.record(body, message_id="m-2")) == ["already_reported"]
    record = consumer.account.record("cancel-1")
    assert (record["status"], record.get("error")) == ("cancelled", None)
    assert "dead_lettered_at" not in record  # a redrive does not run a cancelled task
    [result] = consumer.results()
    assert (result["body"]["status"], result["body"]["result"]) == ("cancelled", False)
    assert len(consumer.kept()) == 2


@pytest.mark.parametrize(("body", "outcome"), [
    (json.dumps({"metadata": {"id": "published-directly", "runtime": "sdruntime",
                              "tasktype": "text-to-image"}, "content": {}}), "no_record"),
    ("not json at all", "no_task_id"),
    (json.dumps({"Type": "Notification", "Message": json.dumps(
        {"alwayson_scripts": {"task": "text-to-image", "id_task": "bad id!"}})}), "no_task_id"),
])
def test_messages_without_a_record_are_kept(consumer: Consumer, body: str,
                                            outcome: str) -> None:
    assert consumer.handle(consumer.record(body)) == [outcome]
    assert consumer.results() == []
    assert [m["Body"] for m in consumer.kept()] == [body]


def test_a_record_from_an_unknown_queue_is_refused(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "elsewhere-1")
    record = {**consumer.record(body), "eventSourceARN": "arn:aws:sqs:us-west-2:1:other"}
    with pytest.raises(dead_letters.UnknownSource, match="other"):
        consumer.handle(record)
    assert consumer.account.record("elsewhere-1")["status"] == "running"
    assert consumer.kept() == []


def test_a_failed_copy_leaves_the_message_for_another_try(consumer: Consumer) -> None:
    body = _submitted(consumer.account, "copy-1")
    consumer.account.faults.fail("sqs", "SendMessage", times=1)
    with pytest.raises(DependencyError):
        consumer.handle(consumer.record(body))
    assert len(consumer.results()) == 1  # failed and reported once ...
    later = NOW + timedelta(seconds=90)
    assert consumer.handle(consumer.record(body), now=later) == ["already_reported"]
    assert len(consumer.results()) == 0  # ... and not again
    assert len(consumer.kept()) == 1


@pytest.mark.parametrize(("raw", "fragment"), [
    ("", "DEAD_LETTER_QUEUES is not set"),
    ("{", "DEAD_LETTER_QUEUES is not valid JSON"),
    ("[]", "non-empty JSON array"),
    ("null", "non-empty JSON array"),
    ('[{"runtime": "a", "source_arn": "x"}]', "DEAD_LETTER_QUEUES[0] needs non-empty strings "
                                               "queue_url"),
    ('[{"runtime": "a", "source_arn": "x", "queue_url": "u"},'
     ' {"runtime": "b", "source_arn": "x", "queue_url": "v"}]', "listed twice"),
])
def test_configuration_problems_are_each_named(raw: str, fragment: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.dead_letter_config({"TASK_TABLE": "t", "OUTPUT_BUCKET": "b",
                                   "DEAD_LETTER_QUEUES": raw})
    assert "RESULT_TOPIC_ARN is not set" in caught.value.problems
    assert any(fragment in problem for problem in caught.value.problems), caught.value.problems
