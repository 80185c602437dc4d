"""Helpers for the local-mode tests: bounded waits, images, topic taps."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from tests.agent.harness import wait_for as _wait_for

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "lambda" / "fixtures"  # the reference Guidance's request bodies


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.2) -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout`` seconds."""
    return _wait_for(predicate, timeout, what, interval)


def png(width: int, height: int, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def image_format(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return str(image.format)


def png_text(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(getattr(image, "text", {}) or {})


def reference_request(relative: str) -> dict[str, Any]:
    return json.loads((FIXTURES / relative).read_text())


def pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie is gone, only not yet reaped


class Tap:
    """An SQS queue subscribed to an SNS topic (raw delivery off): what the topic published."""

    def __init__(self, sqs: Any, sns: Any, topic_arn: str, name: str) -> None:
        self.sqs = sqs
        self.url = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url,
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Every message so far: ``{"body": <parsed Message>, "attributes": {...}}``."""
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return list(self.seen)
            for message in batch:
                envelope = json.loads(message["Body"])
                self.seen.append({
                    "body": json.loads(envelope["Message"]),
                    "attributes": {k: v["Value"] for k, v in
                                   (envelope.get("MessageAttributes") or {}).items()},
                })
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(batch)])

    def for_id(self, task_id: str, key: str = "id") -> list[dict[str, Any]]:
        return [m for m in self.drain() if _id_of(m["body"], key) == task_id]


def _id_of(body: dict[str, Any], key: str) -> Any:
    if key == "metadata.id":
        return (body.get("metadata") or {}).get("id")
    return body.get(key)


def processes_with(variable: str, value: str) -> list[int]:
    """Live processes whose environment holds ``variable=value`` (a stack's instance id)."""
    marker = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environment.split(b"\0") and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found
