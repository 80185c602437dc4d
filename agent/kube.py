"""The agent's own pod in the Kubernetes API.

While a task runs, the agent's own pod carries ``karpenter.sh/do-not-disrupt: "true"`` so
consolidation does not evict it mid-generation; when idle the annotation is removed. The
patch goes to the in-cluster API with the pod's service-account token (the pod's service
account needs ``patch`` on ``pods`` in its namespace). Best effort: a failure is logged and
retried at the next change, never fatal. :func:`read_own_pod` reads the pod (``get``, the
same grant) for its creation time, the origin of the cold-start measurement.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import requests

from agent import logs
from agent.config import AgentConfig

ANNOTATION = "karpenter.sh/do-not-disrupt"
TIMEOUT = (3.0, 5.0)


class PodAnnotator:
    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._wanted = False
        self._applied: bool | None = None
        self._changed = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="pod-annotator", daemon=True)
        self.enabled = bool(config.pod_annotation and config.kube_api_url and config.pod_name)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()
        else:
            logs.event("pod_annotation_disabled",
                       reason="turned off" if not self._config.pod_annotation
                       else "not running in a cluster (no API URL or pod name)")

    def set_busy(self, busy: bool) -> None:
        with self._changed:
            self._wanted = busy
            self._changed.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Remove the annotation (best effort) and stop."""
        if not self.enabled:
            return
        with self._changed:
            self._wanted = False
            self._stop = True
            self._changed.notify()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._applied == self._wanted and not self._stop:
                    self._changed.wait(timeout=30)
                wanted, stopping = self._wanted, self._stop
            if self._applied != wanted:
                if self._patch(wanted):
                    self._applied = wanted
                elif not stopping:
                    with self._changed:
                        self._changed.wait(timeout=5)  # retry a failed patch after a pause
                    continue
            if stopping:
                return

    def _patch(self, busy: bool) -> bool:
        try:
            url, headers, verify = _own_pod_request(self._config)
        except OSError as exc:
            logs.warning("pod_annotation_failed", reason=f"no service-account token: {exc}")
            return False
        body = {"metadata": {"annotations": {ANNOTATION: "true" if busy else None}}}
        try:
            response = requests.patch(
                url, data=json.dumps(body), timeout=TIMEOUT, verify=verify,
                headers={**headers, "Content-Type": "application/merge-patch+json"},
            )
        except requests.RequestException as exc:
            logs.warning("pod_annotation_failed", error=type(exc).__name__)
            return False
        if response.status_code >= 300:
            logs.warning("pod_annotation_failed", status=response.status_code)
            return False
        logs.event("pod_annotation_set" if busy else "pod_annotation_removed")
        return True


def read_own_pod(config: AgentConfig) -> dict[str, Any] | None:
    """The agent's own pod object from the API (the ``get`` the annotation grant includes),
    or None outside a cluster or when the API does not answer (one bounded attempt)."""
    if not (config.kube_api_url and config.pod_name):
        return None
    try:
        url, headers, verify = _own_pod_request(config)
        response = requests.get(url, timeout=TIMEOUT, verify=verify, headers=headers)
    except (OSError, requests.RequestException) as exc:
        logs.warning("pod_read_failed", error=type(exc).__name__)
        return None
    if response.status_code != 200:
        logs.warning("pod_read_failed", status=response.status_code)
        return None
    try:
        pod = response.json()
    except ValueError:
        logs.warning("pod_read_failed", error="not JSON")
        return None
    return pod if isinstance(pod, dict) else None


def _own_pod_request(config: AgentConfig) -> tuple[str, dict[str, str], Any]:
    """URL, auth header and TLS verification for the agent's own pod; OSError without a
    service-account token."""
    sa_dir = config.kube_serviceaccount_dir
    with open(os.path.join(sa_dir, "token"), encoding="utf-8") as handle:
        token = handle.read().strip()
    ca_path = os.path.join(sa_dir, "ca.crt")
    verify: Any = ca_path if os.path.exists(ca_path) else True
    url = (f"{config.kube_api_url}/api/v1/namespaces/{_namespace(config)}"
           f"/pods/{config.pod_name}")
    return url, {"Authorization": f"Bearer {token}"}, verify


def _namespace(config: AgentConfig) -> str:
    if config.pod_namespace:
        return config.pod_namespace
    path = os.path.join(config.kube_serviceaccount_dir, "namespace")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return "default"
