"""The OpenAPI document: a valid OpenAPI 3.1 document, every error code the handlers and API
Gateway can answer with, limits that agree with the contract's verdicts, served by the status
function, and the committed docs/openapi.json equal to the generated one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from constructs_lib.ingress import api as api_construct
from lambda_src import errors, openapi, status
from lambda_src.api import ApiError
from task_contract.content import SDWEBUI_NUMBERS, SDWEBUI_TEXTS, check_sdwebui
from task_contract.metadata import MAX_PREFIX_CHARS, TASKTYPES, check_id, check_prefix
from task_contract.problems import Problems
from task_contract.record import STATUSES
from task_contract.task import check_task, check_v1alpha1

from .openapi_support import DOCUMENT, assert_conforms, schema_named, validator
from .support import DOMAIN, FIXTURES, RUNTIMES, STAGE, event, fixture

REPO = Path(__file__).resolve().parents[2]
RUNTIME_TYPES = {"sdruntime": "sdwebui", "comfyui": "comfyui", "second": "sdwebui"}


def _operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}


def _codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"]["application/json"]["schema"]
    return schema["properties"]["error"]["properties"]["code"]["enum"]


# --- a valid document -------------------------------------------------------------------------


@pytest.mark.parametrize("runtimes, server", [
    (None, None), (RUNTIME_TYPES, "https://api.example.com/prod"), ({"only": "sdwebui"}, None)])
def test_the_document_is_valid_openapi_3_1(runtimes, server):
    doc = openapi.document(runtimes, server)
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    assert doc["openapi"].startswith("3.1.")


def test_an_invalid_document_is_refused_by_the_validator():
    doc = openapi.document()
    doc["components"]["securitySchemes"]["ApiKey"]["in"] = "body"
    with pytest.raises(Exception, match="body"):
        validate(doc)


def test_the_committed_document_is_the_generated_one():
    committed = (REPO / "docs" / "openapi.json").read_text()
    assert committed == openapi.render(openapi.document()), (
        "docs/openapi.json is stale: run `make openapi`")


# --- every error code -----------------------------------------------------------------------


def test_every_registered_code_is_documented_under_each_of_its_operations():
    operations = _operations(DOCUMENT)
    assert set(operations) == set(errors.OPERATIONS)
    for code, entry in errors.ERRORS.items():
        for status_code in entry.statuses:
            if not entry.operations:
                response = DOCUMENT["components"]["responses"][f"Unrouted{status_code}"]
                assert code in _codes(response), code
            for operation_id in entry.operations:
                responses = operations[operation_id]["responses"]
                assert code in _codes(responses[str(status_code)]), (code, operation_id)


def test_every_gateway_code_is_documented_under_every_operation():
    for operation_id, operation in _operations(DOCUMENT).items():
        for code, (status_code, _) in errors.GATEWAY_ERRORS.items():
            assert code in _codes(operation["responses"][str(status_code)]), (code, operation_id)


def test_no_operation_documents_a_code_the_registries_do_not_have():
    known = set(errors.ERRORS) | set(errors.GATEWAY_ERRORS)
    for operation in _operations(DOCUMENT).values():
        for status_code, response in operation["responses"].items():
            if status_code.startswith(("4", "5")):
                assert set(_codes(response)) <= known


@pytest.mark.parametrize("code, status_code", [("no_such_code", 400), ("not_found", 400)])
def test_an_error_outside_the_registry_cannot_be_raised(code, status_code):
    with pytest.raises(ValueError, match=code):
        ApiError(status_code, code, "message")


@pytest.mark.parametrize("code", sorted(errors.GATEWAY_ERRORS))
def test_the_gateway_template_renders_each_gateway_code_as_documented(code):
    status_code, _ = errors.GATEWAY_ERRORS[code]
    template = api_construct._GATEWAY_ERROR_TEMPLATE
    rendered = (template.replace("$context.error.responseType", code)
                .replace("$context.error.messageString", json.dumps("Forbidden")))
    body = json.loads(rendered)
    for operation_id in errors.OPERATIONS:
        assert_conforms(operation_id, status_code, body)


def test_a_code_missing_from_the_document_is_caught():
    with pytest.raises(AssertionError):
        assert_conforms(errors.GET_TASK, 409, {"error": {
            "code": "id_conflict", "message": "m", "details": []}})
    with pytest.raises(AssertionError):
        assert_conforms(errors.GET_TASK, 400, {"error": {
            "code": "invalid_json", "message": "m", "details": []}})


# --- the limits are the contract's ------------------------------------------------------------


def test_enumerations_are_the_contracts():
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["TaskStatus"]["properties"]["status"]["enum"] == list(STATUSES)
    documented = {name: task["properties"]["metadata"]["properties"]["tasktype"]["enum"]
                  for name, task in schemas.items() if name.endswith("Task")}
    assert documented == {f"{kind.capitalize()}Task": list(types)
                          for kind, types in TASKTYPES.items()}


def _schema_accepts(name: str, value: Any) -> bool:
    return schema_named(name).is_valid(value)


def _contract_accepts_field(field: str, value: Any) -> bool:
    problems = Problems()
    check_sdwebui({field: value}, "text-to-image", "", problems)
    return not problems


_SCALARS = st.one_of(
    st.integers(min_value=-2**40, max_value=2**40),
    st.integers(min_value=-10, max_value=2100),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.floats(min_value=-2, max_value=40),
    st.none(), st.booleans(), st.text(max_size=5),
)


@settings(max_examples=600, deadline=None)
@given(field=st.sampled_from(sorted(SDWEBUI_NUMBERS)), value=_SCALARS)
def test_number_limits_agree_with_the_contract(field, value):
    schema = _schema_accepts("SdWebuiContent", {field: value})
    contract = _contract_accepts_field(field, value)
    if isinstance(value, float) and value.is_integer() and SDWEBUI_NUMBERS[field].integer:
        # JSON Schema's integer admits 16.0; the contract wants an integer literal (the
        # document says so): the document is only looser here.
        assert contract <= schema
    else:
        assert schema == contract, (field, value, schema, contract)


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(sorted(SDWEBUI_TEXTS)),
       value=st.one_of(st.none(), st.integers(), st.text(max_size=3),
                       st.integers(min_value=200, max_value=10_100).map(lambda n: "x" * n)))
def test_text_limits_agree_with_the_contract(field, value):
    assert _schema_accepts("SdWebuiContent", {field: value}) == \
        _contract_accepts_field(field, value)


_ID_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=70)


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(_ID_TEXT, st.from_regex(r"[A-Za-z0-9_-]{60,70}", fullmatch=True),
                       st.integers(), st.none()))
def test_the_task_id_rule_agrees_with_the_contract(value):
    if isinstance(value, str) and value.endswith("\n"):
        value += "x"  # Python's $ also matches before a final newline; ECMA-262's does not
    problems = Problems()
    assert _schema_accepts("TaskId", value) == (check_id(value, "id", problems) is not None)


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(
    st.from_regex(r"[A-Za-z0-9._/-]{0,40}", fullmatch=True),
    st.text(max_size=20), st.none(), st.integers(),
    st.integers(min_value=500, max_value=520).map(lambda n: "a" * n)))
def test_the_prefix_rule_is_never_stricter_than_the_contract_without_trailing_slashes(value):
    if isinstance(value, str) and (value.endswith("/") or "\n" in value):
        value = value.rstrip("/\n") + "x"
    problems = Problems()
    contract = check_prefix(value, "prefix", problems) is not None
    schema = _schema_accepts("Prefix", value)
    # The document cannot say "no '.' or '..' segment" or "not under _requests/" in a
    # portable pattern: it describes them and accepts more.
    assert contract <= schema, value


def _accepted_task(task: dict[str, Any]) -> bool:
    problems = Problems()
    check_task(task, "task", RUNTIME_TYPES, problems, lambda name: "unknown")
    return not problems


def test_the_request_examples_are_valid_for_both():
    for op in openapi.OPERATIONS:
        if op.request_example is None:
            continue
        assert validator(op.request_schema).is_valid(op.request_example)
    assert _accepted_task(openapi.OPERATIONS[0].request_example["task"])


def test_the_served_document_names_the_stacks_runtimes_per_type():
    doc = openapi.document(RUNTIME_TYPES)
    schemas = doc["components"]["schemas"]
    sdwebui = schemas["SdwebuiTask"]["properties"]["metadata"]["properties"]["runtime"]
    comfyui = schemas["ComfyuiTask"]["properties"]["metadata"]["properties"]["runtime"]
    assert sdwebui["enum"] == ["sdruntime", "second"]
    assert comfyui["enum"] == ["comfyui"]
    only = openapi.document({"only": "sdwebui"})["components"]["schemas"]
    assert "ComfyuiTask" not in only
    assert only["V1alpha2Request"]["properties"]["task"] == {
        "oneOf": [{"$ref": "#/components/schemas/SdwebuiTask"}]}


def test_links_lead_from_every_submission_to_every_operation_on_a_task():
    operations = _operations(DOCUMENT)
    on_a_task = {op.operation_id for op in openapi.OPERATIONS if "{id}" in op.path}
    assert on_a_task == {errors.GET_TASK, errors.CANCEL_TASK}
    for source, field in ((errors.SUBMIT_TASK, "id"), (errors.SUBMIT_LEGACY_TASK, "id_task"),
                          (errors.GET_TASK, "id"), (errors.CANCEL_TASK, "id")):
        (success,) = [r for code, r in operations[source]["responses"].items()
                      if code.startswith("2")]
        assert success["links"] == {
            target: {"operationId": target, "parameters": {"id": f"$response.body#/{field}"}}
            for target in on_a_task}


# --- served by the status function ----------------------------------------------------------


def _get_document(method: str = "GET", **context: Any) -> tuple[int, dict[str, str], Any]:
    result = status.handler(event(method, openapi.DOCUMENT_PATH, **context), None)
    return result["statusCode"], result["headers"], json.loads(result["body"])


def test_the_status_function_serves_the_document_for_its_stack(monkeypatch):
    monkeypatch.setenv("RUNTIMES", json.dumps({name: {"type": kind}
                                               for name, kind in RUNTIME_TYPES.items()}))
    code, headers, body = _get_document()
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert body["servers"] == [{"url": f"https://{DOMAIN}/{STAGE}"}]
    assert body == openapi.document(RUNTIME_TYPES, f"https://{DOMAIN}/{STAGE}")
    validate(body)


def test_without_runtimes_or_host_the_served_document_is_the_generic_one(monkeypatch):
    monkeypatch.delenv("RUNTIMES", raising=False)
    code, _, body = _get_document(request_context={})
    assert code == 200
    assert body == openapi.document()


def test_the_document_route_accepts_get_only(monkeypatch):
    monkeypatch.delenv("RUNTIMES", raising=False)
    code, _, body = _get_document("POST")
    assert code == 405 and body["error"]["code"] == "method_not_allowed"
    assert_conforms(None, code, body)


def test_a_broken_runtimes_setting_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("RUNTIMES", "{not json")
    code, _, body = _get_document()
    assert code == 500 and body["error"]["code"] == "configuration_error"
    assert_conforms(errors.GET_OPENAPI, code, body)


def test_numbers_in_the_document_are_finite():
    def walk(value: Any) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(DOCUMENT)


@pytest.mark.parametrize("name", sorted(
    str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("v1alpha*/*.json")))
def test_the_guidance_request_files_are_valid_for_the_document(name):
    """What the Guidance's clients send is what the document describes (for a stack with
    the test runtimes)."""
    doc = openapi.document({n: spec["type"] for n, spec in RUNTIMES.items()})
    schema = "V1alpha2Request" if name.startswith("v1alpha2") else "V1alpha1Request"
    check = Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                  "components": doc["components"]})
    problems = [e.message for e in check.iter_errors(fixture(name))]
    assert not problems, problems


def test_the_wrapped_legacy_form_is_documented_as_the_api_takes_it():
    body = fixture("v1alpha1/t2i.json")
    check = schema_named("V1alpha1Request")
    assert check.is_valid(body) and check.is_valid({"task": body})
    assert not check.is_valid({"task": body, "alwayson_scripts": {}})
    problems = Problems()
    assert check_v1alpha1({"task": body}, lambda _: "sdruntime", str, problems) is not None


def test_a_prefix_at_the_limit_with_trailing_slashes_is_taken_by_both():
    value = "a" * MAX_PREFIX_CHARS + "//"
    assert check_prefix(value, "prefix", Problems()) is not None
    assert _schema_accepts("Prefix", value)
