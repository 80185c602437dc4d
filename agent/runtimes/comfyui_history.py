"""Deleting the ComfyUI history entries of prompts the agent gave up on.

ComfyUI writes a prompt's history entry (the whole workflow and its outputs) when the prompt
stops running, and an interrupt only takes effect when the running node finishes, which may
be seconds later. So the entry of an interrupted prompt cannot be deleted at once: the
janitor watches it (one background thread while there is something to watch) and deletes it
as soon as it appears. It stops watching a prompt that is no longer queued or running and
has no entry (it was deleted from the queue before it ran, or the history was cleared), and
everything when ComfyUI no longer accepts connections (its history, kept in memory, is gone
with it, as at pod shutdown); it gives up, with a warning, after a bounded time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from agent import logs
from agent.runtimes.base import CONNECT_TIMEOUT

CONTROL_TIMEOUT = 10.0


class HistoryJanitor:
    def __init__(self, url: Callable[[str], str], session: Callable[[], requests.Session],
                 poll_seconds: float, max_wait_seconds: float) -> None:
        self._url = url
        self._session = session
        self._poll = max(0.2, poll_seconds)
        self._max_wait = max_wait_seconds
        self._watched: dict[str, float] = {}  # prompt id -> give-up time (monotonic)
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def watch(self, prompt_id: str) -> None:
        """Delete ``prompt_id``'s history entry once ComfyUI writes it."""
        with self._lock:
            self._watched.setdefault(prompt_id, time.monotonic() + self._max_wait)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="comfyui-history",
                                                daemon=True)
                self._thread.start()

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._watched)

    def wait(self, timeout: float) -> bool:
        """True when nothing is left to watch within ``timeout`` seconds."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._watched:
                    self._idle.set()
                    self._thread = None
                    return
            self.sweep()
            time.sleep(self._poll)

    def sweep(self) -> None:
        """One pass over the watched prompts."""
        try:
            queued = self._queued()
        except requests.ConnectionError:
            # Nothing listens: ComfyUI is gone (pod shutdown), and its history with it.
            with self._lock:
                gone, self._watched = list(self._watched), {}
            logs.event("history_cleanup_runtime_gone", prompt_ids=gone)
            return
        except (requests.RequestException, ValueError) as exc:
            self._expire(reason=type(exc).__name__)
            return
        for prompt_id in self.pending():
            try:
                # The queue was read first: ComfyUI writes the entry in the same step as it
                # takes the prompt off the running list, so no entry now and not queued then
                # means none will come.
                if self._has_entry(prompt_id):
                    self._delete(prompt_id)
                    self._forget(prompt_id)
                    logs.event("history_entry_deleted", prompt_id=prompt_id)
                elif prompt_id not in queued:
                    self._forget(prompt_id)
            except (requests.RequestException, ValueError) as exc:
                logs.warning("history_cleanup_failed", prompt_id=prompt_id,
                             error=type(exc).__name__)
        self._expire(reason="still running")

    def _queued(self) -> set[str]:
        response = self._session().get(self._url("/queue"),
                                       timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
        response.raise_for_status()
        answer = response.json()
        return {str(item[1]) for key in ("queue_running", "queue_pending")
                for item in answer.get(key) or [] if isinstance(item, list) and len(item) > 1}

    def _has_entry(self, prompt_id: str) -> bool:
        response = self._session().get(self._url(f"/history/{prompt_id}"),
                                       timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
        response.raise_for_status()
        return prompt_id in (response.json() or {})

    def _delete(self, prompt_id: str) -> None:
        self._session().post(self._url("/history"), json={"delete": [prompt_id]},
                             timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT)).raise_for_status()

    def _forget(self, prompt_id: str) -> None:
        with self._lock:
            self._watched.pop(prompt_id, None)

    def _expire(self, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [p for p, deadline in self._watched.items() if deadline <= now]
            for prompt_id in expired:
                del self._watched[prompt_id]
        for prompt_id in expired:
            logs.warning("history_cleanup_gave_up", prompt_id=prompt_id, reason=reason,
                         waited_seconds=self._max_wait)
