"""The preview runtime's ``[preview:kill-agent]`` marker: a task that kills the queue agent
calling the runtime, the way an out-of-memory kill ends the agent's container. It shows what
happens to a task no agent survives: its message goes back to the queue after the visibility
timeout, reaches the dead-letter queue after ``maxReceiveCount`` deliveries, and the
dead-letter consumer marks it failed.

``[preview:kill-agent]`` kills the agent on every request carrying it;
``[preview:kill-agent=N]`` on the first N requests with the same body (a retry of the same
task sends the same body; ComfyUI's per-agent ``client_id`` is left out of the comparison),
then the request is served: a redriven task completes, as it would once its cause is fixed.

The agent to kill is the one whose pid local mode writes to ``--agent-pid-file`` when it
starts (or restarts) the agent, and only if that process carries this local stack's
instance id: nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sdaas.local.workdir import is_ours

KILL_RE = re.compile(r"\[preview:kill-agent(?:=(\d+))?\]")
# The requests that run a generation: the ones a marker in the task reaches.
GENERATION_PATHS = frozenset({
    "/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/extra-single-image",
    "/sdapi/v1/extra-batch-images", "/prompt",
})


def request_key(raw: bytes) -> str:
    """What makes two requests "the same" for ``=N``: the body, without ``client_id``."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return hashlib.sha256(raw).hexdigest()
    if isinstance(document, dict):
        document.pop("client_id", None)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass
class AgentKiller:
    """Kills the agent named by ``pid_file`` for requests that carry the marker."""

    pid_file: Path | None
    instance: str | None
    _kills: dict[str, int] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def check(self, method: str, path: str, raw: bytes) -> str | None:
        """``None`` to serve the request; else what happened, for a 500 answer (which an
        agent that was killed never reads)."""
        if method != "POST" or path not in GENERATION_PATHS:
            return None
        match = KILL_RE.search(raw.decode("utf-8", "replace"))
        if match is None:
            return None
        limit = int(match.group(1)) if match.group(1) else None
        key = request_key(raw)
        with self._lock:
            done = self._kills.get(key, 0)
            if limit is not None and done >= limit:
                return None
            self._kills[key] = done + 1
        return self.kill()

    def kill(self) -> str:
        if self.pid_file is None or not self.instance:
            return ("the request asked the preview runtime to kill the queue agent "
                    "([preview:kill-agent]), but it was started without --agent-pid-file")
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return f"the request asked to kill the queue agent, but {self.pid_file} names none"
        if not is_ours(pid, self.instance):
            return f"the request asked to kill the queue agent, but pid {pid} is not ours"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return f"the preview runtime killed the queue agent (pid {pid}) ([preview:kill-agent])"
