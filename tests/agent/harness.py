"""AWS resources in the emulator and the agent as a real subprocess, for agent tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

REPO = Path(__file__).resolve().parents[2]
FENCE = Path(__file__).resolve().parent / "fence"
REGION = "us-west-2"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.1) -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """One test's queues, topics, bucket and table (unique names, so tests do not mix)."""

    endpoint: str
    max_receive_count: int = 3
    queue_visibility: int = 4
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def __post_init__(self) -> None:
        kwargs = {"endpoint_url": self.endpoint, "region_name": REGION}
        self.sqs = boto3.client("sqs", **kwargs)
        self.sns = boto3.client("sns", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        self.ddb = boto3.client("dynamodb", **kwargs)
        self.dlq_url = self.sqs.create_queue(QueueName=f"dlq-{self.name}")["QueueUrl"]
        dlq_arn = self._arn(self.dlq_url)
        self.queue_url = self.sqs.create_queue(QueueName=f"q-{self.name}", Attributes={
            "VisibilityTimeout": str(self.queue_visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": self.max_receive_count}),
        })["QueueUrl"]
        self.input_topic = self.sns.create_topic(Name=f"in-{self.name}")["TopicArn"]
        self.sns.subscribe(TopicArn=self.input_topic, Protocol="sqs",
                           Endpoint=self._arn(self.queue_url))
        self.topic_arn = self.sns.create_topic(Name=f"out-{self.name}")["TopicArn"]
        self.result_queue_url = self.sqs.create_queue(QueueName=f"r-{self.name}")["QueueUrl"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs",
                           Endpoint=self._arn(self.result_queue_url))
        self.bucket = f"out-{self.name}"
        self.s3.create_bucket(Bucket=self.bucket,
                              CreateBucketConfiguration={"LocationConstraint": REGION})
        self.table = f"tasks-{self.name}"
        self.ddb.create_table(TableName=self.table, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id",
                                                     "AttributeType": "S"}])
        self._results: list[dict[str, Any]] = []

    def _arn(self, queue_url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]

    # -- sending -----------------------------------------------------------------------------
    def publish(self, task: dict[str, Any], runtime: str = "sdruntime") -> None:
        """As ingest does: to the input topic (the queue gets an SNS envelope)."""
        self.sns.publish(TopicArn=self.input_topic, Message=json.dumps(task),
                         MessageAttributes={"runtime": {"DataType": "String",
                                                        "StringValue": runtime}})

    def send_raw(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    # -- reading -----------------------------------------------------------------------------
    def results(self) -> list[dict[str, Any]]:
        """Every result message seen so far on the result topic (body plus attributes)."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.result_queue_url,
                                                MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return list(self._results)
            for message in messages:
                envelope = json.loads(message["Body"])
                body = json.loads(envelope["Message"])
                body["_attributes"] = {k: v["Value"] for k, v in
                                       envelope.get("MessageAttributes", {}).items()}
                self._results.append(body)
                self.sqs.delete_message(QueueUrl=self.result_queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])

    def results_for(self, task_id: str) -> list[dict[str, Any]]:
        return [r for r in self.results() if r.get("id") == task_id]

    def wait_result(self, task_id: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(lambda: self.results_for(task_id), timeout, f"result of {task_id}")[0]

    def record(self, task_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.ddb.get_item(TableName=self.table, Key={"id": {"S": task_id}},
                                 ConsistentRead=True).get("Item")
        if item is None:
            return None
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
                for o in listing}

    def content_type(self, key: str) -> str:
        return str(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentType"])

    def queue_counts(self, queue_url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the input queue (or ``queue_url``)."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return (int(attrs["ApproximateNumberOfMessages"]),
                int(attrs["ApproximateNumberOfMessagesNotVisible"]))

    def dlq_bodies(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                                            VisibilityTimeout=0).get("Messages", [])
        return [m["Body"] for m in messages]


def task(task_id: str, tasktype: str = "text-to-image", content: dict[str, Any] | None = None,
         runtime: str = "sdruntime", **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"id": task_id, "runtime": runtime, "tasktype": tasktype,
                         "prefix": "output", "context": {"user": "u1"}, **metadata},
            "content": content if content is not None else {"prompt": "a dog", "steps": 4,
                                                            "width": 64, "height": 64}}


class AgentProcess:
    """``python -m agent`` with an environment pointing at the emulator and a fake runtime."""

    def __init__(self, stack: Stack, runtime_url: str, log_dir: Path,
                 runtime_type: str = "sdwebui", **overrides: str) -> None:
        self.stack = stack
        self.health_port = free_port()
        self.log_path = log_dir / f"agent-{uuid.uuid4().hex[:6]}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
        env.update({
            "PYTHONPATH": os.pathsep.join([str(FENCE), str(REPO)]),
            "AGENT_TEST_NETWORK_FENCE": "1",
            "AWS_ENDPOINT_URL": stack.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "SQS_QUEUE_URL": stack.queue_url,
            "SNS_TOPIC_ARN": stack.topic_arn,
            "S3_BUCKET": stack.bucket,
            "TASK_TABLE": stack.table,
            "RUNTIME_TYPE": runtime_type,
            "RUNTIME_NAME": "sdruntime",
            "API_BASE_URL": runtime_url,
            "AGENT_WAIT_TIME_SECONDS": "1",
            "AGENT_VISIBILITY_TIMEOUT_SECONDS": "4",
            "AGENT_HEARTBEAT_SECONDS": "1",
            "AGENT_RETRY_DELAY_SECONDS": "1",
            "AGENT_RETRY_DELAY_MAX_SECONDS": "2",
            "AGENT_FINISH_ATTEMPTS": "2",
            "AGENT_SHUTDOWN_GRACE_SECONDS": "5",
            "AGENT_TASK_TIMEOUT_SECONDS": "10",
            "AGENT_INPUT_TIMEOUT_SECONDS": "5",
            "AGENT_HEALTH_PORT": str(self.health_port),
            "AGENT_POD_ANNOTATION": "false",
            "AGENT_COMFYUI_POLL_SECONDS": "0.05",
        })
        env.update(overrides)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> AgentProcess:
        handle = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "agent"], cwd=REPO, env=self.env,
                                     stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        if wait_ready:
            wait_for(self.ready, 20, "the agent to be ready")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return requests.get(f"http://127.0.0.1:{self.health_port}/readyz",
                                timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.output().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if name is None or entry.get("event") == name:
                found.append(entry)
        return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def assert_finished_once(stack: Stack, task_id: str, status: str, timeout: float = 30,
                         settle: float = 1.0, queue_empty: bool = True) -> dict[str, Any]:
    """The task ended exactly once with ``status``: one result message, a final record with
    ``result_published``, and no message of it left on the input queue. Returns the result."""
    result = stack.wait_result(task_id, timeout)
    time.sleep(settle)  # a duplicate result would arrive within this
    results = stack.results_for(task_id)
    assert len(results) == 1, f"{len(results)} result messages for {task_id}: {results}"
    assert result["status"] == status, result
    assert result["result"] is (status == "completed")
    assert result["_attributes"] == {"runtime": result["runtime"], "status": status}
    record = wait_for(lambda: (r := stack.record(task_id)) and r.get("result_published") and r,
                      10, f"result_published on {task_id}")
    assert record["status"] == status
    if queue_empty:
        assert wait_for(lambda: stack.queue_counts() == (0, 0), 15, "an empty input queue")
    return result
