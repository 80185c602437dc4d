"""The real ComfyUI server for tests: its source, a cached virtual environment, a process.

* The source is a directory or an archive (``.tar.gz``, ``.tgz``, ``.zip``) named by
  ``SD_COMFYUI_SOURCE`` (``.ci/run`` sets it). Without it the tier is skipped with the reason,
  or fails when ``CI`` is set.
* The virtual environment (torch from PyPI through ComfyUI's own ``requirements.txt``, plus
  ``requests``, which ComfyUI imports without listing it) is built once per machine under
  ``$XDG_CACHE_HOME/sd-async-eks`` (default ``~/.cache/sd-async-eks``), in a directory named
  after the ComfyUI version and a hash of what is installed, so a new ComfyUI or Python gets a
  new environment and an unchanged one is reused. The first build takes minutes and about
  6 GB; concurrent sessions wait for each other's build (a file lock).
* Each test session copies the source to its own directory and starts ``main.py --cpu`` on
  127.0.0.1 on a free port with its own input and output directories, behind the same network
  fence as the agent processes (no connection leaves the machine), and stops it at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.agent.harness import FENCE, free_port

SOURCE_VARIABLE = "SD_COMFYUI_SOURCE"
PINNED_VERSION = "0.3.64"  # the version the recorded answers come from
PINNED_ARCHIVE = ("https://github.com/comfyanonymous/ComfyUI/archive/refs/tags/"
                  f"v{PINNED_VERSION}.tar.gz")
EXTRA_REQUIREMENTS = ("requests",)  # imported by app/frontend_management.py, not listed
INSTALL_TIMEOUT_SECONDS = 1800.0
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 30.0
_VERSION = re.compile(r"""__version__\s*=\s*["']([^"']+)["']""")


class SourceMissing(Exception):
    """SD_COMFYUI_SOURCE is unset or names nothing usable."""


@dataclass(frozen=True)
class ComfySource:
    """A ComfyUI source tree or archive, with what identifies its environment."""

    path: Path
    version: str
    requirements: str

    @classmethod
    def from_environment(cls) -> ComfySource:
        value = os.environ.get(SOURCE_VARIABLE)
        if not value:
            raise SourceMissing(
                f"{SOURCE_VARIABLE} is not set: the real-ComfyUI tier needs the ComfyUI source "
                f"(a directory or a .tar.gz/.zip archive of it: ComfyUI {PINNED_VERSION}, e.g. "
                f"{PINNED_ARCHIVE})")
        path = Path(value).expanduser()
        if not path.exists():
            raise SourceMissing(f"{SOURCE_VARIABLE}={value} does not exist")
        files = _read_source_files(path, ("comfyui_version.py", "requirements.txt"))
        match = _VERSION.search(files["comfyui_version.py"])
        if match is None:
            raise SourceMissing(f"{SOURCE_VARIABLE}={value}: comfyui_version.py has no version")
        if match.group(1) != PINNED_VERSION:
            raise SourceMissing(
                f"{SOURCE_VARIABLE}={value} is ComfyUI {match.group(1)}; the tier and its "
                f"recorded answers are for ComfyUI {PINNED_VERSION} ({PINNED_ARCHIVE})")
        return cls(path=path, version=match.group(1), requirements=files["requirements.txt"])

    @property
    def environment_key(self) -> str:
        """``comfyui-<version>-<hash>``: changes with the requirements or the Python."""
        digest = hashlib.sha256()
        for part in (self.requirements, "\n".join(EXTRA_REQUIREMENTS),
                     f"{sys.version_info.major}.{sys.version_info.minor}"):
            digest.update(part.encode())
            digest.update(b"\0")
        return f"comfyui-{self.version}-{digest.hexdigest()[:12]}"

    def copy_to(self, target: Path) -> Path:
        """Put the source tree at ``target`` (ComfyUI writes beside its own code)."""
        if self.path.is_dir():
            shutil.copytree(_tree_root(self.path), target)
            return target
        staging = Path(tempfile.mkdtemp(prefix="comfy-src-", dir=target.parent))
        if zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as archive:
                archive.extractall(staging)  # noqa: S202 - a source archive the tests are given
        else:
            with tarfile.open(self.path) as archive:
                archive.extractall(staging, filter="data")
        _tree_root(staging).rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        return target


def _tree_root(directory: Path) -> Path:
    """The directory holding ``main.py``: ``directory`` or its single top-level folder."""
    if (directory / "main.py").is_file():
        return directory
    children = [c for c in directory.iterdir() if c.is_dir()]
    if len(children) == 1 and (children[0] / "main.py").is_file():
        return children[0]
    raise SourceMissing(f"{directory} holds no ComfyUI main.py")


def _read_source_files(path: Path, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    if path.is_dir():
        root = _tree_root(path)
        for name in names:
            if (root / name).is_file():
                found[name] = (root / name).read_text()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                base = member.rstrip("/").split("/")
                if len(base) <= 2 and base[-1] in names:
                    found[base[-1]] = archive.read(member).decode()
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            for member in archive:
                parts = member.name.strip("./").split("/")
                if member.isfile() and len(parts) <= 2 and parts[-1] in names:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        found[parts[-1]] = handle.read().decode()
    else:
        raise SourceMissing(f"{path} is neither a directory nor a .tar.gz/.zip archive")
    missing = [name for name in names if name not in found]
    if missing:
        raise SourceMissing(f"{path} holds no {', '.join(missing)}: not a ComfyUI source")
    return found


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sd-async-eks"


@dataclass
class Environment:
    """The cached virtual environment for one ComfyUI source."""

    source: ComfySource
    root: Path = field(default_factory=cache_root)
    built_now: bool = False
    build_seconds: float = 0.0

    @property
    def directory(self) -> Path:
        return self.root / self.source.environment_key

    @property
    def python(self) -> Path:
        return self.directory / "venv" / "bin" / "python"

    @property
    def complete_marker(self) -> Path:
        return self.directory / "complete"

    def ensure(self) -> Path:
        """The environment's interpreter, building the environment first if needed."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / f"{self.source.environment_key}.lock"
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it
            if not (self.complete_marker.is_file() and self.python.is_file()):
                self._build()
        return self.python

    def _build(self) -> None:
        started = time.monotonic()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        requirements = self.directory / "requirements.txt"
        requirements.write_text(self.source.requirements + "\n"
                                + "\n".join(EXTRA_REQUIREMENTS) + "\n")
        log = self.directory / "install.log"
        venv = self.directory / "venv"
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", "-r", str(requirements)]]
        with log.open("wb") as handle:
            for command in steps:
                try:
                    code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT,
                                          timeout=INSTALL_TIMEOUT_SECONDS, check=False).returncode
                except subprocess.TimeoutExpired:
                    code = None
                if code != 0:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(
                        f"building the ComfyUI environment failed ({' '.join(command[:4])} ...: "
                        f"{'timed out' if code is None else f'exit {code}'}); log {log}:\n{tail}")
        self.complete_marker.write_text(f"{self.source.version}\n")
        self.built_now = True
        self.build_seconds = time.monotonic() - started


@dataclass
class ComfyServer:
    """One ComfyUI process on 127.0.0.1; ``start`` waits until it answers."""

    python: Path
    source: ComfySource
    workdir: Path
    extra_args: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    start_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def input_dir(self) -> Path:
        return self.workdir / "input"

    @property
    def output_dir(self) -> Path:
        return self.workdir / "output"

    @property
    def log_path(self) -> Path:
        return self.workdir / "comfyui.log"

    def start(self) -> ComfyServer:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        code = self.source.copy_to(self.workdir / "ComfyUI")
        self.input_dir.mkdir()  # must exist before start, or a video node fails to import
        self.output_dir.mkdir()
        self.port = free_port()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("AGENT_", "PYTHON"))}
        env.update({"PYTHONPATH": str(FENCE), "AGENT_TEST_NETWORK_FENCE": "1",
                    "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"})
        command = [str(self.python), "main.py", "--cpu", "--listen", "127.0.0.1",
                   "--port", str(self.port), "--input-directory", str(self.input_dir),
                   "--output-directory", str(self.output_dir), *self.extra_args]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=code, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ComfyUI did not answer /system_stats within "
                                   f"{START_TIMEOUT_SECONDS:.0f}s:\n{self.log_tail()}")
            time.sleep(0.5)
        self.start_seconds = time.monotonic() - started
        return self

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/system_stats", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
