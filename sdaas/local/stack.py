"""``make local``: the whole asynchronous path on this machine, with no AWS account.

:class:`LocalStack` starts, in order, each as a child process on ``127.0.0.1``:

1. the AWS emulator (moto's server with the fixes in :mod:`sdaas.local.emulator`);
2. the real ``ServerlessIngress`` for the configured runtimes, synthesized with the AWS
   provider's endpoints pointed at the emulator and applied with Terraform (providers from
   ``TF_PLUGIN_DIR`` when set: ``terraform init -plugin-dir``) — :mod:`sdaas.local.deploy`;
3. the API adapter (:mod:`sdaas.local.api_adapter`): the deployed routes, API key
   check and Lambda handlers behind ``http://127.0.0.1:<port>/<stage>``; and the event
   source poller (:mod:`sdaas.local.event_sources`), which runs the deployed SQS event
   source mappings (the dead-letter consumer, the webhook deliverer) with the functions'
   real handlers;
4. per runtime, a PREVIEW runtime (:mod:`sdaas.local.preview`: placeholder images,
   not a model) and the real queue agent (``python -m agent``) beside it. An agent that
   dies is started again after a growing delay (``AGENT_RESTART_DELAYS``), as the kubelet
   restarts a pod's container; its pid is in ``<workdir>/run/agent-<runtime>.pid`` for the
   preview's ``[preview:kill-agent]`` marker.

Local mode, and nothing else, sets ``WEBHOOK_ALLOW_LOOPBACK=true`` for the API adapter
(ingest), the agents and the deliverer: webhook receivers on this machine can be tried.

It writes ``<workdir>/connection.json`` (``endpoint``, ``api_key``, ...) for tools and tests,
``<workdir>/state.json`` (the processes) for ``down``, and one example request per runtime
(:mod:`sdaas.local.examples`). It holds ``<workdir>/local.lock`` for its whole life
(:mod:`sdaas.local.workdir`).

Stopping (``stop()``, Ctrl-C, SIGTERM from ``python -m sdaas.local down``) ends the
agents first (SIGTERM: they release what they hold), then the runtimes, the adapter and the
emulator, each process group with SIGKILL after a grace period
(:mod:`sdaas.local.processes`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from sdaas.config import RuntimeConfig, config_path, load_config
from sdaas.local import deploy
from sdaas.local.environment import INSTANCE_ENV, agent_environment, process_environment, scrubbed
from sdaas.local.errors import LocalStackError
from sdaas.local.examples import write_examples
from sdaas.local.processes import (
    STOP_GRACE_SECONDS,
    Child,
    pdeathsig_preexec,
    signals_ignored,
)
from sdaas.local.progress import Progress, TerminalProgress
from sdaas.local.settings import Connection, LocalSettings
from sdaas.local.workdir import (
    CONNECTION_FILE,
    LOCK_FILE,
    STATE_FILE,
    acquire_lock,
    read_json,
    release_lock,
    write_json,
)
from sdaas.terraform import Terraform, TerraformError, check_mirror
from task_contract.webhook import ALLOW_LOOPBACK_ENV

AGENT_READY_TIMEOUT_SECONDS = 90.0
# Seconds before an agent that died is started again: the n-th restart waits the n-th value
# (the last one from then on), a shortened form of the kubelet's CrashLoopBackOff.
AGENT_RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 10.0)
# The local-mode settings of the programs that check webhooks (never set outside local mode).
LOCAL_MODE_ENV = {ALLOW_LOOPBACK_ENV: "true"}
# The functions' local-mode settings: loopback webhook receivers, and webhook retries after
# 1 s doubling up to 2 s, so a failing receiver reaches the dead-letter queue while one watches.
LOCAL_FUNCTION_SETTINGS = {**LOCAL_MODE_ENV, "WEBHOOK_RETRY_BASE_SECONDS": "1",
                           "WEBHOOK_RETRY_MAX_SECONDS": "2"}


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
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        self.restarts: dict[str, int] = {}  # per agent child: times started again
        plugin_dir = self.settings.tf_plugin_dir
        if plugin_dir is None and os.environ.get("TF_PLUGIN_DIR"):
            plugin_dir = Path(os.environ["TF_PLUGIN_DIR"])
        self.plugin_dir = plugin_dir

    # -- paths ---------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.workdir / LOCK_FILE

    @property
    def state_path(self) -> Path:
        return self.workdir / STATE_FILE

    @property
    def connection_path(self) -> Path:
        return self.workdir / CONNECTION_FILE

    # -- start -----------------------------------------------------------------------------------
    def start(self) -> Connection:
        """Bring everything up; on any failure stop what was started and raise."""
        started = time.monotonic()
        self._lock_handle = acquire_lock(self.workdir)
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
        if self.plugin_dir is not None:
            try:
                check_mirror(self.plugin_dir)
            except TerraformError as exc:
                raise LocalStackError(str(exc)) from None
        for directory in (self.logs, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for old in self.logs.glob("*.log"):
            old.unlink()
        self._write_state(phase="starting")

        self.progress.step("AWS emulator (moto) on 127.0.0.1")
        emulator = self._spawn("emulator", ["-m", "sdaas.local", "emulator"],
                               ready=True)
        self.emulator_endpoint = emulator.wait_ready()["endpoint"]
        self._write_state(phase="starting")
        self.progress.done(f"AWS emulator on {self.emulator_endpoint}")

        self.progress.step("synthesizing ServerlessIngress against the emulator")
        stack_dir = deploy.synthesize_in_child(
            self.config_file, str(self.emulator_endpoint), self.workdir / "cdktf.out",
            log=self.logs / "synth.log", env=self._base_env(), cwd=self.workdir)
        self.progress.done(f"synthesized {stack_dir.relative_to(self.workdir)}")
        try:
            self._apply(stack_dir)
        except TerraformError as exc:
            raise LocalStackError(str(exc)) from None

        self.progress.step("API adapter, event source poller and preview runtimes")
        adapter = self._start_adapter()
        event_sources = self._spawn("event-sources", [
            "-m", "sdaas.local.event_sources", "--emulator", str(self.emulator_endpoint),
            "--region", config.region,
            *[arg for name, value in LOCAL_FUNCTION_SETTINGS.items()
              for arg in ("--set", f"{name}={value}")]], ready=True)
        previews = {runtime.name: self._spawn(
            f"preview-{runtime.name}",
            ["-m", "sdaas.local.preview", "--type", runtime.type,
             "--seconds-per-image", str(self.settings.seconds_per_image),
             "--agent-pid-file", str(self._agent_pid_file(runtime.name)),
             *[arg for model in runtime.models for arg in ("--model", model)]],
            ready=True) for runtime in config.runtimes}
        endpoint = adapter.wait_ready()["endpoint"]
        mapped = event_sources.wait_ready()["mappings"]
        for name, preview in previews.items():
            self.runtime_urls[name] = preview.wait_ready()["url"]
        self._write_state(phase="starting")
        self.progress.done(f"API on {endpoint}; {mapped} event source mapping(s) polled; "
                           "preview runtimes "
                           + ", ".join(f"{n} {u}" for n, u in self.runtime_urls.items()))

        self.progress.step("queue agents")
        agents = [self._start_agent(runtime) for runtime in config.runtimes]
        for agent in agents:
            agent.wait_log('"event":"runtime_ready"', AGENT_READY_TIMEOUT_SECONDS)
        self._keeper = threading.Thread(target=self._keep_agents_running,
                                        name="agent-keeper", daemon=True)
        self._keeper.start()
        self.progress.done(f"{len(agents)} queue agent(s) polling their queues")

        self.connection = Connection(
            endpoint=endpoint, api_key=self.outputs["api_key_value"],
            aws_endpoint_url=self.emulator_endpoint, region=config.region,
            output_bucket=self.outputs["output_bucket"], pid=os.getpid(),
            task_table=self.outputs["task_table"],
            queue_urls=dict(self.outputs["queue_urls"]),
            dead_letter_queue_urls=dict(self.outputs["dead_letter_queue_urls"]))
        write_json(self.connection_path, self.connection.as_json(), private=True)
        self.example_files = write_examples(config.runtimes, self.workdir / "examples")
        self._write_state(phase="running")
        self.progress.info(f"Local stack up in {time.monotonic() - started:.0f}s.")

    def _apply(self, stack_dir: Path) -> None:
        terraform = Terraform(
            stack_dir, binary=self.settings.terraform,
            # The instance id makes its provider plugins findable as ours.
            env={**scrubbed(), INSTANCE_ENV: self.instance},
            log_path=self.logs / "terraform.log", plugin_dir=self.plugin_dir,
            preexec_fn=pdeathsig_preexec())
        self._terraform = terraform
        for stale in stack_dir.glob("terraform.tfstate*"):
            stale.unlink()  # a state of resources in an emulator that is gone
        source = f"-plugin-dir={self.plugin_dir}" if self.plugin_dir else "the registry"
        self.progress.step(f"terraform init (providers from {source})")
        terraform.init()
        self.progress.done("terraform init")
        self.progress.step("terraform apply to the emulator (about two minutes: the AWS "
                           "provider waits for SQS attributes to settle)")
        deploy.apply(terraform, self.progress)
        self.outputs = terraform.outputs()
        self._terraform = None
        self.progress.done(f"terraform apply: {len(self._resources(stack_dir))} resources")

    @staticmethod
    def _resources(stack_dir: Path) -> list[str]:
        state = read_json(stack_dir / "terraform.tfstate") or {}
        return [r.get("name", "") for r in state.get("resources", [])
                if r.get("mode") == "managed"]

    def _start_adapter(self) -> Child:
        host = urlsplit(self.outputs["api_endpoint"]).hostname or ""
        api_id = host.split(".", 1)[0]
        return self._spawn("api", [
            "-m", "sdaas.local.api_adapter", "--emulator", str(self.emulator_endpoint),
            "--region", self.config.region, "--api-id", api_id,
            "--stage", self.config.api.stage_name, "--port", str(self.settings.api_port),
        ], ready=True, extra_env=LOCAL_MODE_ENV)

    def _agent_pid_file(self, runtime: str) -> Path:
        return self.run_dir / f"agent-{runtime}.pid"

    def _start_agent(self, runtime: RuntimeConfig) -> Child:
        env = agent_environment(runtime, self.config, self.outputs,
                                self.runtime_urls[runtime.name])
        env["LOG_LEVEL"] = self.settings.log_level
        env.update(LOCAL_MODE_ENV)
        env.update(self.settings.agent_env)
        child = self._spawn(f"agent-{runtime.name}", ["-m", "agent"], extra_env=env)
        pid_file = self._agent_pid_file(runtime.name)
        temporary = pid_file.with_name(pid_file.name + ".tmp")
        temporary.write_text(f"{child.pid}\n")
        temporary.replace(pid_file)
        return child

    def _keep_agents_running(self) -> None:
        """Start an agent that died again, after the next of ``AGENT_RESTART_DELAYS``."""
        while not self._stopping.wait(0.25):
            for runtime in self.config.runtimes:
                name = f"agent-{runtime.name}"
                child = self.children.get(name)
                if child is None or child.alive():
                    continue
                count = self.restarts.get(name, 0)
                delay = AGENT_RESTART_DELAYS[min(count, len(AGENT_RESTART_DELAYS) - 1)]
                code = child.proc.poll() if child.proc is not None else None
                self.progress.info(f"{name} ended (exit status {code}); "
                                   f"starting it again in {delay:g}s, as the kubelet restarts "
                                   f"a container (restart {count + 1})")
                if self._stopping.wait(delay):
                    return
                self.restarts[name] = count + 1
                self._start_agent(runtime)

    def _base_env(self) -> dict[str, str]:
        return process_environment(region=self.config.region, instance=self.instance,
                                   emulator_endpoint=self.emulator_endpoint)

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

    # -- running ---------------------------------------------------------------------------------
    def supervise(self, stop: threading.Event | None = None) -> int:
        """Block until ``stop`` is set (0) or a process other than an agent (agents are
        restarted) dies (1, with its log tail)."""
        stop = stop or threading.Event()
        while not stop.wait(0.5):
            for child in list(self.children.values()):
                if not child.alive() and not child.name.startswith("agent-"):
                    self.progress.info(str(child.failure("stopped unexpectedly")))
                    return 1
        return 0

    # -- stop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything this stack started; idempotent; never raises for a dead child."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._keeper is not None:
            self._keeper.join()
        if self._terraform is not None:
            self._terraform.kill()
        order = sorted(self.children.values(), key=lambda c: (
            0 if c.name.startswith("agent-") else
            1 if c.name.startswith("preview-") else
            2 if c.name in ("api", "event-sources") else 3))
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
        for leftover in self.run_dir.glob("*.*") if self.run_dir.exists() else []:
            if leftover.name.endswith((".ready", ".ready.tmp", ".pid", ".pid.tmp")):
                leftover.unlink(missing_ok=True)
        self._release_lock()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lock and state ------------------------------------------------------------------------
    def _release_lock(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        if handle is not None:
            release_lock(handle)

    def _write_state(self, phase: str) -> None:
        state = {
            "pid": os.getpid(), "instance": self.instance, "phase": phase,
            "config_file": str(self.config_file),
            "endpoint": self.connection.endpoint if self.connection else None,
            "emulator": self.emulator_endpoint,
            "children": {name: {"pid": c.pid, "port": c.info.get("port"),
                                "log": str(c.log_path),
                                **({"restarts": self.restarts[name]}
                                   if name in self.restarts else {})}
                         for name, c in list(self.children.items())},
        }
        write_json(self.state_path, state)

