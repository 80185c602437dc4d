"""Checking handler answers and request bodies against the OpenAPI document's schemas."""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator

from lambda_src import openapi

DOCUMENT = openapi.document()
_ROUTES = {(op.path, op.method.upper()): op.operation_id for op in openapi.OPERATIONS}


def operation_of(resource: str, method: str) -> str | None:
    """The operation id of a route (``/v1alpha2``, ``POST``); ``None`` off the routes."""
    return _ROUTES.get((resource, method.upper()))


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``$ref`` reach the document's components."""
    return Draft202012Validator({**schema, "components": DOCUMENT["components"]})


def schema_named(name: str) -> Draft202012Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


@functools.cache
def _response_validator(operation_id: str | None, status: int) -> Draft202012Validator:
    if operation_id is None:
        response = DOCUMENT["components"]["responses"][f"Unrouted{status}"]
    else:
        (operation,) = [op for item in DOCUMENT["paths"].values() for op in item.values()
                        if op["operationId"] == operation_id]
        assert str(status) in operation["responses"], (
            f"{operation_id} answered {status}, which the document does not list")
        response = operation["responses"][str(status)]
    return validator(response["content"]["application/json"]["schema"])


def assert_conforms(operation_id: str | None, status: int, body: Any) -> None:
    """The answer is one the document describes for the operation (or, off the documented
    operations, one of its unrouted responses)."""
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}"
                for e in _response_validator(operation_id, status).iter_errors(body)]
    assert not problems, (operation_id, status, problems, body)
