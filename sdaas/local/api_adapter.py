"""The local API: API Gateway's REST proxy behaviour in front of the real Lambda handlers.

Everything it serves comes from the stack Terraform applied to the emulator, not from a copy:

* routes: the REST API's resources and methods (``GET /v1alpha2/tasks/{id}`` ...), each with
  its ``apiKeyRequired`` flag and its ``AWS_PROXY`` integration's function and timeout;
* the function behind each route: its ``Handler`` (``lambda_src.ingest.handler``) and its
  environment variables, read with ``GetFunctionConfiguration``;
* API keys: the enabled keys of the usage plans attached to the API's stage.

A request to ``http://127.0.0.1:<port>/<stage>/<path>`` becomes the API Gateway REST proxy
event (payload 1.0: ``httpMethod``, ``resource``, ``path``, ``pathParameters``, headers,
query strings, ``body``, ``isBase64Encoded``, ``requestContext``) and the handler is called
in this process with the function's environment plus ``AWS_ENDPOINT_URL``. Its proxy
response becomes the HTTP response.

Gateway errors use the stack's gateway response template, ``{"error": {"code": <response
type>, "message": ..., "details": []}}``: a missing or unknown ``x-api-key`` is 403
``INVALID_API_KEY`` "Forbidden", a body above 10 MiB 413 ``REQUEST_TOO_LARGE``, a handler
slower than the integration timeout 504 ``INTEGRATION_TIMEOUT``, a malformed proxy response
502. Differences from API Gateway, on purpose: an unknown path is 404 ``not_found`` and a
known path with another method 405 ``method_not_allowed`` (API Gateway answers 403
``MISSING_AUTHENTICATION_TOKEN`` for both); no usage-plan throttling or quotas; requests
beyond a function's reserved concurrency wait instead of being throttled; plain HTTP.

Both functions run in one process, so their environments are merged; two functions that
set one variable to different values are refused at start.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sdaas.local._serve import (
    JsonHandler,
    LoopbackServer,
    serve_until_signalled,
    write_ready_file,
)
from sdaas.local.functions import (
    FunctionError,
    enter_runtime,
    function_environments,
    lambda_context,
    load_handler,
    merged_environment,
)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit
DEFAULT_TIMEOUT_SECONDS = 29.0
KEY_REFRESH_SECONDS = 30.0
KEY_MISS_REFRESH_SECONDS = 1.0
_INVOKE_URI = re.compile(r"/functions/(?P<arn>arn:[^/]+)/invocations$")


class AdapterError(FunctionError):
    """The deployed API cannot be served locally (explained in the message)."""


# --- what the deployed stack says ---------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # as configured: "/v1alpha2/tasks/{id}"
    api_key_required: bool
    function_name: str
    handler: str
    timeout_seconds: float
    pattern: re.Pattern[str] = field(compare=False)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}


def resource_pattern(resource: str) -> re.Pattern[str]:
    """``/a/{id}`` matches ``/a/x`` (``id`` = ``x``); ``{proxy+}`` matches the rest."""
    parts = []
    for segment in resource.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("/" + "/".join(parts) if parts != [""] else "/")


def discover_routes(apigateway: Any, lambda_client: Any, api_id: str) -> list[Route]:
    """Every method of the REST API with an ``AWS_PROXY`` integration to a Lambda function."""
    routes: list[Route] = []
    position = None
    while True:
        kwargs: dict[str, Any] = {"restApiId": api_id, "limit": 500}
        if position:
            kwargs["position"] = position
        page = apigateway.get_resources(**kwargs)
        for resource in page.get("items", []):
            for verb in sorted(resource.get("resourceMethods") or {}):
                method = apigateway.get_method(restApiId=api_id, resourceId=resource["id"],
                                               httpMethod=verb)
                integration = method.get("methodIntegration") or apigateway.get_integration(
                    restApiId=api_id, resourceId=resource["id"], httpMethod=verb)
                if integration.get("type") != "AWS_PROXY":
                    raise AdapterError(f"{verb} {resource['path']}: integration type "
                                       f"{integration.get('type')} is not served locally")
                match = _INVOKE_URI.search(integration.get("uri", ""))
                if match is None:
                    raise AdapterError(f"{verb} {resource['path']}: integration URI "
                                       f"{integration.get('uri')!r} names no Lambda function")
                function = lambda_client.get_function_configuration(
                    FunctionName=match.group("arn"))
                timeout_ms = integration.get("timeoutInMillis") or DEFAULT_TIMEOUT_SECONDS * 1000
                routes.append(Route(
                    method=verb, resource=resource["path"],
                    api_key_required=bool(method.get("apiKeyRequired")),
                    function_name=function["FunctionName"], handler=function["Handler"],
                    timeout_seconds=float(timeout_ms) / 1000,
                    pattern=resource_pattern(resource["path"])))
        position = page.get("position")
        if not position:
            break
    if not routes:
        raise AdapterError(f"REST API {api_id} has no methods")
    return routes


class ApiKeys:
    """The enabled keys of the usage plans attached to the API's stage."""

    def __init__(self, apigateway: Any, api_id: str, stage: str) -> None:
        self._client = apigateway
        self._api_id = api_id
        self._stage = stage
        self._values: frozenset[str] = frozenset()
        self._loaded_at = -1e9
        self._lock = threading.Lock()

    def load(self) -> frozenset[str]:
        values = set()
        plans = self._client.get_usage_plans(limit=500).get("items", [])
        for plan in plans:
            stages = plan.get("apiStages") or []
            if not any(s.get("apiId") == self._api_id and s.get("stage") == self._stage
                       for s in stages):
                continue
            for item in self._client.get_usage_plan_keys(usagePlanId=plan["id"],
                                                         limit=500).get("items", []):
                key = self._client.get_api_key(apiKey=item["id"], includeValue=True)
                if key.get("enabled") and key.get("value"):
                    values.add(key["value"])
        with self._lock:
            self._values = frozenset(values)
            self._loaded_at = time.monotonic()
        return self._values

    def valid(self, value: str | None) -> bool:
        if not value:
            return False
        age = time.monotonic() - self._loaded_at
        if value in self._values and age < KEY_REFRESH_SECONDS:
            return True
        if age >= KEY_MISS_REFRESH_SECONDS:
            try:
                self.load()
            except Exception:  # the emulator is busy: judge by what we know
                return value in self._values
        return value in self._values


# --- events and responses -------------------------------------------------------------------


def build_event(*, method: str, path: str, route: Route, path_parameters: dict[str, str],
                headers: list[tuple[str, str]], query: str, body: bytes, stage: str,
                host: str, request_id: str, source_ip: str, api_id: str,
                api_key: str | None) -> dict[str, Any]:
    """The REST proxy event (payload 1.0) API Gateway would send for this request."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    query_single = {k: v for k, v in pairs} or None
    query_multi: dict[str, list[str]] = {}
    for name, value in pairs:
        query_multi.setdefault(name, []).append(value)
    if body:
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    else:
        text, encoded = None, False
    now = time.time()
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": route.resource,
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "apiKey": api_key, "userAgent":
                         single.get("User-Agent") or single.get("user-agent")},
            "domainName": host,
            "apiId": api_id,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def gateway_error(status: int, code: str, message: str,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A gateway response in the stack's template (``ServerlessIngress``)."""
    body = {"error": {"code": code, "message": message, "details": []}}
    return status, {"Content-Type": "application/json", **(headers or {})}, \
        json.dumps(body).encode()


def proxy_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy response as status, headers and body; 502 when it is malformed."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return gateway_error(502, "DEFAULT_5XX", "Internal server error (malformed Lambda "
                                                 "proxy response)")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if isinstance(values, list) and values:
            headers[str(name)] = ", ".join(str(v) for v in values)
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(str(body))
    else:
        data = str(body).encode("utf-8")
    return int(result["statusCode"]), headers, data


# --- the server -----------------------------------------------------------------------------


@dataclass
class ApiAdapter:
    """Serves ``routes`` under ``/<stage>`` on ``127.0.0.1:<port>``."""

    routes: list[Route]
    stage: str
    api_id: str
    keys: ApiKeys
    port: int = 0
    workers_per_function: int = 20
    log: Callable[[dict[str, Any]], None] | None = None
    _server: LoopbackServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict, init=False, repr=False)
    _handlers: dict[str, Callable[[Any, Any], Any]] = field(default_factory=dict, init=False,
                                                             repr=False)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the adapter is not running; call start() first")
        return f"http://127.0.0.1:{self._server.port}/{self.stage}"

    def start(self) -> ApiAdapter:
        for route in self.routes:
            self._handlers[route.handler] = load_handler(route.handler)
            if route.function_name not in self._pools:
                self._pools[route.function_name] = ThreadPoolExecutor(
                    self.workers_per_function, thread_name_prefix=route.function_name)
        outer = self

        class Handler(JsonHandler):
            max_body_bytes = MAX_BODY_BYTES

            def _serve(self) -> None:
                outer._serve(self)

            def __getattr__(self, name: str) -> Any:
                # Every method (TRACE, CONNECT, WebDAV's ...) gets a JSON answer from the
                # routes, as API Gateway gives one, never http.server's HTML 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self._server = LoopbackServer(self.port, Handler)
        self.port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,),
                                        name="api-adapter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    # -- one request -----------------------------------------------------------------------
    def _serve(self, http: JsonHandler) -> None:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        status, headers, data = self._answer(http, request_id)
        headers.setdefault("Content-Type", "application/json")
        headers["x-amzn-RequestId"] = request_id
        http.send_raw(status, data, headers.pop("Content-Type"), headers)
        if self.log is not None:
            self.log({"event": "request", "method": http.command,
                      "path": urlsplit(http.path).path, "status": status,
                      "request_id": request_id,
                      "duration_ms": round((time.monotonic() - started) * 1000, 1)})

    def _answer(self, http: JsonHandler, request_id: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(http.path)
        prefix = f"/{self.stage}"
        raw_path = parts.path
        path = raw_path[len(prefix):] if raw_path.startswith(prefix + "/") else None
        if raw_path == prefix:
            path = "/"
        body = self._read_body(http)
        if body is None:
            return gateway_error(413, "REQUEST_TOO_LARGE", "Request Too Long")
        route, path_parameters, allowed = None, {}, []
        if path is not None:
            normalized = path.rstrip("/") or "/"
            for candidate in self.routes:
                found = candidate.match(normalized)
                if found is None:
                    continue
                allowed.append(candidate.method)
                if candidate.method == http.command:
                    route, path_parameters = candidate, found
        if route is None:
            if allowed:
                return gateway_error(405, "method_not_allowed",
                                     f"{raw_path} accepts {', '.join(sorted(allowed))}",
                                     {"Allow": ", ".join(sorted(allowed))})
            listing = ", ".join(f"{r.method} {prefix}{r.resource}" for r in self.routes)
            return gateway_error(404, "not_found", f"no route for {http.command} {raw_path}; "
                                                   f"this API has: {listing}")
        api_key = http.headers.get("x-api-key")
        if route.api_key_required and not self.keys.valid(api_key):
            return gateway_error(403, "INVALID_API_KEY", "Forbidden",
                                 {"x-amzn-ErrorType": "ForbiddenException"})
        host = http.headers.get("Host") or f"127.0.0.1:{self.port}"
        headers = list(http.headers.items())
        headers += [("X-Forwarded-For", http.client_address[0]),
                    ("X-Forwarded-Proto", "http"),
                    ("X-Forwarded-Port", str(self.port))]
        event = build_event(method=http.command, path=path or "/", route=route,
                            path_parameters=path_parameters, headers=headers,
                            query=parts.query, body=body, stage=self.stage, host=host,
                            request_id=request_id, source_ip=http.client_address[0],
                            api_id=self.api_id, api_key=api_key)
        deadline = time.monotonic() + route.timeout_seconds
        handler = self._handlers[route.handler]
        future = self._pools[route.function_name].submit(
            handler, event, lambda_context(route.function_name, request_id, deadline))
        try:
            result = future.result(timeout=route.timeout_seconds)
        except FutureTimeout:
            return gateway_error(504, "INTEGRATION_TIMEOUT", "Endpoint request timed out")
        except Exception as exc:  # an unhandled error in the function: API Gateway's 502
            print(json.dumps({"event": "handler_error", "function": route.function_name,
                              "request_id": request_id, "error": type(exc).__name__}),
                  flush=True)
            return gateway_error(502, "DEFAULT_5XX", "Internal server error")
        return proxy_response(result)

    @staticmethod
    def _read_body(http: JsonHandler) -> bytes | None:
        if "chunked" in (http.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(http.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while http.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    http.close_connection = True
                    return None
                chunks.append(http.rfile.read(size))
                http.rfile.readline()
            return b"".join(chunks)
        length = int(http.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            http.close_connection = True
            return None
        return http.rfile.read(length) if length else b""


def connect(emulator: str, region: str, api_id: str, stage: str,
            port: int = 0) -> tuple[ApiAdapter, dict[str, str]]:
    """Read the deployed API from the emulator; return the adapter (not started) and the
    merged environment its functions need."""
    import boto3  # noqa: PLC0415 - only the adapter process needs it

    kwargs = {"endpoint_url": emulator, "region_name": region}
    apigateway = boto3.client("apigateway", **kwargs)
    lambda_client = boto3.client("lambda", **kwargs)
    stages = {s["stageName"] for s in apigateway.get_stages(restApiId=api_id).get("item", [])}
    if stage not in stages:
        raise AdapterError(f"REST API {api_id} has no stage {stage!r} (it has "
                           f"{sorted(stages) or 'none'})")
    routes = discover_routes(apigateway, lambda_client, api_id)
    environment = merged_environment(
        function_environments(lambda_client, {r.function_name for r in routes}))
    keys = ApiKeys(apigateway, api_id, stage)
    if not keys.load():
        raise AdapterError(f"no enabled API key is attached to stage {stage!r} of {api_id}")
    return ApiAdapter(routes=routes, stage=stage, api_id=api_id, keys=keys, port=port), \
        environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sdaas.local.api_adapter",
        description="Serve a REST API deployed to the local emulator through its Lambda "
                    "handlers, in this process.")
    parser.add_argument("--emulator", required=True, help="the emulator's endpoint URL")
    parser.add_argument("--region", required=True)
    parser.add_argument("--api-id", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    try:
        adapter, environment = connect(args.emulator, args.region, args.api_id, args.stage,
                                       args.port)
    except FunctionError as exc:
        print(f"api adapter: {exc}", file=sys.stderr)
        return 2
    enter_runtime(environment, args.emulator, args.region)
    adapter.log = lambda entry: print(json.dumps(entry), flush=True)
    adapter.start()
    print(json.dumps({"event": "api_adapter_started", "endpoint": adapter.endpoint,
                      "routes": [f"{r.method} {r.resource} -> {r.handler}"
                                 for r in adapter.routes]}), flush=True)
    write_ready_file(args.ready_file, port=adapter.port, endpoint=adapter.endpoint)
    serve_until_signalled(adapter.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
