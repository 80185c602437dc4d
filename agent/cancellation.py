"""Notices that a client cancelled a task the agent holds (``POST /v1alpha2/tasks/{id}/cancel``).

Every task waiting for the runtime (prefetched) or running on it is registered here; a
background thread reads the status of each one from the task table at most every
``AGENT_CANCEL_POLL_SECONDS`` (one read a task per interval, however often the runtime
adapter polls its runtime) and hands the ones whose record says ``cancelled`` to
``on_cancel``, once each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from agent import logs
from agent.errors import clip
from task_contract.record import CANCELLED

T = TypeVar("T")


class CancelWatch(Generic[T]):
    """``watch(key, item)`` while ``item`` runs, ``forget(key)`` after; :meth:`check` reads
    the status of every item whose last read is ``interval`` seconds old."""

    def __init__(self, status_of: Callable[[str], str | None],
                 on_cancel: Callable[[T], None], interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._status_of = status_of
        self._on_cancel = on_cancel
        self._interval = interval
        self._clock = clock
        self._watched: dict[str, tuple[T, float]] = {}  # task id -> (item, last read)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, task_id: str, item: T) -> None:
        with self._lock:
            self._watched[task_id] = (item, self._clock())

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._watched.pop(task_id, None)

    def check(self) -> list[str]:
        """Read the status of every task due; return the ids found cancelled (handed to
        ``on_cancel`` and no longer watched)."""
        now = self._clock()
        with self._lock:
            due = [task_id for task_id, (_, last) in self._watched.items()
                   if now - last >= self._interval]
        cancelled = []
        for task_id in due:
            try:
                status = self._status_of(task_id)
            except (ClientError, BotoCoreError) as exc:
                logs.warning("cancel_check_failed", task_id=task_id, error=clip(exc, 200))
                status = None
            with self._lock:
                entry = self._watched.get(task_id)
                if entry is None:
                    continue  # the task ended meanwhile
                if status != CANCELLED:
                    self._watched[task_id] = (entry[0], self._clock())
                    continue
                del self._watched[task_id]
            cancelled.append(task_id)
            logs.event("task_cancel_noticed", task_id=task_id)
            self._on_cancel(entry[0])
        return cancelled

    # -- the background thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cancel-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        tick = min(1.0, self._interval / 4)
        while not self._stop.wait(tick):
            try:
                self.check()
            except Exception as exc:  # the watch must survive anything
                logs.error("cancel_watch_error", error=clip(repr(exc), 300))
