"""Schemathesis, driven by the OpenAPI document the local stack serves, against that stack.

The document is fetched from ``GET /v1alpha2/openapi.json`` with the API key (so it names
the stack's runtimes and its URL). Every operation gets its explicit examples, Schemathesis'
coverage cases and generated cases, valid and invalid; then stateful scenarios follow the
document's links (a submission's id into every operation on ``/v1alpha2/tasks/{id}...``).
Checks: no 5xx, every status code, content type, header and body conforms to the document,
and a request the document calls invalid is refused. The run is bounded (``MAX_EXAMPLES``,
a fixed seed, derandomized) and its number of generated cases is printed in the terminal
summary.

Accepted tasks are run by the preview runtime; valid sizes and counts above small bounds are
lowered to those bounds before sending (still valid, so no verdict changes), keeping that
work small for the tests that share the stack.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lambda_src import errors, openapi
from task_contract.content import SDWEBUI_NUMBERS
from tests.e2e.stack.conftest import SCHEMATHESIS_CASES, Deployed

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]

SEED = 15
MAX_EXAMPLES = 50  # generated cases per operation and generation mode
SCENARIOS = 30
STEPS_PER_SCENARIO = 5
# negative_data_rejection: what breaks the document is refused, so the document is never
# stricter than the API (it is looser where JSON Schema cannot say a rule).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]
WORK_BOUNDS = {"n_iter": 1, "batch_size": 1, "width": 64, "height": 64}

SCHEMA = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(deployed: Deployed) -> Any:
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "base-url": deployed.endpoint,
        "headers": {openapi.API_KEY_HEADER: deployed.api_key},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
    })
    # Fetched here rather than by from_url, which leaves out the operation at the
    # document's own URL: GET /v1alpha2/openapi.json is fuzzed like the others.
    response = deployed.get(openapi.DOCUMENT_PATH)
    assert response.status_code == 200, response.text
    return schemathesis.openapi.from_dict(response.json(), config=config)


def bound_work(body: Any) -> None:
    """Lower valid counts and sizes of an SD WebUI body (v1alpha2 or v1alpha1) in place."""
    contents = [body]
    if isinstance(body, dict) and isinstance(body.get("task"), dict):
        contents.append(body["task"].get("content"))
    for content in contents:
        if not isinstance(content, dict):
            continue
        for field, bound in WORK_BOUNDS.items():
            value, rule = content.get(field), SDWEBUI_NUMBERS[field]
            if (type(value) is int and rule.problem(value) is None and value > bound
                    and rule.problem(bound) is None):
                content[field] = bound


def _record(phase: str, case: Any, status: int) -> None:
    SCHEMATHESIS_CASES[(phase, case.operation.definition.raw["operationId"], status)] += 1


@SCHEMA.parametrize()
def test_every_answer_conforms_to_the_document(case: Any, deployed: Deployed) -> None:
    bound_work(case.body)
    response = case.call_and_validate(
        headers={openapi.API_KEY_HEADER: deployed.api_key}, checks=CHECKS, timeout=30)
    _record("stateless", case, response.status_code)


def test_stateful_scenarios_follow_the_links(api_schema: Any, deployed: Deployed) -> None:
    key = {openapi.API_KEY_HEADER: deployed.api_key}

    class Scenarios(api_schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            bound_work(case.body)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": key, "timeout": 30}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            _record("stateful", case, response.status_code)

        def validate_response(self, response: Any, case: Any,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    before = Counter({k: v for k, v in SCHEMATHESIS_CASES.items() if k[0] == "stateful"})
    Scenarios.run(settings=hypothesis.settings(
        max_examples=SCENARIOS, stateful_step_count=STEPS_PER_SCENARIO, derandomize=True,
        deadline=None, database=None,
        suppress_health_check=list(hypothesis.HealthCheck)))
    ran = Counter({k: v for k, v in SCHEMATHESIS_CASES.items() if k[0] == "stateful"}) - before
    # The scenarios reached tasks through the links: a status read and a cancel of a
    # submitted id (cancelled, or already final when the preview finished it first).
    assert ran[("stateful", errors.GET_TASK, 200)] > 0, dict(ran)
    assert ran[("stateful", errors.CANCEL_TASK, 202)] + \
        ran[("stateful", errors.CANCEL_TASK, 409)] > 0, dict(ran)


def test_the_stateless_run_reached_every_operation_and_an_acceptance() -> None:
    reached = {(operation, status) for (phase, operation, status) in SCHEMATHESIS_CASES
               if phase == "stateless"}
    if not reached:
        pytest.skip("needs the stateless Schemathesis test to run first (same module)")
    assert {operation for operation, _ in reached} == set(errors.OPERATIONS), reached
    assert (errors.SUBMIT_TASK, 202) in reached, reached
    assert (errors.GET_OPENAPI, 200) in reached, reached


def test_the_stack_serves_its_document_with_the_api_key(deployed: Deployed) -> None:
    from sdaas.config import EXAMPLE_CONFIG, load_config

    runtimes = {r.name: r.type for r in load_config(EXAMPLE_CONFIG).runtimes}
    response = deployed.get(openapi.DOCUMENT_PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == openapi.document(runtimes, deployed.endpoint)
    refused = deployed.get(openapi.DOCUMENT_PATH, key="not-the-key")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "INVALID_API_KEY"
