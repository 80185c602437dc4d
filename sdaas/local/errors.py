"""What goes wrong in local mode, as exceptions the command line turns into exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LocalStackError(RuntimeError):
    """Starting or running the local stack failed; the message says what and where to look."""


class AlreadyRunning(LocalStackError):
    """Another local stack holds the workdir's lock."""

    def __init__(self, workdir: Path, state: dict[str, Any] | None) -> None:
        self.workdir = workdir
        self.state = state or {}
        pid = self.state.get("pid", "?")
        endpoint = self.state.get("endpoint")
        where = f"serving {endpoint}" if endpoint else "still starting"
        super().__init__(
            f"a local stack is already running from {workdir} (pid {pid}, {where}); use it, "
            f"or stop it with Ctrl-C in its terminal or `make local-down`")


class StopRequested(KeyboardInterrupt):
    """SIGTERM or SIGHUP asked the stack to stop (handled like Ctrl-C)."""

