"""Keeps held messages invisible while the agent works on them.

Every message the agent holds (prefetched, running or finishing) is registered here; a
background thread extends the visibility of each one every ``heartbeat_seconds`` (at most
half the visibility timeout, so one late beat cannot let a message reappear) until it is
released or deleted.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent import logs

_BATCH = 10


class Heartbeat:
    def __init__(self, sqs: Any, queue_url: str, visibility_seconds: int,
                 interval_seconds: float) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._visibility = visibility_seconds
        self._interval = interval_seconds
        self._held: dict[str, tuple[str, float]] = {}  # message id -> (receipt, last extended)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def hold(self, message_id: str, receipt: str) -> None:
        with self._lock:
            self._held[message_id] = (receipt, time.monotonic())

    def drop(self, message_id: str) -> None:
        with self._lock:
            self._held.pop(message_id, None)

    def held_count(self) -> int:
        with self._lock:
            return len(self._held)

    def _due(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        with self._lock:
            return [(mid, receipt) for mid, (receipt, last) in self._held.items()
                    if now - last >= self._interval]

    def _run(self) -> None:
        tick = min(1.0, self._interval / 4)
        while not self._stop.wait(tick):
            due = self._due()
            for start in range(0, len(due), _BATCH):
                self._extend(due[start:start + _BATCH])

    def _extend(self, batch: list[tuple[str, str]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": self._visibility}
                   for i, (_, receipt) in enumerate(batch)]
        try:
            answer = self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            # Retried at the next tick; a beat is at most half the timeout, so one miss is safe.
            logs.warning("heartbeat_failed", error=str(exc)[:200], messages=len(batch))
            return
        now = time.monotonic()
        failed = {int(f["Id"]): f for f in answer.get("Failed", [])}
        with self._lock:
            for index, (mid, receipt) in enumerate(batch):
                if mid not in self._held or self._held[mid][0] != receipt:
                    continue  # released or deleted meanwhile
                if index in failed:
                    entry = failed[index]
                    logs.warning("heartbeat_rejected", message_id=mid, code=entry.get("Code"))
                    if entry.get("SenderFault"):
                        # The receipt is no longer valid (the message became visible and was
                        # received elsewhere): extending it again cannot succeed.
                        del self._held[mid]
                    continue
                self._held[mid] = (receipt, now)
