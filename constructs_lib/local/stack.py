"""``make local``: the whole asynchronous path on this machine, with no AWS account.

:class:`LocalStack` starts, in order, each as a child process on ``127.0.0.1``:

1. the AWS emulator (moto's server with the fixes in :mod:`constructs_lib.local.emulator`);
2. the real ``ServerlessIngress`` for the configured runtimes, synthesized with the AWS
   provider's endpoints pointed at the emulator and applied with Terraform (providers from
   ``TF_PLUGIN_DIR`` when set: ``terraform init -plugin-dir``);
3. the API adapter (:mod:`constructs_lib.local.api_adapter`): the deployed routes, API key
   check and Lambda handlers behind ``http://127.0.0.1:<port>/<stage>``;
4. per runtime, a PREVIEW runtime (:mod:`constructs_lib.local.preview`: placeholder images,
   not a model) and the real queue agent (``python -m agent``) beside it.

It writes ``<workdir>/connection.json`` (``endpoint``, ``api_key``, ...) for tools and tests,
and ``<workdir>/state.json`` (the processes) for ``down``. ``<workdir>/local.lock`` is held
(``flock``) for the stack's whole life: a second stack in the same directory is refused
with the running one's endpoint, and a stack that died leaves no stale lock.

Stopping (``stop()``, Ctrl-C, SIGTERM from ``python -m constructs_lib.local down``) ends the
agents first (SIGTERM: they release what they hold), then the runtimes, the adapter and the
emulator, each process group with SIGKILL after a grace period. Children also get SIGTERM
if the orchestrating thread dies (Linux ``PR_SET_PDEATHSIG``), and ``down`` kills any
process of a dead stack it can prove is one of ours (its environment carries the stack's
instance id).

The emulated resources are never destroyed with Terraform: their only copy is the emulator's
memory, which dies with its process, and each start applies to a fresh emulator with a fresh
state file. So the output bucket needs no ``force_destroy`` in local mode.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from constructs_lib.config import Config, LocalState, RuntimeConfig, config_path, load_config
from constructs_lib.local.emulator import FAKE_CREDENTIALS, LOOPBACK

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds constructs_lib/, agent/, lambda_src/
DEFAULT_WORKDIR = Path(".local")
INSTANCE_ENV = "SD_LOCAL_INSTANCE"
READY_TIMEOUT_SECONDS = 60.0
AGENT_READY_TIMEOUT_SECONDS = 90.0
TERRAFORM_TIMEOUT_SECONDS = 900.0
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 40
# Variables of the user's shell that must never reach a local-mode process: they would point
# the AWS SDKs and Terraform at a real account or another endpoint.
_SCRUBBED_PREFIXES = ("AWS_",)


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


# --- progress ---------------------------------------------------------------------------------


class Progress(Protocol):
    def step(self, text: str) -> None: ...
    def update(self, text: str) -> None: ...
    def done(self, text: str) -> None: ...
    def info(self, text: str) -> None: ...


class TerminalProgress:
    """Progress lines on a stream: one rewritten line on a terminal, throttled lines
    elsewhere (CI logs)."""

    def __init__(self, stream: IO[str] | None = None, interval_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval_seconds
        self._clock = clock
        self._last: float | None = None  # when the last update was written (None: none yet)
        self._open = False
        self._step_started = clock()
        self._lock = threading.Lock()

    def _write(self, text: str, *, final: bool) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r\033[K" + text + ("\n" if final else ""))
                self._open = not final
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def step(self, text: str) -> None:
        self._step_started = self._clock()
        self._last = None
        self._write(f"  ... {text}", final=not self.tty)

    def update(self, text: str) -> None:
        now = self._clock()
        if not self.tty and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self._write(f"  ... {text}", final=not self.tty)

    def done(self, text: str) -> None:
        seconds = self._clock() - self._step_started
        self._write(f"  ok  {text} ({seconds:.1f}s)", final=True)

    def info(self, text: str) -> None:
        if self._open:
            self._write("", final=True)
        self._write(text, final=True)


class RecordingProgress:
    """Collects progress lines (tests), optionally echoing them."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self._echo = echo

    def _add(self, text: str) -> None:
        self.lines.append(text)
        if self._echo is not None:
            self._echo(text)

    def step(self, text: str) -> None:
        self._add(f"... {text}")

    def update(self, text: str) -> None:
        self._add(f"... {text}")

    def done(self, text: str) -> None:
        self._add(f"ok {text}")

    def info(self, text: str) -> None:
        self._add(text)


# --- child processes --------------------------------------------------------------------------


def _pdeathsig_preexec() -> Callable[[], None] | None:
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
                preexec_fn=_pdeathsig_preexec(),  # noqa: PLW1509 - only calls prctl
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


# --- settings, connection -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    """How the local stack runs (the configuration file says what it deploys)."""

    workdir: Path = DEFAULT_WORKDIR
    config_file: Path | None = None  # None: SD_CONFIG, config.yaml or the example
    seconds_per_image: float = 1.0  # the preview runtimes' fixed time per image
    api_port: int = 0  # 0: a free port
    tf_plugin_dir: Path | None = None  # None: TF_PLUGIN_DIR from the environment, if set
    terraform: str = "terraform"
    agent_env: Mapping[str, str] = field(default_factory=dict)  # extra agent variables
    log_level: str = "INFO"


@dataclass(frozen=True)
class Connection:
    """What a client needs, written to ``connection.json``."""

    endpoint: str
    api_key: str
    aws_endpoint_url: str
    region: str
    output_bucket: str
    pid: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def agent_environment(runtime: RuntimeConfig, config: Config, outputs: Mapping[str, Any],
                      runtime_url: str) -> dict[str, str]:
    """The queue agent's variables (ARCHITECTURE §6) for one runtime of the local stack."""
    return {
        "SQS_QUEUE_URL": outputs["queue_urls"][runtime.name],
        "SNS_TOPIC_ARN": outputs["result_topic_arn"],
        "S3_BUCKET": outputs["output_bucket"],
        "TASK_TABLE": outputs["task_table"],
        "RUNTIME_TYPE": runtime.type,
        "RUNTIME_NAME": runtime.name,
        "API_BASE_URL": runtime_url,
        "DYNAMIC_SD_MODEL": "true" if runtime.dynamic_model else "false",
        "TASK_TTL_DAYS": str(config.outputs.task_ttl_days),
        "AGENT_TASK_TIMEOUT_SECONDS": str(runtime.task_timeout_seconds),
        # Short waits so Ctrl-C is quick and retries show up while someone watches.
        "AGENT_WAIT_TIME_SECONDS": "2",
        "AGENT_SHUTDOWN_GRACE_SECONDS": "5",
        "AGENT_RETRY_DELAY_SECONDS": "1",
        "AGENT_RETRY_DELAY_MAX_SECONDS": "4",
        "AGENT_COMFYUI_POLL_SECONDS": "0.05",
        # Its health server binds every interface (for the kubelet): off on a workstation.
        "AGENT_HEALTH_PORT": "0",
        "AGENT_POD_ANNOTATION": "false",
    }


# --- Terraform ------------------------------------------------------------------------------

_PLAN_RE = re.compile(r"Plan: (\d+) to add")
_DONE_RE = re.compile(r"^(\S+): Creation complete after")
_STILL_RE = re.compile(r"^(\S+): Still creating\.\.\. \[(?:\d+m)?\d+s elapsed\]")


class Terraform:
    """The ``terraform`` binary in the local stack's directory, output to a log file."""

    def __init__(self, binary: str, workdir: Path, log_path: Path,
                 plugin_dir: Path | None) -> None:
        found = shutil.which(binary)
        if found is None:
            raise LocalStackError(f"terraform is not on the PATH ({binary!r}); install "
                                  "Terraform 1.10+ (https://developer.hashicorp.com/terraform)")
        self.binary = found
        self.workdir = workdir
        self.log_path = log_path
        self.plugin_dir = plugin_dir
        self.proc: subprocess.Popen[str] | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        cli_config = env.get("TF_CLI_CONFIG_FILE")
        if cli_config and not Path(cli_config).exists():
            del env["TF_CLI_CONFIG_FILE"]  # only a warning on every command otherwise
        self.env = env

    def run(self, *args: str, on_line: Callable[[str], None] | None = None,
            timeout: float = TERRAFORM_TIMEOUT_SECONDS, stdout_only: bool = False) -> str:
        """Run one command; its output (stdout only with ``stdout_only``) is returned and
        logged; a failure raises with the last lines."""
        argv = [self.binary, *args, "-no-color"]
        output: list[str] = []
        deadline = time.monotonic() + timeout
        with self.log_path.open("a") as log:
            log.write(f"$ terraform {' '.join(args)}\n")
            log.flush()
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, env=self.env, stdout=subprocess.PIPE,
                stderr=log if stdout_only else subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True, preexec_fn=_pdeathsig_preexec(),  # noqa: PLW1509
            )
            try:
                assert self.proc.stdout is not None
                for line in self.proc.stdout:
                    log.write(line)
                    output.append(line)
                    if on_line is not None:
                        on_line(line.rstrip("\n"))
                    if time.monotonic() > deadline:
                        raise LocalStackError(f"terraform {args[0]} took more than "
                                              f"{timeout:.0f}s")
                code = self.proc.wait()
            finally:
                self.kill()
        if code != 0:
            raise LocalStackError(f"terraform {args[0]} failed (exit {code}). Last lines of "
                                  f"{self.log_path}:\n" + "".join(output[-LOG_TAIL_LINES:]))
        return "".join(output)

    def kill(self) -> None:
        """End a running terraform and its provider plugins (its process group)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def init(self) -> None:
        args = ["init", "-input=false"]
        if self.plugin_dir is not None:
            args.append(f"-plugin-dir={self.plugin_dir}")
        self.run(*args)

    def apply(self, progress: Progress) -> None:
        total = 0
        done: set[str] = set()
        waiting: dict[str, str] = {}
        started = time.monotonic()

        def on_line(line: str) -> None:
            nonlocal total
            plan = _PLAN_RE.search(line)
            if plan:
                total = int(plan.group(1))
            finished = _DONE_RE.match(line)
            if finished:
                done.add(finished.group(1))
                waiting.pop(finished.group(1), None)
            still = _STILL_RE.match(line)
            if still:
                waiting[still.group(1)] = line
            elapsed = time.monotonic() - started
            if not total:
                progress.update(f"terraform apply: planning, {elapsed:.0f}s")
                return
            slow = sorted(waiting)
            hint = f"; waiting on {slow[0].split('.')[0]}" if slow else ""
            progress.update(f"terraform apply: {len(done)}/{total} resources created, "
                            f"{elapsed:.0f}s{hint}")

        self.run("apply", "-auto-approve", "-input=false", on_line=on_line)

    def outputs(self) -> dict[str, Any]:
        document = json.loads(self.run("output", "-json", stdout_only=True))
        return {name: value["value"] for name, value in document.items()}


def synthesize(config: Config, endpoint: str, outdir: Path) -> Path:
    """Write the local stack (``ServerlessIngress`` against ``endpoint``); its directory.

    The state backend is always a local file in local mode, whatever the configuration
    says: the emulated resources must never reach a shared state.
    """
    from constructs_lib._cdktf import App  # noqa: PLC0415 - heavy: jsii and Node.js
    from constructs_lib.app import Emulation, build_ingress_stack  # noqa: PLC0415

    local = config.model_copy(update={"state": LocalState()})
    app = App(outdir=str(outdir))
    stack = build_ingress_stack(app, local, emulation=Emulation(endpoint=endpoint))
    app.synth()
    return outdir / "stacks" / stack.node.id


# --- the stack ------------------------------------------------------------------------------


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


class LocalStack:
    """The local stack in ``settings.workdir``: ``start()``, ``supervise()``, ``stop()``."""

    def __init__(self, settings: LocalSettings | None = None,
                 progress: Progress | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.progress: Progress = progress or TerminalProgress()
        self.config_file = Path(self.settings.config_file or config_path())
        self.config = load_config(self.config_file)
        self.workdir = self.settings.workdir.resolve()
        self.logs = self.workdir / "logs"
        self.run_dir = self.workdir / "run"
        self.instance = uuid.uuid4().hex
        self.children: dict[str, Child] = {}
        self.outputs: dict[str, Any] = {}
        self.connection: Connection | None = None
        self.emulator_endpoint: str | None = None
        self.runtime_urls: dict[str, str] = {}
        self.example_files: dict[str, Path] = {}
        self._terraform: Terraform | None = None
        self._lock_handle: IO[str] | None = None
        self._stopped = False
        plugin_dir = self.settings.tf_plugin_dir
        if plugin_dir is None and os.environ.get("TF_PLUGIN_DIR"):
            plugin_dir = Path(os.environ["TF_PLUGIN_DIR"])
        self.plugin_dir = plugin_dir

    # -- paths ---------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.workdir / "local.lock"

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    @property
    def connection_path(self) -> Path:
        return self.workdir / "connection.json"

    # -- start -----------------------------------------------------------------------------------
    def start(self) -> Connection:
        """Bring everything up; on any failure stop what was started and raise."""
        started = time.monotonic()
        self._acquire_lock()
        try:
            self._start(started)
        except BaseException as exc:
            self.progress.info(f"Stopping what was started ({type(exc).__name__}) ...")
            with signals_ignored():
                self.stop()
            raise
        assert self.connection is not None
        return self.connection

    def _start(self, started: float) -> None:
        config = self.config
        runtimes = ", ".join(f"{r.name} ({r.type})" for r in config.runtimes)
        self.progress.info(f"Local stack from {self.config_file.name}: runtimes {runtimes}")
        if self.plugin_dir is not None and not (
                self.plugin_dir / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            raise LocalStackError(f"TF_PLUGIN_DIR={self.plugin_dir} holds no "
                                  "registry.terraform.io/hashicorp/aws provider")
        for directory in (self.logs, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for old in self.logs.glob("*.log"):
            old.unlink()
        self._write_state(phase="starting")

        self.progress.step("AWS emulator (moto) on 127.0.0.1")
        emulator = self._spawn("emulator", ["-m", "constructs_lib.local", "emulator"],
                               ready=True)
        self.emulator_endpoint = emulator.wait_ready()["endpoint"]
        self._write_state(phase="starting")
        self.progress.done(f"AWS emulator on {self.emulator_endpoint}")

        self.progress.step("synthesizing ServerlessIngress against the emulator")
        stack_dir = self._synthesize()
        self.progress.done(f"synthesized {stack_dir.relative_to(self.workdir)}")

        terraform = Terraform(self.settings.terraform, stack_dir, self.logs / "terraform.log",
                              self.plugin_dir)
        terraform.env[INSTANCE_ENV] = self.instance  # so its plugins are findable as ours
        self._terraform = terraform
        for stale in stack_dir.glob("terraform.tfstate*"):
            stale.unlink()  # a state of resources in an emulator that is gone
        source = f"-plugin-dir={self.plugin_dir}" if self.plugin_dir else "the registry"
        self.progress.step(f"terraform init (providers from {source})")
        terraform.init()
        self.progress.done("terraform init")
        self.progress.step("terraform apply to the emulator (about two minutes: the AWS "
                           "provider waits for SQS attributes to settle)")
        terraform.apply(self.progress)
        self.outputs = terraform.outputs()
        self._terraform = None
        self.progress.done(f"terraform apply: {len(self._resources(stack_dir))} resources")

        self.progress.step("API adapter and preview runtimes")
        adapter = self._start_adapter()
        previews = {runtime.name: self._spawn(
            f"preview-{runtime.name}",
            ["-m", "constructs_lib.local.preview", "--type", runtime.type,
             "--seconds-per-image", str(self.settings.seconds_per_image),
             *[arg for model in runtime.models for arg in ("--model", model)]],
            ready=True) for runtime in config.runtimes}
        endpoint = adapter.wait_ready()["endpoint"]
        for name, preview in previews.items():
            self.runtime_urls[name] = preview.wait_ready()["url"]
        self._write_state(phase="starting")
        self.progress.done(f"API on {endpoint}; preview runtimes "
                           + ", ".join(f"{n} {u}" for n, u in self.runtime_urls.items()))

        self.progress.step("queue agents")
        agents = [self._start_agent(runtime) for runtime in config.runtimes]
        for agent in agents:
            agent.wait_log('"event":"runtime_ready"', AGENT_READY_TIMEOUT_SECONDS)
        self.progress.done(f"{len(agents)} queue agent(s) polling their queues")

        self.connection = Connection(
            endpoint=endpoint, api_key=self.outputs["api_key_value"],
            aws_endpoint_url=self.emulator_endpoint, region=config.region,
            output_bucket=self.outputs["output_bucket"], pid=os.getpid())
        write_json(self.connection_path, self.connection.as_json(), private=True)
        self.example_files = self._write_examples()
        self._write_state(phase="running")
        self.progress.info(f"Local stack up in {time.monotonic() - started:.0f}s.")

    def _synthesize(self) -> Path:
        outdir = self.workdir / "cdktf.out"
        log = self.logs / "synth.log"
        with log.open("ab") as handle:
            proc = subprocess.run(
                [sys.executable, "-m", "constructs_lib.local", "synth",
                 "--config", str(self.config_file), "--endpoint", str(self.emulator_endpoint),
                 "--outdir", str(outdir)],
                cwd=self.workdir, env=self._base_env(), stdout=subprocess.PIPE,
                stderr=handle, timeout=600, check=False, start_new_session=True,
                preexec_fn=_pdeathsig_preexec(),
            )
        if proc.returncode != 0:
            raise LocalStackError(f"synthesizing the local stack failed. Last lines of {log}:"
                                  f"\n{tail(log)}")
        return Path(proc.stdout.decode().strip().splitlines()[-1])

    @staticmethod
    def _resources(stack_dir: Path) -> list[str]:
        state = read_json(stack_dir / "terraform.tfstate") or {}
        return [r.get("name", "") for r in state.get("resources", [])
                if r.get("mode") == "managed"]

    def _start_adapter(self) -> Child:
        host = urlsplit(self.outputs["api_endpoint"]).hostname or ""
        api_id = host.split(".", 1)[0]
        return self._spawn("api", [
            "-m", "constructs_lib.local.api_adapter", "--emulator", str(self.emulator_endpoint),
            "--region", self.config.region, "--api-id", api_id,
            "--stage", self.config.api.stage_name, "--port", str(self.settings.api_port),
        ], ready=True)

    def _start_agent(self, runtime: RuntimeConfig) -> Child:
        env = agent_environment(runtime, self.config, self.outputs,
                                self.runtime_urls[runtime.name])
        env["LOG_LEVEL"] = self.settings.log_level
        env.update(self.settings.agent_env)
        return self._spawn(f"agent-{runtime.name}", ["-m", "agent"], extra_env=env)

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(FAKE_CREDENTIALS)
        python_path = [str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        env.update({
            "AWS_REGION": self.config.region, "AWS_DEFAULT_REGION": self.config.region,
            "AWS_EC2_METADATA_DISABLED": "true", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(python_path), INSTANCE_ENV: self.instance,
        })
        if self.emulator_endpoint:
            env["AWS_ENDPOINT_URL"] = self.emulator_endpoint
        return env

    def _spawn(self, name: str, args: list[str], *, ready: bool = False,
               extra_env: Mapping[str, str] | None = None) -> Child:
        env = self._base_env()
        env.update(extra_env or {})
        ready_file = self.run_dir / f"{name}.ready" if ready else None
        argv = [sys.executable, *args]
        if ready_file is not None:
            argv += ["--ready-file", str(ready_file)]
        child = Child(name, argv, env, self.logs / f"{name}.log", self.workdir, ready_file)
        self.children[name] = child
        child.start()
        self._write_state(phase="starting")
        return child

    def _write_examples(self) -> dict[str, Path]:
        """One ready-to-submit request per runtime, in ``<workdir>/examples``."""
        directory = self.workdir / "examples"
        directory.mkdir(exist_ok=True)
        files = {}
        for runtime in self.config.runtimes:
            if runtime.type == "sdwebui":
                task = {"metadata": {"id": f"hello-{runtime.name}", "runtime": runtime.name,
                                     "tasktype": "text-to-image", "prefix": "output"},
                        "content": {"prompt": "a lighthouse on a cliff at dawn",
                                    "steps": 16, "width": 512, "height": 512}}
            else:
                task = {"metadata": {"id": f"hello-{runtime.name}", "runtime": runtime.name,
                                     "tasktype": "pipeline", "prefix": "output"},
                        "content": example_workflow("a lighthouse on a cliff at dawn")}
            path = directory / f"{runtime.name}.json"
            write_json(path, {"task": task})
            files[runtime.name] = path
        return files

    # -- running ---------------------------------------------------------------------------------
    def supervise(self, stop: threading.Event | None = None) -> int:
        """Block until ``stop`` is set (0) or a process dies (1, with its log tail)."""
        stop = stop or threading.Event()
        while not stop.wait(0.5):
            for child in self.children.values():
                if not child.alive():
                    self.progress.info(str(child.failure("stopped unexpectedly")))
                    return 1
        return 0

    # -- stop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything this stack started; idempotent; never raises for a dead child."""
        if self._stopped:
            return
        self._stopped = True
        if self._terraform is not None:
            self._terraform.kill()
        order = sorted(self.children.values(), key=lambda c: (
            0 if c.name.startswith("agent-") else
            1 if c.name.startswith("preview-") else 2 if c.name == "api" else 3))
        agents = [c for c in order if c.name.startswith("agent-")]
        threads = [threading.Thread(target=c.stop, args=(STOP_GRACE_SECONDS,)) for c in agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for child in order:
            if child not in agents:
                child.stop(5.0)
        if self._lock_handle is None:
            return  # never owned the workdir (another stack runs there): touch nothing
        for path in (self.connection_path, self.state_path):
            path.unlink(missing_ok=True)
        for ready in self.run_dir.glob("*.ready*") if self.run_dir.exists() else []:
            ready.unlink(missing_ok=True)
        self._release_lock()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lock and state ------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        handle = self.lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(self.workdir, read_json(self.state_path)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle
        leftovers = read_json(self.state_path)
        if leftovers:  # a stack that died without cleaning up: end what is provably ours
            kill_leftovers(leftovers)
            self.state_path.unlink(missing_ok=True)
        self.connection_path.unlink(missing_ok=True)

    def _release_lock(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _write_state(self, phase: str) -> None:
        state = {
            "pid": os.getpid(), "instance": self.instance, "phase": phase,
            "config_file": str(self.config_file),
            "endpoint": self.connection.endpoint if self.connection else None,
            "emulator": self.emulator_endpoint,
            "children": {name: {"pid": c.pid, "port": c.info.get("port"),
                                "log": str(c.log_path)}
                         for name, c in self.children.items()},
        }
        write_json(self.state_path, state)


def example_workflow(prompt: str) -> dict[str, Any]:
    """ComfyUI's default text-to-image workflow in API format."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 42, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }


# --- finding and stopping a stack from outside ------------------------------------------------


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
    path = workdir / "local.lock"
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
    state = read_json(workdir / "state.json")
    if not lock_is_held(workdir):
        if state:
            killed = kill_leftovers(state)
            (workdir / "state.json").unlink(missing_ok=True)
            (workdir / "connection.json").unlink(missing_ok=True)
            if killed:
                say(f"no local stack was running, but its processes were: stopped "
                    f"{', '.join(killed)}")
                return 0
        say(f"no local stack is running from {workdir}")
        return 0
    pid = state.get("pid") if state else None
    if not isinstance(pid, int):
        with contextlib.suppress(OSError, ValueError):
            pid = int((workdir / "local.lock").read_text().strip())
    if not isinstance(pid, int):
        say(f"a local stack holds {workdir / 'local.lock'} but its pid is unknown")
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
