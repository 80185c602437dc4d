"""boto3 clients with timeouts and bounded retries, and failure classification.

Clients are created once per Lambda execution environment (warm invocations reuse them).
Every call has a connect and a read timeout, and botocore's "standard" retry mode retries
throttling, 5xx and connection errors once (2 attempts): a dependency that is down costs
at most about 9 s per call, inside the functions' 15 s timeout and API Gateway's 29 s.
Beyond that the client retries the whole request, which the handlers make safe.

Failures leave this module as :class:`DependencyError`, classified as transient (worth a
retry by the client: throttling, 5xx, timeouts, connection errors) or not (access denied,
missing resource: our own misconfiguration).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 3
TOTAL_MAX_ATTEMPTS = 2

_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "KMSThrottlingException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)


class DependencyError(Exception):
    """An AWS dependency failed; never the client's fault."""

    def __init__(self, service: str, operation: str, code: str, transient: bool) -> None:
        super().__init__(f"{service} {operation} failed: {code}")
        self.service = service
        self.operation = operation
        self.code = code
        self.transient = transient


def _config(service: str) -> Config:
    options: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        "retries": {"mode": "standard", "total_max_attempts": TOTAL_MAX_ATTEMPTS},
    }
    if service == "s3":
        # SigV4 presigned URLs on the regional virtual-hosted endpoint (the default would be
        # the global endpoint, which redirects for new buckets outside us-east-1). A custom
        # endpoint (local emulator) gets path-style URLs, which work on any host name.
        custom = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options["signature_version"] = "s3v4"
        options["s3"] = {"addressing_style": "path" if custom else "virtual"}
    return Config(**options)


@functools.cache
def client(service: str) -> Any:
    """The shared client for ``service`` (``dynamodb``, ``sns`` or ``s3``)."""
    return boto3.client(service, config=_config(service))


def reset_clients() -> None:
    """Forget the cached clients (tests switch between emulated accounts)."""
    client.cache_clear()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def classify(service: str, operation: str, exc: Exception) -> DependencyError:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return DependencyError(service, operation, code, code in _TRANSIENT_CODES or status >= 500)
    # Connection errors, timeouts, and anything else raised by botocore itself.
    return DependencyError(service, operation, type(exc).__name__, transient=True)


def call(service: str, operation: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """Run one client call, turning every botocore failure into :class:`DependencyError`."""
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise classify(service, operation, exc) from exc
