"""Unit tests of the API Gateway plumbing: body reading, strict JSON, URLs, error envelope."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lambda_src import api
from lambda_src.api import ApiError
from lambda_src.aws import DependencyError
from lambda_src.config import ConfigError
from task_contract import jsontext

from .support import DOMAIN, event


def api_error(fn: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fn(*args)
    return caught.value


# --- bodies -----------------------------------------------------------------------------


def test_body_is_utf8_bytes() -> None:
    assert api.read_body({"body": '{"a":"é"}'}, 100) == '{"a":"é"}'.encode()


def test_base64_body_is_decoded() -> None:
    raw = b'{"a": 1}'
    evt = {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    assert api.read_body(evt, 100) == raw


@pytest.mark.parametrize("body", [None, ""])
def test_empty_body_is_400(body: Any) -> None:
    err = api_error(api.read_body, {"body": body}, 100)
    assert (err.status, err.code) == (400, "invalid_json")


def test_non_text_body_is_400() -> None:
    assert api_error(api.read_body, {"body": {"a": 1}}, 100).status == 400


def test_invalid_base64_is_400() -> None:
    err = api_error(api.read_body, {"body": "not base64!!", "isBase64Encoded": True}, 100)
    assert (err.status, err.code) == (400, "invalid_json")


def test_size_limit_is_inclusive_and_counts_bytes() -> None:
    assert len(api.read_body({"body": "x" * 100}, 100)) == 100
    err = api_error(api.read_body, {"body": "x" * 101}, 100)
    assert (err.status, err.code) == (413, "payload_too_large")
    # 50 characters, 100 bytes: fits; 51 characters, 102 bytes: does not.
    assert len(api.read_body({"body": "é" * 50}, 100)) == 100
    assert api_error(api.read_body, {"body": "é" * 51}, 100).status == 413


def test_size_limit_applies_to_decoded_base64() -> None:
    fits = {"body": base64.b64encode(b"x" * 100).decode(), "isBase64Encoded": True}
    assert len(api.read_body(fits, 100)) == 100
    over = {"body": base64.b64encode(b"x" * 101).decode(), "isBase64Encoded": True}
    assert api_error(api.read_body, over, 100).status == 413
    huge = {"body": "A" * 10_000, "isBase64Encoded": True}
    assert api_error(api.read_body, huge, 100).status == 413


def test_lone_surrogate_in_event_body_is_400() -> None:
    assert api_error(api.read_body, {"body": '{"a":"\ud800"}'}, 100).status == 400


# --- JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        (b'\xef\xbb\xbf{"bom": 1}', {"bom": 1}),
        (b'"\\ud800"', "\ud800"),  # escaped lone surrogates are valid JSON text
        (b"1e308", 1e308),
    ],
)
def test_valid_json(raw: bytes, expected: Any) -> None:
    assert api.parse_json(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"{'a': 1}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1e999}',
        b'{"a": -1e999}',
        b"\xff\xfe{}",
        b'{"a": "\xc3"}',
        b"1" * 5000,  # beyond Python's integer-string limit
        b"[" * 100_000 + b"]" * 100_000,  # deep enough to exhaust the parser's recursion
        b"[" * 65 + b"]" * 65,
        b'{"a": 1} trailing',
        b"",
    ],
)
def test_invalid_json_is_400(raw: bytes) -> None:
    err = api_error(api.parse_json, raw)
    assert (err.status, err.code) == (400, "invalid_json")
    assert len(err.message) < 300


def test_depth_limit_is_exact() -> None:
    assert api.parse_json(b"[" * 64 + b"]" * 64) is not None
    assert jsontext.json_depth({"a": [{"b": 1}]}) == 3
    assert jsontext.json_depth(7) == 0


# --- routes and URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evt", "expected"),
    [
        ({"resource": "/v1alpha2", "path": "/v1alpha2"}, "/v1alpha2"),
        ({"resource": "/v1alpha2/", "path": "/v1alpha2/"}, "/v1alpha2"),
        ({"resource": "/{proxy+}", "path": "/v1alpha1"}, "/v1alpha1"),
        ({"path": "/v1alpha1"}, "/v1alpha1"),
        ({"resource": "/", "path": "/"}, "/"),
        ({}, ""),
        ({"resource": 5}, ""),
    ],
)
def test_route(evt: dict[str, Any], expected: str) -> None:
    assert api.route(evt) == expected


def test_base_url_on_the_execute_api_domain() -> None:
    assert api.base_url(event()) == f"https://{DOMAIN}/prod"


def test_base_url_on_a_custom_domain_with_and_without_base_path() -> None:
    mapped = event(
        request_context={
            "domainName": "api.example.com",
            "stage": "prod",
            "path": "/images/v1alpha2",
        }
    )
    assert api.base_url(mapped) == "https://api.example.com/images"
    root = event(
        request_context={"domainName": "api.example.com", "stage": "prod", "path": "/v1alpha2"}
    )
    assert api.base_url(root) == "https://api.example.com"


def test_base_url_falls_back_to_stage_and_to_relative() -> None:
    no_path = event(request_context={"domainName": DOMAIN, "stage": "dev"})
    assert api.base_url(no_path) == f"https://{DOMAIN}/dev"
    default_stage = event(request_context={"domainName": DOMAIN, "stage": "$default"})
    assert api.base_url(default_stage) == f"https://{DOMAIN}"
    assert api.base_url(event(request_context={"stage": "prod"})) == ""
    assert api.base_url({}) == ""
    assert api.base_url({"requestContext": "x"}) == ""


# --- responses and the run wrapper ---------------------------------------------------------


def test_response_shape() -> None:
    result = api.response(202, {"a": "é"}, {"Retry-After": "1"})
    assert result["statusCode"] == 202
    assert result["headers"]["Content-Type"] == "application/json"
    assert result["headers"]["Retry-After"] == "1"
    assert result["isBase64Encoded"] is False
    assert json.loads(result["body"]) == {"a": "é"}


def test_error_envelope() -> None:
    err = ApiError(400, "invalid_request", "bad", [{"path": "p", "message": "m"}])
    result = api.error_response(err)
    assert json.loads(result["body"]) == {
        "error": {
            "code": "invalid_request",
            "message": "bad",
            "details": [{"path": "p", "message": "m"}],
        }
    }


def test_dependency_errors_map_to_502_and_503() -> None:
    transient = api.dependency_error(
        DependencyError("sns", "Publish", "Throttling", True), "publish_failed", "x"
    )
    assert (transient.status, transient.code, transient.headers) == (
        503, "publish_failed", {"Retry-After": "1"})
    permanent = api.dependency_error(
        DependencyError("sns", "Publish", "AuthorizationError", False), "publish_failed", "x"
    )
    assert (permanent.status, permanent.headers) == (502, {})


def run(handle: Any, evt: Any = None) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = api.run("test", handle, event() if evt is None else evt, None)
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], result["headers"], json.loads(result["body"])


def last_log(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def test_run_answers_config_errors_with_500_and_logs_the_problems(capsys: Any) -> None:
    def handle(evt: Any, fields: Any) -> Any:
        raise ConfigError(["TASK_TABLE is not set"])

    status, _, body = run(handle)
    assert (status, body["error"]["code"]) == (500, "configuration_error")
    assert "TASK_TABLE" not in body["error"]["message"]
    line = last_log(capsys)
    assert line["level"] == "ERROR"
    assert line["config_problems"] == ["TASK_TABLE is not set"]


def test_run_answers_unexpected_errors_with_500_without_leaking_the_message(capsys: Any) -> None:
    def handle(evt: Any, fields: Any) -> Any:
        raise KeyError("a secret prompt from the body")

    status, _, body = run(handle)
    assert body == {
        "error": {"code": "internal_error", "message": "an internal error occurred", "details": []}
    }
    assert status == 500
    out = capsys.readouterr().out
    assert "secret prompt" not in out
    line = json.loads(out.strip().splitlines()[-1])
    assert line["exception"] == "KeyError"
    assert line["frames"][-1].startswith("test_api.py:")


@pytest.mark.parametrize("evt", [None, "text", 42, []])
def test_run_survives_events_that_are_not_objects(evt: Any) -> None:
    result = api.run("test", lambda e, f: api.response(200, {"e": e}), evt, None)
    assert json.loads(result["body"]) == {"e": {}}


def test_log_level_filters(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lambda_src.jsonlog import log

    monkeypatch.setenv("LOG_LEVEL", "warning")
    log("INFO", "hidden")
    log("WARNING", "shown", id="x", skipped=None)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "shown" and record["id"] == "x" and "skipped" not in record
    assert record["time"].endswith("Z")


@pytest.mark.parametrize(("headers", "scheme"), [
    ({"X-Forwarded-Proto": "https"}, "https"),
    ({"x-forwarded-proto": "http"}, "http"),
    ({"X-Forwarded-Proto": "http, https"}, "http"),
    ({"X-Forwarded-Proto": "gopher"}, "https"),
    ({}, "https"),
    (None, "https"),
])
def test_base_url_follows_the_forwarded_scheme(headers, scheme) -> None:
    evt = event()
    evt["headers"] = headers
    assert api.base_url(evt) == f"{scheme}://{DOMAIN}/prod"
