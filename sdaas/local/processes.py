"""The supervisor's side of local mode's child processes.

Each child runs in its own process group, its output in a log file; it is ready when it
writes its ready file (:mod:`sdaas.local._serve`) or prints a line; it is stopped with
SIGTERM to its group and SIGKILL after a grace period. Children also get SIGTERM if the
orchestrating thread dies (Linux ``PR_SET_PDEATHSIG``). The signal handlers here turn Ctrl-C,
SIGTERM and SIGHUP into an orderly stop, and keep a second signal from interrupting it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdaas.local.errors import LocalStackError, StopRequested

READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 40


def pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None  # the signal follows the creating thread, which may end first
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


@dataclass
class Child:
    """One child process in its own process group, its output in ``log_path``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path
    ready_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    def start(self) -> Child:
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=pdeathsig_preexec(),  # noqa: PLW1509 - only calls prctl
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self, what: str) -> LocalStackError:
        code = self.proc.poll() if self.proc is not None else None
        status = f"exited with status {code}" if code is not None else "is still running"
        return LocalStackError(f"{self.name} {what}: it {status}. Last lines of "
                               f"{self.log_path}:\n{tail(self.log_path)}")

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Wait for the ready file the service writes once it listens."""
        assert self.ready_file is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.info = json.loads(self.ready_file.read_text())
                return self.info
            if not self.alive():
                raise self.failure("did not start")
            time.sleep(0.05)
        raise self.failure(f"was not ready after {timeout:.0f}s")

    def wait_log(self, needle: str, timeout: float) -> None:
        """Wait until ``needle`` appears in the log (programs without a ready file)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if needle in self.log_path.read_text(errors="replace"):
                    return
            if not self.alive():
                raise self.failure("did not start")
            time.sleep(0.1)
        raise self.failure(f"was not ready after {timeout:.0f}s")

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the process group; SIGKILL what is left after ``grace_seconds``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)  # the leader's children, if any outlived it
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)



@contextlib.contextmanager
def signals_stop_the_stack() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise in the main thread (:class:`KeyboardInterrupt`,
    :class:`StopRequested`), also when SIGINT was inherited as ignored (a job started in the
    background by a script)."""

    def on_signal(signum: int, _frame: Any) -> None:
        raise StopRequested(signal.Signals(signum).name)

    handlers = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: on_signal,
                signal.SIGHUP: on_signal}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """While cleaning up, a second Ctrl-C or SIGTERM must not leave processes behind.

    Signal handlers belong to the main thread: elsewhere this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
