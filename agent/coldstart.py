"""Cold start, measured where it happens: how long after its pod was created the runtime
answered, and the agent received its first task.

The origin is the pod's ``metadata.creationTimestamp`` from the Kubernetes API: it covers
KEDA's activation, scheduling, Karpenter's node launch, the node's boot, the image pulls, the
model load and the runtime's warm-up. Outside a cluster (or when the API does not answer)
the origin is the agent's own start, and the log line says which origin was used. Each of
the two figures is reported once per pod: a CloudWatch embedded metric
(``ColdStartToRuntimeReady``, ``ColdStartToFirstTask``, seconds) and a ``cold_start`` log
line with the phases the pod's status tells apart (scheduled, agent started).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent import logs
from agent.config import AgentConfig
from agent.kube import read_own_pod

PodReader = Callable[[AgentConfig], dict[str, Any] | None]


class ColdStart:
    """Reports the two cold-start figures of this pod, each once."""

    def __init__(self, config: AgentConfig, *, clock: Callable[[], float] = time.time,
                 read_pod: PodReader = read_own_pod) -> None:
        self._config = config
        self._clock = clock
        self._read_pod = read_pod
        self._process_started = clock()
        self._origin: tuple[str, float, dict[str, float]] | None = None
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def runtime_ready(self) -> None:
        """The runtime answered for the first time since the pod started."""
        seconds = self._once("runtime_ready")
        if seconds is not None:
            logs.emit_metrics(self._config.metrics_namespace,
                              {"Runtime": self._config.runtime_name},
                              {"ColdStartToRuntimeReady": seconds})

    def first_task(self) -> None:
        """The agent received its first task."""
        seconds = self._once("first_task")
        if seconds is not None:
            logs.emit_metrics(self._config.metrics_namespace,
                              {"Runtime": self._config.runtime_name},
                              {"ColdStartToFirstTask": seconds})

    def _once(self, milestone: str) -> float | None:
        """Seconds from the origin to now, logged, the first time ``milestone`` is reached;
        None afterwards."""
        now = self._clock()
        if not self._claim(milestone):
            return None
        origin, started, phases = self._find_origin()
        seconds = round(max(0.0, now - started), 3)
        logs.event("cold_start", milestone=milestone, origin=origin, seconds=seconds,
                   **phases)
        return seconds

    def _claim(self, milestone: str) -> bool:
        with self._lock:
            if milestone in self._reported:
                return False
            self._reported.add(milestone)
            return True

    def _find_origin(self) -> tuple[str, float, dict[str, float]]:
        with self._lock:
            if self._origin is None:
                self._origin = self._pod_origin() or ("agent_started",
                                                      self._process_started, {})
            return self._origin

    def _pod_origin(self) -> tuple[str, float, dict[str, float]] | None:
        pod = self._read_pod(self._config)
        if pod is None:
            return None
        created = _timestamp((pod.get("metadata") or {}).get("creationTimestamp"))
        if created is None:
            return None
        phases = {"agent_started_after": round(max(0.0, self._process_started - created), 3)}
        scheduled = _timestamp((pod.get("status") or {}).get("startTime"))
        if scheduled is not None:
            phases["scheduled_after"] = round(max(0.0, scheduled - created), 3)
        return "pod_created", created, phases


def _timestamp(value: Any) -> float | None:
    """Seconds since the epoch of a Kubernetes RFC 3339 time (``2026-01-31T08:00:00Z``)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
