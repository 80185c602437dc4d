"""Fixtures for the queue agent's tests: a fault-injectable emulator, fakes, agents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdaas.local.emulator import Emulator
from tests.agent import netfence
from tests.agent.awsfaults import AwsFaults
from tests.agent.harness import AgentProcess, Stack
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.images import FakeImageHost
from tests.fakes.sdwebui import FakeSdWebUI


@pytest.fixture(autouse=True)
def network_fence() -> Iterator[None]:
    """No test here may open a connection to anything but loopback."""
    netfence.install()
    try:
        yield
    finally:
        netfence.uninstall()


@pytest.fixture(scope="session")
def aws_faults() -> AwsFaults:
    return AwsFaults()


@pytest.fixture(scope="session")
def agent_emulator(aws_faults: AwsFaults) -> Iterator[Emulator]:
    """moto's server with the fault injector in front (quiet request log)."""
    emu = Emulator(wrap_app=aws_faults.wrap, log_requests=False).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def faults(aws_faults: AwsFaults) -> Iterator[AwsFaults]:
    aws_faults.clear()
    yield aws_faults
    aws_faults.clear()


@pytest.fixture
def stack(agent_emulator: Emulator, faults: AwsFaults) -> Stack:
    return Stack(agent_emulator.endpoint)


@pytest.fixture
def sdwebui() -> Iterator[FakeSdWebUI]:
    fake = FakeSdWebUI().start()
    yield fake
    fake.release.set()
    fake.stop()


@pytest.fixture
def comfyui() -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI().start()
    yield fake
    fake.release.set()
    fake.shutdown()


@pytest.fixture
def image_host() -> Iterator[FakeImageHost]:
    fake = FakeImageHost().start()
    yield fake
    fake.stop()


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Start agents; every one is stopped at the end of the test, its log kept on failure."""
    started: list[AgentProcess] = []

    def start(stack: Stack, runtime_url: str, wait_ready: bool = True,
              **overrides: Any) -> AgentProcess:
        agent = AgentProcess(stack, runtime_url, tmp_path, **overrides)
        started.append(agent)
        return agent.start(wait_ready=wait_ready)

    yield start
    for agent in started:
        agent.stop()
