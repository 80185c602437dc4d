"""The runtime's input queue: receive, release with a delay, delete.

Every received message is held by the heartbeat until it is released or deleted; both are
idempotent per job.
"""

from __future__ import annotations

import json
import math
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent import logs
from agent.config import AgentConfig
from agent.errors import clip
from agent.heartbeat import Heartbeat
from agent.job import Job

MAX_VISIBILITY_SECONDS = 43200


class InputQueue:
    def __init__(self, sqs: Any, config: AgentConfig) -> None:
        self.sqs = sqs
        self.config = config
        self.url = config.queue_url
        self.heartbeat = Heartbeat(sqs, config.queue_url, config.visibility_timeout_seconds,
                                   config.heartbeat_seconds)
        self.max_receive_count = config.max_receive_count

    def start(self) -> None:
        if self.max_receive_count is None:
            self.max_receive_count = self._redrive_max_receive_count()
        self.heartbeat.start()

    def stop(self) -> None:
        self.heartbeat.stop()

    def receive(self, count: int) -> list[Job]:
        messages = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.config.wait_time_seconds,
            VisibilityTimeout=self.config.visibility_timeout_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        jobs = [Job.from_message(message) for message in messages]
        for job in jobs:
            self.heartbeat.hold(job.message_id, job.receipt)
        return jobs

    def is_last_delivery(self, job: Job) -> bool:
        """True when the dead-letter queue takes the message if this delivery fails."""
        return self.max_receive_count is not None and job.receive_count >= self.max_receive_count

    def backoff(self, job: Job) -> float:
        """Delay before a failed delivery is retried: doubles per delivery, capped."""
        delay = self.config.retry_delay_seconds * 2 ** max(0, job.receive_count - 1)
        return min(delay, self.config.retry_delay_max_seconds)

    def release(self, job: Job, delay: float) -> None:
        """Make the message visible again after ``delay`` seconds (0: at once)."""
        if job.closed:
            return
        job.closed = True
        self.heartbeat.drop(job.message_id)
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=job.receipt,
                VisibilityTimeout=min(MAX_VISIBILITY_SECONDS, math.ceil(delay)),
            )
        except (ClientError, BotoCoreError) as exc:
            # It reappears when its current visibility timeout ends instead.
            logs.warning("release_failed", message_id=job.message_id, error=clip(exc, 200))

    def delete(self, job: Job) -> None:
        if job.closed:
            return
        job.closed = True
        self.heartbeat.drop(job.message_id)
        try:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=job.receipt)
        except (ClientError, BotoCoreError) as exc:
            # Redelivered later, it finds the final status and is deleted then.
            logs.warning("delete_failed", message_id=job.message_id, error=clip(exc, 200))

    def _redrive_max_receive_count(self) -> int | None:
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["RedrivePolicy"]
            ).get("Attributes", {})
            policy = json.loads(attributes.get("RedrivePolicy", "{}"))
            return int(policy["maxReceiveCount"]) if "maxReceiveCount" in policy else None
        except (ClientError, BotoCoreError, ValueError, KeyError) as exc:
            logs.warning("redrive_policy_unknown", error=clip(exc, 200),
                         consequence="transient failures are retried until the DLQ takes "
                         "them without a final failed status; set AGENT_MAX_RECEIVE_COUNT")
            return None
