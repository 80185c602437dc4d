"""The local API adapter: API Gateway's REST proxy events, key check and gateway errors."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sdaas.local import api_adapter
from sdaas.local.api_adapter import (
    ApiAdapter,
    ApiKeys,
    Route,
    build_event,
    load_handler,
    merged_environment,
    proxy_response,
    resource_pattern,
)
from sdaas.local.functions import FunctionError

KEY = "k" * 40


def _route(method: str, resource: str, handler: str, timeout: float = 5.0,
           key: bool = True) -> Route:
    return Route(method=method, resource=resource, api_key_required=key,
                 function_name=handler.split(".")[1], handler=handler,
                 timeout_seconds=timeout, pattern=resource_pattern(resource))


class _Keys:
    def valid(self, value: str | None) -> bool:
        return value == KEY


class _Handlers:
    """Stand-ins for the Lambda handlers, recording the events they get."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.behaviour = "echo"

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if self.behaviour == "slow":
            time.sleep(1.0)
        if self.behaviour == "raise":
            raise RuntimeError("boom")
        if self.behaviour == "malformed":
            return {"body": "no status"}
        return {"statusCode": 202, "headers": {"Content-Type": "application/json",
                                               "X-Handler": context.function_name},
                "body": json.dumps({"seen": event["body"]}), "isBase64Encoded": False}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ApiAdapter, _Handlers]]:
    handlers = _Handlers()
    monkeypatch.setattr(api_adapter, "load_handler", lambda _name: handlers)
    routes = [_route("POST", "/v1alpha2", "lambda_src.ingest.handler", timeout=0.3),
              _route("GET", "/v1alpha2/tasks/{id}", "lambda_src.status.handler")]
    adapter = ApiAdapter(routes=routes, stage="prod", api_id="abc123", keys=_Keys()).start()
    try:
        yield adapter, handlers
    finally:
        adapter.stop()


def test_resource_patterns() -> None:
    assert resource_pattern("/v1alpha2/tasks/{id}").fullmatch("/v1alpha2/tasks/t-1")[
        "id"] == "t-1"
    assert resource_pattern("/v1alpha2/tasks/{id}").fullmatch("/v1alpha2/tasks/a/b") is None
    assert resource_pattern("/v1alpha2").fullmatch("/v1alpha2x") is None
    assert resource_pattern("/files/{proxy+}").fullmatch("/files/a/b")["proxy"] == "a/b"
    route = _route("GET", "/v1alpha2/tasks/{id}", "lambda_src.status.handler")
    assert route.match("/v1alpha2/tasks/a%20b") == {"id": "a b"}


def test_merged_environment_refuses_conflicts() -> None:
    same = merged_environment({"ingest": {"A": "1", "B": "2"}, "status": {"A": "1", "C": "3"}})
    assert same == {"A": "1", "B": "2", "C": "3"}
    with pytest.raises(FunctionError, match=r"LOG_LEVEL \(ingest: 'INFO', status: 'DEBUG'\)"):
        merged_environment({"ingest": {"LOG_LEVEL": "INFO"}, "status": {"LOG_LEVEL": "DEBUG"}})


def test_build_event_is_an_api_gateway_rest_proxy_event() -> None:
    route = _route("GET", "/v1alpha2/tasks/{id}", "lambda_src.status.handler")
    event = build_event(method="GET", path="/v1alpha2/tasks/t1", route=route,
                        path_parameters={"id": "t1"},
                        headers=[("x-api-key", KEY), ("Accept", "a"), ("Accept", "b")],
                        query="x=1&x=2&y=", body=b"", stage="prod", host="127.0.0.1:8000",
                        request_id="r1", source_ip="127.0.0.1", api_id="abc123", api_key=KEY)
    assert event["resource"] == "/v1alpha2/tasks/{id}"
    assert event["path"] == "/v1alpha2/tasks/t1"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "t1"}
    assert event["headers"]["Accept"] == "b"
    assert event["multiValueHeaders"]["Accept"] == ["a", "b"]
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert (context["stage"], context["domainName"], context["requestId"],
            context["path"]) == ("prod", "127.0.0.1:8000", "r1", "/prod/v1alpha2/tasks/t1")
    binary = build_event(method="POST", path="/v1alpha2", route=route, path_parameters={},
                         headers=[], query="", body=b"\xff\xfe", stage="prod", host="h",
                         request_id="r", source_ip="127.0.0.1", api_id="a", api_key=None)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\xfe"
    assert binary["pathParameters"] is None and binary["queryStringParameters"] is None


def test_proxy_response_mapping() -> None:
    status, headers, body = proxy_response({"statusCode": 200, "headers": {"A": "1"},
                                            "multiValueHeaders": {"B": ["x", "y"]},
                                            "body": base64.b64encode(b"\x00").decode(),
                                            "isBase64Encoded": True})
    assert (status, headers, body) == (200, {"A": "1", "B": "x, y"}, b"\x00")
    assert proxy_response({"body": "x"})[0] == 502
    assert proxy_response(None)[0] == 502


def test_load_handler_only_runs_this_repositorys_handlers() -> None:
    assert callable(load_handler("lambda_src.status.handler"))
    with pytest.raises(FunctionError):
        load_handler("os.system")


def test_requests_become_events_and_answers(served) -> None:
    adapter, handlers = served
    response = requests.post(f"{adapter.endpoint}/v1alpha2", data=b'{"a": 1}',
                             headers={"x-api-key": KEY}, timeout=10)
    assert response.status_code == 202
    assert response.json() == {"seen": '{"a": 1}'}
    assert response.headers["X-Handler"] == "ingest"
    assert response.headers["x-amzn-RequestId"]
    event = handlers.events[-1]
    assert event["requestContext"]["domainName"] == f"127.0.0.1:{adapter.port}"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    got = requests.get(f"{adapter.endpoint}/v1alpha2/tasks/abc", headers={"x-api-key": KEY},
                       timeout=10)
    assert got.status_code == 202
    assert handlers.events[-1]["pathParameters"] == {"id": "abc"}
    assert handlers.events[-1]["resource"] == "/v1alpha2/tasks/{id}"


def test_chunked_bodies_are_read(served) -> None:
    adapter, handlers = served
    response = requests.post(f"{adapter.endpoint}/v1alpha2", data=iter([b'{"a"', b": 2}"]),
                             headers={"x-api-key": KEY}, timeout=10)
    assert response.status_code == 202
    assert handlers.events[-1]["body"] == '{"a": 2}'


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
def test_missing_or_wrong_key_is_403_and_never_reaches_the_handler(served, headers) -> None:
    adapter, handlers = served
    response = requests.post(f"{adapter.endpoint}/v1alpha2", json={}, headers=headers,
                             timeout=10)
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "INVALID_API_KEY", "message": "Forbidden",
                                         "details": []}}
    assert handlers.events == []


def test_unknown_route_404_and_wrong_method_405(served) -> None:
    adapter, handlers = served
    base = f"http://127.0.0.1:{adapter.port}"
    for url in (f"{base}/v1alpha2", f"{base}/prod/other", f"{base}/dev/v1alpha2"):
        response = requests.post(url, json={}, headers={"x-api-key": KEY}, timeout=10)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
        assert "POST /prod/v1alpha2" in response.json()["error"]["message"]
    response = requests.delete(f"{adapter.endpoint}/v1alpha2", headers={"x-api-key": KEY},
                               timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert handlers.events == []


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_any_other_method_gets_a_json_405(served, method) -> None:
    adapter, handlers = served
    response = requests.request(method, f"{adapter.endpoint}/v1alpha2",
                                headers={"x-api-key": KEY}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"
    assert handlers.events == []


def test_body_over_the_api_gateway_limit_is_413(served) -> None:
    adapter, handlers = served
    with socket.create_connection(("127.0.0.1", adapter.port), timeout=10) as sock:
        sock.sendall(b"POST /prod/v1alpha2 HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
                     + b"\r\nContent-Length: 10485761\r\n\r\n")
        chunks = []
        while chunk := sock.recv(4096):  # the adapter closes the connection after a 413
            chunks.append(chunk)
        answer = b"".join(chunks).decode()
    assert answer.startswith("HTTP/1.1 413")
    assert '"REQUEST_TOO_LARGE"' in answer
    assert handlers.events == []


def test_handler_failures_are_gateway_errors(served) -> None:
    adapter, handlers = served
    url, headers = f"{adapter.endpoint}/v1alpha2", {"x-api-key": KEY}
    handlers.behaviour = "slow"
    response = requests.post(url, json={}, headers=headers, timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "INTEGRATION_TIMEOUT"
    handlers.behaviour = "raise"
    assert requests.post(url, json={}, headers=headers, timeout=10).status_code == 502
    handlers.behaviour = "malformed"
    assert requests.post(url, json={}, headers=headers, timeout=10).status_code == 502


class _FakeApiGateway:
    def __init__(self) -> None:
        self.keys = {"k1": {"enabled": True, "value": "one"},
                     "k2": {"enabled": False, "value": "off"},
                     "k3": {"enabled": True, "value": "other-stage"}}
        self.plans = [{"id": "p1", "apiStages": [{"apiId": "abc123", "stage": "prod"}],
                       "keys": ["k1", "k2"]},
                      {"id": "p2", "apiStages": [{"apiId": "abc123", "stage": "dev"}],
                       "keys": ["k3"]}]

    def get_usage_plans(self, **_: Any) -> dict[str, Any]:
        return {"items": self.plans}

    def get_usage_plan_keys(self, usagePlanId: str, **_: Any) -> dict[str, Any]:
        plan = next(p for p in self.plans if p["id"] == usagePlanId)
        return {"items": [{"id": k} for k in plan["keys"]]}

    def get_api_key(self, apiKey: str, includeValue: bool) -> dict[str, Any]:
        return self.keys[apiKey]


def test_api_keys_are_the_enabled_keys_of_the_stages_usage_plans(monkeypatch) -> None:
    client = _FakeApiGateway()
    keys = ApiKeys(client, "abc123", "prod")
    assert keys.load() == {"one"}
    assert keys.valid("one")
    assert not keys.valid("off") and not keys.valid("other-stage") and not keys.valid(None)
    monkeypatch.setattr(api_adapter, "KEY_MISS_REFRESH_SECONDS", 0.0)
    client.keys["k4"] = {"enabled": True, "value": "added"}
    client.plans[0]["keys"].append("k4")
    assert keys.valid("added")  # a key created while running works after a refresh
