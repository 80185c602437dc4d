"""Local mode's event source poller against moto: it finds the deployed mappings and does
what Lambda's SQS poller does (event shape, delete on success, leave on failure)."""

from __future__ import annotations

import io
import threading
import time
import uuid
import zipfile
from typing import Any

import boto3
import pytest

from sdaas.local.emulator import Emulator
from sdaas.local.event_sources import EventSource, Poller, discover, sqs_event

pytestmark = [pytest.mark.emulator]

REGION = "us-west-2"


def _clients(emulator: Emulator) -> tuple[Any, Any]:
    return (boto3.client("sqs", endpoint_url=emulator.endpoint, region_name=REGION),
            boto3.client("lambda", endpoint_url=emulator.endpoint, region_name=REGION))


def _queue(sqs: Any, visibility: int = 30) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"mapped-{uuid.uuid4().hex[:8]}",
                           Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def _function(emulator: Emulator, lam: Any, **settings: Any) -> str:
    iam = boto3.client("iam", endpoint_url=emulator.endpoint, region_name=REGION)
    role = iam.create_role(RoleName=f"fn-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("lambda_src/__init__.py", "")
    return str(lam.create_function(
        FunctionName=f"consumer-{uuid.uuid4().hex[:8]}", Runtime="python3.12",
        Role=role["Role"]["Arn"], Code={"ZipFile": package.getvalue()}, **settings)[
        "FunctionArn"])


def test_discover_reads_each_enabled_mapping_and_its_function(emulator: Emulator) -> None:
    sqs, lam = _clients(emulator)
    url, arn = _queue(sqs)
    _, other_arn = _queue(sqs)
    function = _function(emulator, lam, Handler="lambda_src.dead_letters.handler", Timeout=15,
                         Environment={"Variables": {"TASK_TABLE": "t", "LOG_LEVEL": "INFO"}})
    enabled = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function,
                                              BatchSize=1)
    lam.create_event_source_mapping(EventSourceArn=other_arn, FunctionName=function,
                                    Enabled=False)
    found = [m for m in discover(lam, sqs) if m.queue_arn in (arn, other_arn)]
    assert found == [EventSource(
        uuid=enabled["UUID"], queue_arn=arn, queue_url=url, batch_size=1,
        function_name=function.rsplit(":", 1)[1], handler="lambda_src.dead_letters.handler",
        timeout_seconds=15.0, environment={})]
    assert found[0].environment == {"TASK_TABLE": "t", "LOG_LEVEL": "INFO"}


def _source(url: str, arn: str, timeout: float = 5.0) -> EventSource:
    return EventSource(uuid="u-1", queue_arn=arn, queue_url=url, batch_size=10,
                       function_name="consumer", handler="lambda_src.dead_letters.handler",
                       timeout_seconds=timeout, environment={})


def _started(sqs: Any, sources: list[EventSource]) -> Poller:
    return Poller(sqs, sources, REGION, wait_seconds=0)


def test_a_handled_batch_is_deleted_with_the_event_lambda_sends(emulator: Emulator) -> None:
    sqs, _ = _clients(emulator)
    url, arn = _queue(sqs, visibility=1)
    sqs.send_message(QueueUrl=url, MessageBody="dead letter", MessageAttributes={
        "s": {"DataType": "String", "StringValue": "v"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}})
    events: list[tuple[dict[str, Any], Any]] = []
    poller = _started(sqs, [_source(url, arn)])
    assert poller.poll_once(poller.mappings[0], lambda e, c: events.append((e, c))) == "deleted"
    [(event, context)] = events
    [record] = event["Records"]
    assert record["body"] == "dead letter"
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs", arn, REGION)
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record["attributes"]) == {"ApproximateReceiveCount", "SentTimestamp",
                                         "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert record["messageAttributes"]["s"]["stringValue"] == "v"
    assert record["messageAttributes"]["b"] == {
        "stringValue": None, "binaryValue": "AP8=", "stringListValues": [],
        "binaryListValues": [], "dataType": "Binary"}
    assert context.function_name == "consumer"
    assert 0 < context.get_remaining_time_in_millis() <= 5000
    time.sleep(1.5)  # past the visibility timeout: a message left would be back
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None


def test_a_failed_or_late_invocation_leaves_the_batch(emulator: Emulator) -> None:
    sqs, _ = _clients(emulator)
    url, arn = _queue(sqs, visibility=1)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    poller = _started(sqs, [_source(url, arn, timeout=0.2)])

    def fails(_event: Any, _context: Any) -> None:
        raise RuntimeError("function error")

    assert poller.poll_once(poller.mappings[0], fails) == "failed"
    release = threading.Event()
    time.sleep(1.2)
    assert poller.poll_once(poller.mappings[0], lambda e, c: release.wait(5)) == "timed_out"
    release.set()
    time.sleep(1.2)
    [message] = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])[
        "Messages"]
    assert message["Body"] == "poison"
    assert message["Attributes"]["ApproximateReceiveCount"] == "3"


def test_an_empty_queue_invokes_nothing(emulator: Emulator) -> None:
    sqs, _ = _clients(emulator)
    url, arn = _queue(sqs)
    poller = _started(sqs, [_source(url, arn)])
    assert poller.poll_once(poller.mappings[0], lambda e, c: pytest.fail("invoked")) is None


def test_the_event_of_several_messages_keeps_their_order() -> None:
    messages = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": str(i),
                 "Attributes": {"ApproximateReceiveCount": "2"}, "MD5OfBody": "x"}
                for i in range(3)]
    event = sqs_event(messages, "arn:aws:sqs:us-west-2:1:q", REGION)
    assert [r["messageId"] for r in event["Records"]] == ["m0", "m1", "m2"]
    assert event["Records"][0]["attributes"] == {"ApproximateReceiveCount": "2"}
    assert event["Records"][0]["messageAttributes"] == {}
