"""Fault injection in front of the AWS emulator: make chosen API calls fail with a 5xx.

Installed as the emulator's ``wrap_app``; the rules are matched on the service (from the
SigV4 credential scope) and the operation (from ``X-Amz-Target``, the query ``Action`` or, for
S3, the method and path).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


@dataclass
class Rule:
    service: str
    operation: str
    remaining: float
    status: int = 500
    skip: int = 0  # let this many matching calls through first
    hits: int = 0


class AwsFaults:
    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []

    def fail(self, service: str, operation: str, times: float = float("inf"),
             status: int = 500, skip: int = 0) -> Rule:
        rule = Rule(service, operation, times, status, skip)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            service, operation = _identify(environ)
            rule = self._match(service, operation)
            if rule is None:
                return app(environ, start_response)
            body, content_type = _error_body(service)
            start_response(f"{rule.status} Injected", [("Content-Type", content_type),
                                                       ("Content-Length", str(len(body)))])
            return [body]

        return middleware

    def _match(self, service: str, operation: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.service == service and rule.operation == operation and rule.remaining > 0:
                    if rule.skip > 0:
                        rule.skip -= 1
                        return None
                    rule.remaining -= 1
                    rule.hits += 1
                    return rule
        return None


def _identify(environ: dict[str, Any]) -> tuple[str, str]:
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if service == "s3":
        method = environ.get("REQUEST_METHOD", "")
        has_key = environ.get("PATH_INFO", "").strip("/").count("/") >= 1
        names = {("PUT", True): "PutObject", ("GET", True): "GetObject",
                 ("HEAD", True): "HeadObject", ("DELETE", True): "DeleteObject"}
        return service, names.get((method, has_key), method)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return service, action


def _error_body(service: str) -> tuple[bytes, str]:
    if service in ("sqs", "dynamodb"):
        return (b'{"__type":"InternalFailure","message":"injected fault"}',
                "application/x-amz-json-1.0")
    if service == "s3":
        return (b"<Error><Code>InternalError</Code><Message>injected fault</Message></Error>",
                "application/xml")
    return (b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code>"
            b"<Message>injected fault</Message></Error><RequestId>0</RequestId></ErrorResponse>",
            "text/xml")
