"""API Gateway REST proxy (payload v1) plumbing shared by both handlers.

Reading the event (method, route, body), strict JSON parsing, JSON responses and the error
envelope ``{"error": {"code", "message", "details": [{"path", "message"}]}}``, and
:func:`run`, which turns every exception into a JSON response and logs one line a request.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambda_src import errors
from lambda_src.aws import DependencyError
from lambda_src.config import ConfigError
from lambda_src.jsonlog import log
from task_contract import jsontext

JSON_CONTENT_TYPE = "application/json"


@dataclass
class ApiError(Exception):
    """A request that ends with an error response; its code is one of
    :data:`lambda_src.errors.ERRORS` (with one of the statuses listed there)."""

    status: int
    code: str
    message: str
    details: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        errors.check(self.code, self.status)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def dependency_error(exc: DependencyError, code: str, what: str) -> ApiError:
    """A downstream failure as a 503 (transient: retry) or 502 (not transient) response."""
    if exc.transient:
        return ApiError(
            503,
            code,
            f"{what} is temporarily unavailable; retry the same request",
            headers={"Retry-After": "1"},
        )
    return ApiError(502, code, f"{what} failed; retrying the same request is safe")


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    merged = {
        "Content-Type": JSON_CONTENT_TYPE,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    merged.update(headers or {})
    return {
        "statusCode": status,
        "headers": merged,
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(err: ApiError) -> dict[str, Any]:
    body = {"error": {"code": err.code, "message": err.message, "details": err.details}}
    return response(err.status, body, err.headers)


# --- reading the event -------------------------------------------------------------------


def method(event: dict[str, Any]) -> str:
    value = event.get("httpMethod")
    return value.upper() if isinstance(value, str) else ""


def route(event: dict[str, Any]) -> str:
    """The API resource the request matched (``/v1alpha2``), without a trailing slash.

    ``resource`` is the configured resource, so it is unaffected by custom-domain base paths;
    a greedy proxy resource falls back to the request ``path``.
    """
    resource = event.get("resource")
    if not isinstance(resource, str) or not resource or "{proxy+}" in resource:
        resource = event.get("path")
    if not isinstance(resource, str):
        return ""
    return resource.rstrip("/") or "/"


def path_parameter(event: dict[str, Any], name: str) -> Any:
    params = event.get("pathParameters")
    return params.get(name) if isinstance(params, dict) else None


def read_body(event: dict[str, Any], max_bytes: int) -> bytes:
    """The raw request body; 400 when absent or undecodable, 413 above ``max_bytes``."""
    body = event.get("body")
    if body is None or body == "":
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    if not isinstance(body, str):
        raise ApiError(400, "invalid_json", "the request body is not text")
    if event.get("isBase64Encoded") is True:
        # Base64 is 4/3 of the decoded size: refuse hopeless bodies before decoding them.
        if len(body) > (max_bytes + 2) // 3 * 4 + 4:
            raise _too_large(max_bytes)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400, "invalid_json", "the base64-encoded body is not valid base64"
            ) from None
    else:
        if len(body) > max_bytes:  # every character is at least one byte
            raise _too_large(max_bytes)
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "invalid_json", "the request body is not valid UTF-8") from None
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    return raw


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body exceeds {max_bytes} bytes")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 (a BOM is tolerated), no NaN/Infinity, finite numbers, bounded depth."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid UTF-8") from None
    try:
        return jsontext.loads(text)
    except jsontext.JsonError as exc:
        raise ApiError(400, "invalid_json", f"the request body is {exc}") from None


def base_url(event: dict[str, Any]) -> str:
    """``https://<domain>[/<base>]`` the client called, or ``""`` when the event lacks it.

    On the execute-api domain the base is ``/<stage>``; on a custom domain it is the base
    path mapping (possibly empty), which ``requestContext.path`` reveals.
    """
    context = event.get("requestContext")
    if not isinstance(context, dict):
        return ""
    domain = context.get("domainName")
    if not isinstance(domain, str) or not domain:
        return ""
    base = None
    full_path, path = context.get("path"), event.get("path")
    if isinstance(full_path, str) and isinstance(path, str) and path and full_path.endswith(path):
        base = full_path[: len(full_path) - len(path)].rstrip("/")
    if base is None:
        stage = context.get("stage")
        base = f"/{stage}" if isinstance(stage, str) and stage and stage != "$default" else ""
    return f"{_scheme(event)}://{domain}{base}"


def _scheme(event: dict[str, Any]) -> str:
    """``X-Forwarded-Proto`` when it is http or https (API Gateway sends https), else https."""
    headers = event.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "x-forwarded-proto":
                proto = str(value).split(",")[0].strip().lower()
                if proto in ("http", "https"):
                    return proto
    return "https"


# --- running a handler -------------------------------------------------------------------


Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def run(name: str, handle: Handler, event: Any, context: Any) -> dict[str, Any]:
    """Call ``handle(event, fields)``; map exceptions to JSON responses; log one line.

    ``fields`` is the request's log record: ``handle`` adds safe facts to it (id, runtime,
    outcome, sizes). Nothing from the request headers or body is logged here.
    """
    started = time.monotonic()
    if not isinstance(event, dict):
        event = {}
    request_context = event.get("requestContext")
    fields: dict[str, Any] = {
        "handler": name,
        "request_id": getattr(context, "aws_request_id", None),
        "api_request_id": (
            request_context.get("requestId") if isinstance(request_context, dict) else None
        ),
        "method": method(event)[:16] or None,
    }
    level = "INFO"
    try:
        result = handle(event, fields)
    except ApiError as err:
        result = error_response(err)
        fields.setdefault("outcome", err.code)
        if err.details:
            fields["problems"] = len(err.details)
        level = "WARNING" if err.status >= 500 else "INFO"
    except ConfigError as err:
        result = error_response(
            ApiError(500, "configuration_error", "the service is misconfigured; see its logs")
        )
        fields.update(outcome="configuration_error", config_problems=err.problems)
        level = "ERROR"
    except Exception as exc:
        result = error_response(ApiError(500, "internal_error", "an internal error occurred"))
        # The exception type and code locations only: messages may quote request data.
        frames = [
            f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}:{frame.name}"
            for frame in traceback.extract_tb(exc.__traceback__)
        ]
        fields.update(outcome="internal_error", exception=type(exc).__name__, frames=frames)
        level = "ERROR"
    fields["status"] = result["statusCode"]
    fields["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    log(level, "request", **fields)
    return result
