"""``make local`` as a user runs it: ``python -m sdaas.local up`` in the foreground,
a client against it, ``down`` from elsewhere, and Ctrl-C in the middle of starting. Either
way nothing is left: no process carrying the stack's instance id, no open port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sdaas.local.environment import INSTANCE_ENV
from sdaas.local.workdir import port_open
from tests.e2e.support import REPO, processes_with, wait_for
from tests.support.terraform import plugin_dir

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]


def _up(workdir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TF_PLUGIN_DIR": str(plugin_dir())}
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "sdaas.local", "up", "--workdir", str(workdir),
             "--seconds-per-image", "0.05"],
            cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _state(workdir: Path) -> dict:
    return json.loads((workdir / "state.json").read_text())


def _assert_nothing_left(instance: str, ports: list[int]) -> None:
    left = processes_with(INSTANCE_ENV, instance)
    assert not left, f"processes of the stack still running: {left}"
    assert not [p for p in ports if port_open(p)], "ports still open"


def test_up_client_down(tmp_path: Path) -> None:
    workdir, log = tmp_path / "local", tmp_path / "up.log"
    up = _up(workdir, log)
    try:
        wait_for(lambda: (workdir / "connection.json").exists() or up.poll() is not None,
                 480, "the local stack to start", interval=1.0)
        assert up.poll() is None, log.read_text()
        wait_for(lambda: "Try it:" in log.read_text(), 30, "the summary")
        connection = json.loads((workdir / "connection.json").read_text())
        printed = log.read_text()
        assert connection["endpoint"] in printed and connection["api_key"] in printed
        assert "PREVIEW runtime" in printed and "not a model" in printed
        assert "resources created" in printed  # progress while Terraform applies
        state = _state(workdir)
        ports = [c["port"] for c in state["children"].values() if c.get("port")]
        assert set(state["children"]) == {"emulator", "api", "event-sources",
                                          "preview-sdruntime", "preview-comfyui",
                                          "agent-sdruntime", "agent-comfyui"}

        # The ready-to-paste client command works.
        example = workdir / "examples" / "sdruntime.json"
        client = subprocess.run(
            [sys.executable, "-m", "sdaas.cli.sdctl", "--local-dir", str(workdir),
             "submit", str(example), "--wait", "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
        assert client.returncode == 0, client.stderr
        assert (tmp_path / "out" / "hello-sdruntime" / "image-0.png").exists()

        down = subprocess.run(
            [sys.executable, "-m", "sdaas.local", "down", "--workdir", str(workdir)],
            capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "nothing left running" in down.stdout
        assert up.wait(timeout=60) == 0
        _assert_nothing_left(state["instance"], ports)
        assert not (workdir / "connection.json").exists()
        again = subprocess.run(
            [sys.executable, "-m", "sdaas.local", "down", "--workdir", str(workdir)],
            capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
        assert again.returncode == 0 and "no local stack is running" in again.stdout
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=30)


def test_ctrl_c_while_terraform_applies_stops_everything(tmp_path: Path) -> None:
    workdir, log = tmp_path / "local", tmp_path / "up.log"
    up = _up(workdir, log)
    terraform_log = workdir / "logs" / "terraform.log"
    try:
        wait_for(lambda: (terraform_log.exists() and "Creating..." in terraform_log.read_text())
                 or up.poll() is not None, 300, "terraform apply to begin", interval=0.5)
        assert up.poll() is None, log.read_text()
        state = _state(workdir)
        assert processes_with(INSTANCE_ENV, state["instance"])  # emulator, terraform, plugin
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=90) == 0, log.read_text()
        ports = [c["port"] for c in state["children"].values() if c.get("port")]
        _assert_nothing_left(state["instance"], ports)
        assert "nothing left running" in log.read_text()
        assert not (workdir / "state.json").exists()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=30)
