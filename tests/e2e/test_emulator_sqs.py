"""The emulator's SQS additions and fixes: message move tasks (which moto lacks), unknown
actions answered as AWS answers them, and event source mappings left to local mode's
poller instead of moto's Docker invocation."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sdaas.local.emulator import Emulator

pytestmark = [pytest.mark.emulator]

REGION = "us-west-2"


def _sqs(emulator: Emulator) -> Any:
    return boto3.client("sqs", endpoint_url=emulator.endpoint, region_name=REGION)


def _queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}",
                           Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def _pair(sqs: Any) -> tuple[str, str, str, str]:
    """A queue and its dead-letter queue: (queue url, arn, dlq url, arn)."""
    dlq_url, dlq_arn = _queue(sqs, "dlq")
    url, arn = _queue(sqs, "tasks", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    return url, arn, dlq_url, dlq_arn


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                               MessageAttributeNames=["All"],
                               MessageSystemAttributeNames=["All"]).get("Messages", [])


def test_a_move_task_moves_the_visible_messages_back(emulator: Emulator) -> None:
    sqs = _sqs(emulator)
    url, _, dlq_url, dlq_arn = _pair(sqs)
    for index in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"body-{index}", MessageAttributes={
            "n": {"DataType": "Number", "StringValue": str(index)}})
    in_flight = sqs.receive_message(QueueUrl=dlq_url, VisibilityTimeout=60)["Messages"][0]
    sqs.receive_message(QueueUrl=dlq_url, VisibilityTimeout=0)  # counts a receive, no more

    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle
    [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert task["Status"] == "COMPLETED"
    assert (task["ApproximateNumberOfMessagesToMove"],
            task["ApproximateNumberOfMessagesMoved"]) == (2, 2)
    assert "TaskHandle" not in task  # AWS names the handle of running tasks only

    moved = _receive_all(sqs, url)
    assert sorted(m["Body"] for m in moved) == sorted(
        f"body-{i}" for i in range(3) if f"body-{i}" != in_flight["Body"])
    for message in moved:
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"  # a new life
        assert message["MessageAttributes"]["n"]["DataType"] == "Number"
    # The message in flight stayed where it was.
    sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=in_flight["ReceiptHandle"],
                                  VisibilityTimeout=0)
    assert [m["Body"] for m in _receive_all(sqs, dlq_url)] == [in_flight["Body"]]


def test_a_move_task_to_a_named_destination(emulator: Emulator) -> None:
    sqs = _sqs(emulator)
    _, _, dlq_url, dlq_arn = _pair(sqs)
    other_url, other_arn = _queue(sqs, "elsewhere")
    sqs.send_message(QueueUrl=dlq_url, MessageBody="x")
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=other_arn,
                                MaxNumberOfMessagesPerSecond=5)
    [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert (task["DestinationArn"], task["MaxNumberOfMessagesPerSecond"]) == (other_arn, 5)
    assert [m["Body"] for m in _receive_all(sqs, other_url)] == ["x"]


@pytest.mark.parametrize(("case", "code"), [
    ("not a dead-letter queue", "UnsupportedOperation"),
    ("no such queue", "ResourceNotFoundException"),
    ("not an ARN", "InvalidParameterValue"),
])
def test_a_move_task_is_refused_as_aws_refuses_it(emulator: Emulator, case: str,
                                                  code: str) -> None:
    sqs = _sqs(emulator)
    _, arn, _, _ = _pair(sqs)
    source = {"not a dead-letter queue": arn,
              "no such queue": arn.rsplit(":", 1)[0] + ":missing",
              "not an ARN": "queue-name"}[case]
    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(SourceArn=source)
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_bounds_its_results(emulator: Emulator) -> None:
    sqs = _sqs(emulator)
    _, _, _, dlq_arn = _pair(sqs)
    for _ in range(3):
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert len(sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]) == 1
    assert len(sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]) == 3
    with pytest.raises(ClientError) as refused:
        sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=11)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_an_unknown_action_is_a_client_error_not_retried(plain_moto: Emulator) -> None:
    sqs = _sqs(plain_moto)
    _, _, _, dlq_arn = _pair(sqs)
    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    response = refused.value.response
    assert response["Error"]["Code"] == "UnknownOperationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def _function(emulator: Emulator) -> str:
    iam = boto3.client("iam", endpoint_url=emulator.endpoint, region_name=REGION)
    role = iam.create_role(RoleName=f"fn-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam = boto3.client("lambda", endpoint_url=emulator.endpoint, region_name=REGION)
    return str(lam.create_function(
        FunctionName=f"fn-{uuid.uuid4().hex[:8]}", Runtime="python3.12",
        Role=role["Role"]["Arn"], Handler="handler.handler",
        Code={"ZipFile": package.getvalue()})["FunctionArn"])


def test_an_event_source_mapping_is_kept_but_not_run_by_moto(emulator: Emulator) -> None:
    """Messages sent to, or moved into, a mapped queue stay there untouched: local mode's
    poller takes them, not moto."""
    sqs = _sqs(emulator)
    url, _, dlq_url, dlq_arn = _pair(sqs)
    function = _function(emulator)
    lam = boto3.client("lambda", endpoint_url=emulator.endpoint, region_name=REGION)
    mapping = lam.create_event_source_mapping(EventSourceArn=dlq_arn, FunctionName=function,
                                              BatchSize=1)
    listed = lam.list_event_source_mappings(EventSourceArn=dlq_arn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mapping["UUID"]]

    sqs.send_message(QueueUrl=dlq_url, MessageBody="sent")
    sqs.send_message(QueueUrl=url, MessageBody="moved")
    for _ in range(2):  # maxReceiveCount: the third receive moves it to the mapped queue
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages") is None
    found = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"]
             for m in _receive_all(sqs, dlq_url)}
    assert found == {"sent": "1", "moved": "3"}  # moto keeps the count across the move
