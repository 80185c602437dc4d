"""The one interface every runtime adapter implements.

The pipeline only talks to :class:`RuntimeAdapter`: adding a runtime (InvokeAI, say) means a
new module with a subclass and one entry in ``agent.runtimes.ADAPTERS``; the loop is
untouched.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests

from agent.config import AgentConfig
from agent.errors import PermanentError, TransientError, clip
from agent.messages import Task

Fetch = Callable[[str], bytes]
CONNECT_TIMEOUT = 5.0
CONTROL_TIMEOUT = 30.0


class Cancelled(Exception):
    """The pipeline cancelled the task (shutdown, or the client cancelled it); its result
    must be discarded."""


@dataclass
class Prepared:
    """A task made ready for the runtime: inputs fetched, body built."""

    task: Task
    body: dict[str, Any]
    input_count: int = 0
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class RuntimeOutput:
    """What a generation produced: its output files in order (still or animated images,
    videos) and, where the runtime says so, which of them are animated."""

    images: list[bytes]
    parameters: Any = None
    seeds: list[Any] = field(default_factory=list)
    info: Any = None
    animated: list[bool] = field(default_factory=list)


class RuntimeAdapter(ABC):
    """Drives one inference runtime over HTTP."""

    type_name: ClassVar[str]

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.base_url = config.api_base_url
        self._local = threading.local()

    # -- the interface --------------------------------------------------------------------
    @abstractmethod
    def ready(self) -> bool:
        """True when the runtime answers its health endpoint."""

    @abstractmethod
    def prepare(self, task: Task, fetch: Fetch) -> Prepared:
        """Fetch the task's inputs and build the request; may raise TaskError."""

    @abstractmethod
    def run(self, prepared: Prepared, cancel: threading.Event) -> RuntimeOutput:
        """Generate; raise TaskError on failure, Cancelled if ``cancel`` was set."""

    @abstractmethod
    def interrupt(self, prepared: Prepared | None = None) -> None:
        """Stop the generation of ``prepared``, and nothing else (best effort, never raises)."""

    def cancel(self, prepared: Prepared) -> None:
        """The client cancelled the task of ``prepared`` while it runs (its ``cancel`` event
        is set): stop its generation early where that touches no other task. By default
        :meth:`interrupt`."""
        self.interrupt(prepared)

    def close(self, timeout: float) -> None:  # noqa: B027 - optional, nothing by default
        """Finish background clean-up within ``timeout`` seconds (at shutdown)."""

    # -- helpers for subclasses ------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            self._local.session = session
        return session

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def probe(self, path: str) -> bool:
        try:
            response = self.session.get(self.url(path), timeout=(CONNECT_TIMEOUT, 5.0))
        except requests.RequestException:
            return False
        return response.status_code == 200


def http_failure(response: requests.Response, what: str) -> Exception:
    """Classify a non-2xx runtime answer: 4xx is the request's fault, 5xx the runtime's."""
    status = response.status_code
    try:
        detail: Any = response.json()
    except ValueError:
        detail = clip(response.text, 400)
    message = f"{what} failed with HTTP {status}"
    if isinstance(detail, dict):
        parts = []
        for key in ("error", "detail", "errors"):
            value = detail.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value
            if value:
                parts.append(clip(value, 300))
        if parts:
            message += ": " + "; ".join(parts)
    details = detail if isinstance(detail, (dict, list)) else [detail]
    if status in (408, 429) or status >= 500:
        return TransientError("runtime_error", message, details)
    return PermanentError("runtime_validation", message, details)


def connection_failure(exc: requests.RequestException, what: str) -> TransientError:
    return TransientError("runtime_unavailable", f"{what}: {type(exc).__name__}: {clip(exc, 200)}")
