"""The real-ComfyUI tier: one real server per test session, and the agent fixtures.

Tests here are marked ``real_comfyui``. They need the ComfyUI source named by
``SD_COMFYUI_SOURCE``: without it they are skipped (with the reason), or fail under ``CI``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.agent.conftest import (  # noqa: F401 - fixtures shared with the agent tests
    agent_emulator,
    aws_faults,
    faults,
    image_host,
    network_fence,
    stack,
    start_agent,
)
from tests.real_comfyui.server import ComfyServer, ComfySource, Environment, SourceMissing


@dataclass
class TierFigures:
    environment_seconds: float = 0.0
    environment_built: bool = False
    server_start_seconds: float = 0.0
    started_at: float = 0.0
    last_test_end: float = 0.0


FIGURES = TierFigures()


@pytest.fixture(scope="session")
def comfy_source() -> ComfySource:
    try:
        return ComfySource.from_environment()
    except SourceMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI must run the real-ComfyUI tier)")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def real_comfyui(comfy_source: ComfySource,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """The real ComfyUI on 127.0.0.1, started once for the session and stopped after it."""
    FIGURES.started_at = time.monotonic()
    environment = Environment(comfy_source)
    python = environment.ensure()
    FIGURES.environment_built = environment.built_now
    FIGURES.environment_seconds = environment.build_seconds
    server = ComfyServer(python, comfy_source, tmp_path_factory.mktemp("comfyui")).start()
    FIGURES.server_start_seconds = server.start_seconds
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _tier_clock() -> Iterator[None]:
    yield
    FIGURES.last_test_end = time.monotonic()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.started_at:
        return
    built = (f"built in {FIGURES.environment_seconds:.0f} s" if FIGURES.environment_built
             else "reused from the cache")
    terminalreporter.write_line(
        f"real ComfyUI tier: environment {built}; server started in "
        f"{FIGURES.server_start_seconds:.1f} s; "
        f"{FIGURES.last_test_end - FIGURES.started_at:.0f} s from the server's request to "
        "the tier's last test")
