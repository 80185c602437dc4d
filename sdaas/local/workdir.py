"""The local stack's directory: its lock, state and connection files, and finding and
stopping a stack from outside (``make local-down``, ``status``, a start after a crash).

``<workdir>/local.lock`` is held (``flock``) for a stack's whole life: a second stack in the
same directory is refused with the running one's endpoint, and a stack that died leaves no
stale lock. ``state.json`` names its processes; ``down`` kills any process of a dead stack
it can prove is one of ours (its environment carries the stack's instance id).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from sdaas.local.emulator import LOOPBACK
from sdaas.local.environment import INSTANCE_ENV
from sdaas.local.errors import AlreadyRunning

LOCK_FILE = "local.lock"
STATE_FILE = "state.json"
CONNECTION_FILE = "connection.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: Any, private: bool = False) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    if private:
        temporary.chmod(0o600)
    temporary.replace(path)



def acquire_lock(workdir: Path) -> IO[str]:
    """Hold ``workdir``'s lock for this process (until :func:`release_lock`); another stack
    holding it: :class:`AlreadyRunning`. What a stack that died without cleaning up left is
    ended first: its processes that are provably ours, its state and connection files."""
    workdir.mkdir(parents=True, exist_ok=True)
    handle = (workdir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(workdir, read_json(workdir / STATE_FILE)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    leftovers = read_json(workdir / STATE_FILE)
    if leftovers:
        kill_leftovers(leftovers)
        (workdir / STATE_FILE).unlink(missing_ok=True)
    (workdir / CONNECTION_FILE).unlink(missing_ok=True)
    return handle


def release_lock(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def _environment_of(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None


def is_ours(pid: int, instance: str) -> bool:
    """True when ``pid`` is alive and carries the stack's instance id in its environment."""
    environment = _environment_of(pid)
    return environment is not None and f"{INSTANCE_ENV}={instance}".encode() in \
        environment.split(b"\0")


def kill_leftovers(state: Mapping[str, Any]) -> list[str]:
    """SIGKILL the process groups of a stack's children that are provably still ours."""
    killed = []
    instance = str(state.get("instance") or "")
    for name, child in (state.get("children") or {}).items():
        pid = child.get("pid")
        if isinstance(pid, int) and instance and is_ours(pid, instance):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            killed.append(name)
    return killed


def lock_is_held(workdir: Path) -> bool:
    path = workdir / LOCK_FILE
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def stop_running(workdir: Path, timeout: float = 60.0,
                 say: Callable[[str], None] = print) -> int:
    """Stop the stack running from ``workdir`` (``make local-down``); 0 when nothing is left."""
    workdir = workdir.resolve()
    state = read_json(workdir / STATE_FILE)
    if not lock_is_held(workdir):
        if state:
            killed = kill_leftovers(state)
            (workdir / STATE_FILE).unlink(missing_ok=True)
            (workdir / CONNECTION_FILE).unlink(missing_ok=True)
            if killed:
                say(f"no local stack was running, but its processes were: stopped "
                    f"{', '.join(killed)}")
                return 0
        say(f"no local stack is running from {workdir}")
        return 0
    pid = state.get("pid") if state else None
    if not isinstance(pid, int):
        with contextlib.suppress(OSError, ValueError):
            pid = int((workdir / LOCK_FILE).read_text().strip())
    if not isinstance(pid, int):
        say(f"a local stack holds {workdir / LOCK_FILE} but its pid is unknown")
        return 1
    say(f"stopping the local stack (pid {pid}) ...")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while lock_is_held(workdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    if lock_is_held(workdir):
        say(f"it did not stop within {timeout:.0f}s: killing it and its processes")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if state:
            kill_leftovers(state)
        time.sleep(0.5)
    leftovers = []
    for name, child in ((state or {}).get("children") or {}).items():
        if isinstance(child.get("pid"), int) and is_ours(child["pid"], state["instance"]):
            leftovers.append(f"{name} (pid {child['pid']})")
        if isinstance(child.get("port"), int) and port_open(child["port"]):
            leftovers.append(f"{name} port {child['port']}")
    if leftovers:
        say("still running: " + ", ".join(leftovers))
        return 1
    say("stopped; nothing left running")
    return 0

