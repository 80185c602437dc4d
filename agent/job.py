"""A received message on its way through the pipeline."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agent.errors import TaskError
from agent.messages import Task
from agent.runtimes.base import Prepared, RuntimeOutput
from agent.storage import StoredOutput

PUBLIC_TIMINGS = ("queue_wait", "download", "inference", "upload", "total")


@dataclass
class Job:
    message_id: str
    receipt: str
    body: str
    receive_count: int
    sent_at: float
    received_at: float = field(default_factory=time.time)
    received_mono: float = field(default_factory=time.monotonic)
    task: Task | None = None
    prepared: Prepared | None = None
    output: RuntimeOutput | None = None
    error: TaskError | None = None
    attempts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False  # the client cancelled the task: it ends ``cancelled``
    record: dict[str, Any] | None = None  # the cancelled task's record, once claimed
    images: list[str] = field(default_factory=list)  # the image URIs among the outputs
    outputs: list[StoredOutput] = field(default_factory=list)
    # Finishing steps already done, so a retry resumes instead of writing twice.
    outputs_written: bool = False
    final_written: bool = False
    published: bool = False
    published_flagged: bool = False  # result_published set in the task record
    closed: bool = False  # deleted or released: this agent no longer holds the message
    waiting: bool = False  # counted among the received jobs not yet started on the runtime

    @property
    def task_id(self) -> str | None:
        return self.task.id if self.task else None

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Job:
        attributes = message.get("Attributes", {})
        sent_ms = attributes.get("SentTimestamp")
        return cls(
            message_id=message["MessageId"],
            receipt=message["ReceiptHandle"],
            body=message.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            sent_at=int(sent_ms) / 1000.0 if sent_ms else time.time(),
        )

    def public_timings(self) -> dict[str, float]:
        """The phases the task table and the result carry, in seconds."""
        return {name: round(self.timings.get(name, 0.0), 4) for name in PUBLIC_TIMINGS}
