"""``sdctl dlq list|redrive`` against moto: listing with the tasks' state, a whole-queue
redrive by an SQS message move task (the emulator's) and, where the endpoint has none, one by
one; ``--id`` selections one by one."""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from sdaas.cli import dlq, sdctl
from sdaas.local.emulator import Emulator

pytestmark = [pytest.mark.emulator]

REGION = "us-west-2"


@dataclass
class Stack:
    """A runtime's task queue -> dead-letter intake -> dead-letter queue chain and a task
    table in an emulator, and a local connection file naming them."""

    emulator: Emulator
    local_dir: Path
    queue_url: str
    dlq_url: str
    table: str

    @property
    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.emulator.endpoint, region_name=REGION)

    def kept(self, task_id: str, *, status: str = "failed", **attributes: str) -> None:
        """A dead-lettered task: its message in the dead-letter queue, its record failed."""
        body = json.dumps({"Type": "Notification", "Message": json.dumps(
            {"metadata": {"id": task_id, "runtime": "sdruntime", "tasktype": "text-to-image"},
             "content": {"prompt": "x"}})})
        kwargs: dict[str, Any] = {}
        if attributes:
            kwargs["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v}
                                           for k, v in attributes.items()}
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=body, **kwargs)
        boto3.client("dynamodb", endpoint_url=self.emulator.endpoint,
                     region_name=REGION).put_item(TableName=self.table, Item={
                         "id": {"S": task_id}, "status": {"S": status},
                         "attempts": {"N": "3"},
                         "error": {"M": {"code": {"S": "dead_lettered"},
                                         "details": {"L": [{"M": {"receive_count": {
                                             "N": "4"}}}]}}}})

    def drain(self, url: str) -> list[dict[str, Any]]:
        found = []
        while batch := self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
                "Messages", []):
            for message in batch:
                found.append(message)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def ids(self, url: str) -> list[str | None]:
        return sorted(dlq.task_id_of(m["Body"]) or "" for m in self.drain(url))

    def sdctl(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = sdctl.main(["--local-dir", str(self.local_dir), *argv], out=out, err=err,
                          env={}, cwd=self.local_dir)
        return code, out.getvalue(), err.getvalue()


def _stack(emulator: Emulator, tmp_path: Path) -> Stack:
    sqs = boto3.client("sqs", endpoint_url=emulator.endpoint, region_name=REGION)
    suffix = uuid.uuid4().hex[:8]

    def queue(name: str, **attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=f"{name}-{suffix}", Attributes=attributes)["QueueUrl"]
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]

    dlq_url, dlq_arn = queue("dlq")
    _, intake_arn = queue("intake", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 8}))
    queue_url, _ = queue("tasks", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": intake_arn, "maxReceiveCount": 3}))
    table = f"tasks-{suffix}"
    boto3.client("dynamodb", endpoint_url=emulator.endpoint, region_name=REGION).create_table(
        TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    (tmp_path / "connection.json").write_text(json.dumps({
        "endpoint": "http://127.0.0.1:9/prod", "api_key": "k", "pid": os.getpid(),
        "aws_endpoint_url": emulator.endpoint, "region": REGION, "output_bucket": "b",
        "task_table": table, "queue_urls": {"sdruntime": queue_url},
        "dead_letter_queue_urls": {"sdruntime": dlq_url}}))
    return Stack(emulator, tmp_path, queue_url, dlq_url, table)


@pytest.fixture
def stack(emulator: Emulator, tmp_path: Path) -> Stack:
    return _stack(emulator, tmp_path)


def test_list_shows_each_message_and_its_task_and_hides_nothing(stack: Stack) -> None:
    stack.kept("poison-a")
    stack.kept("poison-b")
    code, out, err = stack.sdctl("dlq", "list", "sdruntime")
    assert code == sdctl.EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["MESSAGE", "TASK", "KEPT", "AT", "STATUS"]
    rows = {line.split()[1]: line for line in lines[1:]}
    assert set(rows) == {"poison-a", "poison-b"}
    assert "failed" in rows["poison-a"]
    assert "dead_lettered (receive count 4)" in rows["poison-a"]
    assert "2 message(s) in sdruntime's dead-letter queue" in err
    assert "sdctl dlq redrive sdruntime" in err
    # Listing left them visible: a redrive right after moves them all.
    assert stack.ids(stack.dlq_url) == ["poison-a", "poison-b"]


def test_list_as_json_and_bounded(stack: Stack) -> None:
    for index in range(3):
        stack.kept(f"t-{index}")
    code, out, err = stack.sdctl("--json", "dlq", "list", "sdruntime", "--max", "2")
    assert code == sdctl.EXIT_OK, err
    rows = json.loads(out)
    assert len(rows) == 2
    assert {row["task_id"] for row in rows} <= {"t-0", "t-1", "t-2"}
    assert rows[0]["status"] == "failed" and rows[0]["receive_count"] == 4
    assert rows[0]["attempts"] == 3 and rows[0]["error_code"] == "dead_lettered"
    assert len(stack.ids(stack.dlq_url)) == 3


def test_redrive_moves_the_whole_queue_with_a_message_move_task(stack: Stack) -> None:
    stack.kept("poison-a", trace="t-1")
    stack.kept("poison-b")
    code, out, err = stack.sdctl("dlq", "redrive", "sdruntime")
    assert code == sdctl.EXIT_OK, err
    assert "moved 2 message(s)" in out and "(SQS message move task)" in out
    assert "message move task started" in err
    moved = stack.drain(stack.queue_url)
    assert sorted(dlq.task_id_of(m["Body"]) for m in moved) == ["poison-a", "poison-b"]
    assert any(m.get("MessageAttributes", {}).get("trace", {}).get("StringValue") == "t-1"
               for m in moved)
    assert stack.drain(stack.dlq_url) == []


def test_without_message_move_tasks_redrive_moves_one_by_one(plain_moto: Emulator,
                                                              tmp_path: Path) -> None:
    stack = _stack(plain_moto, tmp_path)
    stack.kept("poison-a", trace="t-1")
    stack.kept("poison-b")
    code, out, err = stack.sdctl("dlq", "redrive", "sdruntime")
    assert code == sdctl.EXIT_OK, err
    assert "no SQS message move tasks (UnknownOperationException)" in err
    assert "moved 2 message(s)" in out and "(one by one)" in out
    moved = stack.drain(stack.queue_url)
    assert sorted(dlq.task_id_of(m["Body"]) for m in moved) == ["poison-a", "poison-b"]
    assert any(m.get("MessageAttributes", {}).get("trace", {}).get("StringValue") == "t-1"
               for m in moved)
    assert stack.drain(stack.dlq_url) == []


def test_redrive_of_chosen_ids_moves_only_those(stack: Stack) -> None:
    for task_id in ("keep-1", "move-1", "keep-2", "move-2"):
        stack.kept(task_id)
    code, out, err = stack.sdctl("dlq", "redrive", "sdruntime", "--id", "move-1",
                                 "--id", "move-2")
    assert code == sdctl.EXIT_OK, err
    assert "moved 2 message(s)" in out and "(one by one)" in out
    assert stack.ids(stack.queue_url) == ["move-1", "move-2"]
    assert stack.ids(stack.dlq_url) == ["keep-1", "keep-2"]  # visible again at once


def test_redrive_names_the_ids_it_did_not_find(stack: Stack) -> None:
    stack.kept("there")
    code, out, err = stack.sdctl("dlq", "redrive", "sdruntime", "--id", "there",
                                 "--id", "absent")
    assert code == sdctl.EXIT_CLIENT
    assert "moved 1 message(s)" in out
    assert "not in sdruntime's dead-letter queue: absent" in err
    assert stack.ids(stack.queue_url) == ["there"]


def test_an_unknown_runtime_names_the_known_ones(stack: Stack) -> None:
    code, _, err = stack.sdctl("dlq", "list", "invokeai")
    assert code == sdctl.EXIT_CLIENT
    assert "no runtime 'invokeai'" in err and "runtimes: sdruntime" in err


def test_without_a_stack_the_error_says_where_to_look(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = sdctl.main(["dlq", "list", "sdruntime"], out=out, err=err, env={}, cwd=tmp_path)
    assert code == sdctl.EXIT_CLIENT
    assert "no dead-letter queues found" in err.getvalue()
    assert "--stack-dir" in err.getvalue() and "make local" in err.getvalue()


class _MoveTasks:
    """An SQS client whose move task stays RUNNING, or ends FAILED."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses

    def start_message_move_task(self, **_: Any) -> dict[str, Any]:
        return {"TaskHandle": "h-1"}

    def list_message_move_tasks(self, **_: Any) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Results": [{"Status": status, "ApproximateNumberOfMessagesMoved": 1,
                             "FailureReason": "AccessDenied on the destination"}]}


def test_a_move_task_still_running_at_the_timeout_goes_on() -> None:
    now = [0.0]
    said: list[str] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(sdctl.CliError) as timed_out:
        dlq.move_task(_MoveTasks(["RUNNING"]), "arn:src", "arn:dst", 5.0, said.append,
                      sleep=sleep, clock=lambda: now[0])
    assert timed_out.value.code == sdctl.EXIT_TIMEOUT
    assert "still RUNNING after 5s" in timed_out.value.message
    assert now[0] == 5.0  # polled once a second until the timeout


def test_a_failed_move_task_is_reported(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq.Service, "client", lambda self, name: _MoveTasks(
        ["RUNNING", "FAILED"]) if name == "sqs" else None)
    monkeypatch.setattr(dlq, "_arn", lambda sqs, url: url)
    monkeypatch.setattr(dlq, "MOVE_POLL_SECONDS", 0.0)
    code, _, err = stack.sdctl("dlq", "redrive", "sdruntime")
    assert code == sdctl.EXIT_SERVER
    assert "ended FAILED after moving 1 message(s): AccessDenied on the destination" in err
