"""The fake ComfyUI answers the recorded scenarios as the real ComfyUI did.

``tests/real_comfyui/recordings/`` holds the real server's normalized answers to the
scenarios of ``tests/real_comfyui/scenarios.py`` (``python -m tests.real_comfyui.record``);
the real-server tier checks they still hold. Here the same scenarios run against the fake
(the local preview's ComfyUI, what the agent tests use) over HTTP.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from sdaas.local.preview.comfyui_nodes import COMFYUI_VERSION, NODE_CLASSES
from tests.fakes.comfyui import FakeComfyUI
from tests.real_comfyui.record import recording_path, without_file_lists
from tests.real_comfyui.scenarios import SCENARIOS, differences, run_scenarios

RECORDING = json.loads(recording_path(COMFYUI_VERSION).read_text())
# Seconds per picture for each scenario: the interrupt scenario needs nodes that run long
# enough for "the entry is not written yet" to be observable (about 1 s each).
SECONDS_PER_IMAGE = {"interrupt_targets_its_prompt": 7.0}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeComfyUI]:
    server = FakeComfyUI().start()
    yield server
    server.shutdown()


def test_the_recording_covers_every_scenario() -> None:
    assert RECORDING["comfyui_version"] == COMFYUI_VERSION
    assert sorted(RECORDING["scenarios"]) == sorted(SCENARIOS)


def test_the_fake_knows_the_recorded_node_definitions() -> None:
    recorded = without_file_lists(RECORDING["nodes"])  # those lists are the server's files
    assert sorted(recorded) == sorted(NODE_CLASSES)
    for name, definition in recorded.items():
        assert differences(definition, NODE_CLASSES[name]) == [], name


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_fake_answers_like_the_real_server(fake: FakeComfyUI, name: str) -> None:
    fake.seconds_per_image = SECONDS_PER_IMAGE.get(name, 0.05)
    answers = run_scenarios(fake.url, salt=f"q{uuid.uuid4().hex[:8]}", names=[name])[name]
    expected = RECORDING["scenarios"][name]
    assert [a["step"] for a in answers] == [e["step"] for e in expected]
    problems = differences(expected, answers)
    assert problems == [], "\n".join(problems)
