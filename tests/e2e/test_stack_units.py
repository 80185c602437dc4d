"""The orchestration's parts that need no Terraform: the lock, finding and stopping what a
stack left behind (and nothing else), the agents' environment, progress output."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sdaas.config import EXAMPLE_CONFIG, load_config
from sdaas.local.environment import INSTANCE_ENV, agent_environment
from sdaas.local.errors import AlreadyRunning
from sdaas.local.examples import write_examples
from sdaas.local.progress import TerminalProgress
from sdaas.local.settings import LocalSettings
from sdaas.local.stack import LocalStack
from sdaas.local.workdir import is_ours, kill_leftovers, lock_is_held, stop_running
from tests.e2e.support import pid_alive, wait_for

OUTPUTS = {"queue_urls": {"sdruntime": "http://127.0.0.1:1/123/q1", "comfyui": "http://q2"},
           "result_topic_arn": "arn:aws:sns:us-west-2:123:results",
           "output_bucket": "bucket", "task_table": "tasks"}


def _sleeper(instance: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ}
    if instance is not None:
        env[INSTANCE_ENV] = instance
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                            start_new_session=True)


def test_the_agent_environment_follows_the_architecture() -> None:
    config = load_config(EXAMPLE_CONFIG)
    env = agent_environment(config.runtime("sdruntime"), config, OUTPUTS, "http://127.0.0.1:9")
    assert {k: env[k] for k in ("SQS_QUEUE_URL", "SNS_TOPIC_ARN", "S3_BUCKET", "TASK_TABLE",
                                "RUNTIME_TYPE", "RUNTIME_NAME", "API_BASE_URL",
                                "DYNAMIC_SD_MODEL")} == {
        "SQS_QUEUE_URL": "http://127.0.0.1:1/123/q1", "SNS_TOPIC_ARN": OUTPUTS[
            "result_topic_arn"], "S3_BUCKET": "bucket", "TASK_TABLE": "tasks",
        "RUNTIME_TYPE": "sdwebui", "RUNTIME_NAME": "sdruntime",
        "API_BASE_URL": "http://127.0.0.1:9", "DYNAMIC_SD_MODEL": "false"}
    assert env["AGENT_HEALTH_PORT"] == "0"  # it would bind every interface
    assert env["AGENT_TASK_TIMEOUT_SECONDS"] == "600"
    from agent.config import load_config as agent_config

    parsed = agent_config(env)  # a valid agent configuration
    assert parsed.health_port == 0 and parsed.wait_time_seconds == 2


def test_one_example_request_per_runtime_in_its_api_shape(tmp_path: Path) -> None:
    config = load_config(EXAMPLE_CONFIG)
    files = write_examples(config.runtimes, tmp_path / "examples")
    assert files == {r.name: tmp_path / "examples" / f"{r.name}.json" for r in config.runtimes}
    tasks = {name: json.loads(path.read_text())["task"] for name, path in files.items()}
    assert {name: (t["metadata"]["id"], t["metadata"]["runtime"], t["metadata"]["tasktype"])
            for name, t in tasks.items()} == {
        "sdruntime": ("hello-sdruntime", "sdruntime", "text-to-image"),
        "comfyui": ("hello-comfyui", "comfyui", "pipeline")}
    assert tasks["sdruntime"]["content"]["prompt"] == "a lighthouse on a cliff at dawn"
    workflow = tasks["comfyui"]["content"]
    assert {node["class_type"] for node in workflow.values()} >= {"KSampler", "SaveImage"}
    assert workflow["6"]["inputs"]["text"] == "a lighthouse on a cliff at dawn"


def test_leftovers_are_killed_only_when_provably_ours() -> None:
    ours, stranger = _sleeper("instance-a"), _sleeper(None)
    try:
        assert is_ours(ours.pid, "instance-a")
        assert not is_ours(stranger.pid, "instance-a")
        assert not is_ours(ours.pid, "instance-b")
        state = {"instance": "instance-a", "children": {
            "agent": {"pid": ours.pid}, "impostor": {"pid": stranger.pid}}}
        assert kill_leftovers(state) == ["agent"]
        assert ours.wait(timeout=10) != 0
        assert stranger.poll() is None
    finally:
        for proc in (ours, stranger):
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def test_down_without_a_stack_and_after_a_crash(tmp_path: Path) -> None:
    said: list[str] = []
    assert stop_running(tmp_path, say=said.append) == 0
    assert "no local stack is running" in said[-1]
    leftover = _sleeper("crashed")
    try:
        # The crashed stack's child is recognisable as ours once its environment is readable.
        deadline = time.monotonic() + 30
        while not is_ours(leftover.pid, "crashed") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_ours(leftover.pid, "crashed")
        (tmp_path / "state.json").write_text(json.dumps(
            {"pid": 1, "instance": "crashed", "children": {"emulator": {"pid": leftover.pid}}}))
        (tmp_path / "connection.json").write_text("{}")
        assert stop_running(tmp_path, say=said.append) == 0
        assert "stopped emulator" in said[-1]
        leftover.wait(timeout=10)
        assert not (tmp_path / "state.json").exists()
        assert not (tmp_path / "connection.json").exists()
    finally:
        if leftover.poll() is None:
            leftover.kill()
        leftover.wait()


def test_a_held_lock_refuses_a_second_stack_and_down_signals_its_holder(tmp_path: Path) -> None:
    """Another process holds the workdir (a running stack): start is refused with its
    endpoint, and ``down`` SIGTERMs it and waits for the lock."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, signal, sys, time\n"
        f"h = open({str(tmp_path / 'local.lock')!r}, 'a+')\n"
        "fcntl.flock(h, fcntl.LOCK_EX)\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        (tmp_path / "state.json").write_text(json.dumps(
            {"pid": holder.pid, "instance": "x", "phase": "running",
             "endpoint": "http://127.0.0.1:1234/prod", "children": {}}))
        assert lock_is_held(tmp_path)
        stack = LocalStack(LocalSettings(workdir=tmp_path, config_file=EXAMPLE_CONFIG))
        with pytest.raises(AlreadyRunning, match=r"http://127\.0\.0\.1:1234/prod"):
            stack.start()
        stack.stop()
        assert (tmp_path / "state.json").exists()  # the refused stack touched nothing
        said: list[str] = []
        assert stop_running(tmp_path, timeout=20, say=said.append) == 0
        assert holder.wait(timeout=10) == 0
        assert said[-1] == "stopped; nothing left running"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_progress_on_a_log_is_throttled_lines() -> None:
    stream = io.StringIO()
    clock = FakeClock(now=5.0)  # a machine up for 5 s: the first update is still written
    progress = TerminalProgress(stream, interval_seconds=10, clock=clock)
    progress.step("terraform apply")
    for count, at in enumerate((5.0, 9.0, 14.9, 15.0, 16.0, 25.0)):
        clock.now = at
        progress.update(f"{count}/61 resources")
    clock.now = 47.5
    progress.done("terraform apply")
    assert stream.getvalue().splitlines() == [
        "  ... terraform apply",
        "  ... 0/61 resources",  # t=5; t=9 and t=14.9 are within 10 s of it
        "  ... 3/61 resources",  # t=15; t=16 is within 10 s
        "  ... 5/61 resources",  # t=25
        "  ok  terraform apply (42.5s)",
    ]


def test_each_step_writes_its_first_update() -> None:
    stream = io.StringIO()
    clock = FakeClock()
    progress = TerminalProgress(stream, interval_seconds=3600, clock=clock)
    for step in ("init", "apply"):
        progress.step(step)
        progress.update(f"{step} 1")
        progress.update(f"{step} 2")  # throttled
    assert stream.getvalue().splitlines() == [
        "  ... init", "  ... init 1", "  ... apply", "  ... apply 1"]


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    progress = TerminalProgress(stream)
    progress.step("apply")
    progress.update("1/2")
    progress.update("2/2")
    progress.done("apply")
    assert stream.getvalue().count("\r\033[K") == 4
    assert stream.getvalue().endswith("\n")


def test_children_die_with_the_orchestrator(tmp_path: Path) -> None:
    """An orchestrator killed with SIGKILL takes its children along (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    script = tmp_path / "orchestrator.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from sdaas.local.processes import Child\n"
        f"c = Child('sleeper', [sys.executable, '-c', 'import time; time.sleep(60)'],\n"
        f"          {{}}, Path({str(tmp_path / 'c.log')!r}), Path('.')).start()\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(60)\n")
    orchestrator = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                    cwd=Path(__file__).resolve().parents[2])
    child = None
    try:
        assert orchestrator.stdout is not None
        child = int(orchestrator.stdout.readline())
        assert pid_alive(child)
        orchestrator.kill()
        orchestrator.wait(timeout=10)
        wait_for(lambda: not pid_alive(child), 10, "the child to follow its parent")
    finally:
        if orchestrator.poll() is None:
            orchestrator.kill()
            orchestrator.wait()
        if child is not None and pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_an_agent_that_dies_is_started_again_after_a_growing_delay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kubelet's part: local mode restarts an agent that ended, each time after the next
    delay, and records how often."""
    from sdaas.local import stack as stack_module
    from sdaas.local.processes import Child
    from sdaas.local.progress import RecordingProgress

    monkeypatch.setattr(stack_module, "AGENT_RESTART_DELAYS", (0.0, 0.05))
    progress = RecordingProgress()
    local = LocalStack(LocalSettings(workdir=tmp_path, config_file=EXAMPLE_CONFIG), progress)
    local.run_dir.mkdir(parents=True)
    started: list[str] = []

    def start_agent(runtime) -> Child:  # a short-lived stand-in for `python -m agent`
        started.append(runtime.name)
        child = Child(f"agent-{runtime.name}", [sys.executable, "-c", "pass"], dict(os.environ),
                      tmp_path / f"{runtime.name}.log", tmp_path)
        local.children[child.name] = child.start()
        return child

    monkeypatch.setattr(local, "_start_agent", start_agent)
    start_agent(local.config.runtime("sdruntime"))
    keeper = threading.Thread(target=local._keep_agents_running)
    keeper.start()
    try:
        wait_for(lambda: local.restarts.get("agent-sdruntime", 0) >= 3, 30, "three restarts")
    finally:
        local._stopping.set()
        keeper.join(timeout=10)
    assert set(started) == {"sdruntime"}  # the other runtime's agent never ran here
    lines = [line for line in progress.lines if "agent-sdruntime ended" in line]
    assert "starting it again in 0s" in lines[0] and "(restart 1)" in lines[0]
    assert "starting it again in 0.05s" in lines[1] and "(restart 2)" in lines[1]
