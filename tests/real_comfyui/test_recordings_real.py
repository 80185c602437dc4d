"""The recorded answers (tests/real_comfyui/recordings/) still hold for the real server.

The fast test (tests/agent/test_fake_comfyui_recorded.py) holds the fake to the recordings;
this one holds the recordings to the real server, so they cannot go stale silently.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.real_comfyui.record import node_definitions, recording_path, without_file_lists
from tests.real_comfyui.scenarios import SCENARIOS, differences, run_scenarios

pytestmark = [pytest.mark.real_comfyui, pytest.mark.timeout(2400)]


def test_the_recorded_node_definitions_are_the_real_ones(real_comfyui, comfy_source) -> None:
    recording = json.loads(recording_path(comfy_source.version).read_text())
    real = node_definitions(real_comfyui.url, tuple(recording["nodes"]))
    problems = differences(without_file_lists(recording["nodes"]), without_file_lists(real))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_real_server_still_answers_as_recorded(real_comfyui, comfy_source,
                                                   name: str) -> None:
    recording = json.loads(recording_path(comfy_source.version).read_text())
    answers = run_scenarios(real_comfyui.url, salt=f"q{uuid.uuid4().hex[:8]}", names=[name])
    problems = differences(recording["scenarios"][name], answers[name])
    assert problems == [], "\n".join(problems)
