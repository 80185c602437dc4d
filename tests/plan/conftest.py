"""Fixtures for the plan summariser: recorded plans, and the same plans made live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plan.tfplans import FIXTURES, builtin_plans, terraform_binary


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.plan.json").read_text())


@pytest.fixture(scope="session")
def live_builtin_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """fixtures/builtin/v1 -> v2 planned by the terraform on the PATH, once per session."""
    if terraform_binary() is None:
        pytest.skip("terraform is not on the PATH")
    return builtin_plans(Path(tmp_path_factory.mktemp("builtin-plans")))


@pytest.fixture(
    params=["recorded", pytest.param("live", marks=pytest.mark.terraform)],
)
def builtin_plan_source(
    request: pytest.FixtureRequest,
) -> Any:
    """A function name -> plan JSON, from the recorded fixtures or from a live terraform run."""
    if request.param == "recorded":
        return recorded
    plans = request.getfixturevalue("live_builtin_plans")
    return lambda name: plans[name]
