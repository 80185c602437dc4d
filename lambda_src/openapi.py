"""The OpenAPI 3.1 document of the task API, built from the rules the handlers apply.

Every limit comes from the task contract's own constants (``task_contract.metadata``,
``task_contract.content``), every error code from :mod:`lambda_src.errors`, so the document
cannot drift from the validation the functions run. The status function serves it at
``GET /v1alpha2/openapi.json`` for the stack it runs in (its server URL, its runtimes);
``python -m lambda_src.openapi`` writes the stack-independent copy kept as
``docs/openapi.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambda_src import errors
from lambda_src.errors import ERRORS, GATEWAY_ERRORS
from task_contract.content import (
    IMAGE_LINK,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    SDWEBUI_NUMBERS,
    SDWEBUI_TEXTS,
    NumberRule,
)
from task_contract.jsontext import MAX_JSON_DEPTH
from task_contract.layout import DEFAULT_PREFIX
from task_contract.metadata import (
    ID_PATTERN,
    MAX_METADATA_BYTES,
    MAX_PREFIX_CHARS,
    PREFIX_SEGMENT,
    RESERVED_PREFIXES,
    TASKTYPES,
)
from task_contract.record import STATUSES
from task_contract.webhook import EVENTS, MAX_URL_CHARS

OPENAPI_VERSION = "3.1.0"
DOCUMENT_PATH = "/v1alpha2/openapi.json"
API_KEY_HEADER = "x-api-key"
JSON = "application/json"
DEFAULT_SERVER = {
    "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
    "description": "The stack's stage (the api_endpoint output), or a custom domain",
    "variables": {
        "api_id": {"default": "abcdef1234", "description": "the REST API id"},
        "region": {"default": "us-west-2"},
        "stage": {"default": "prod", "description": "the configured stage_name"},
    },
}
_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _anchored(pattern: str) -> str:
    """A Python ``fullmatch`` pattern as a JSON Schema (ECMA-262, unanchored) pattern."""
    return f"^(?:{pattern})$"


# --- request schemas -------------------------------------------------------------------------


def _number(rule: NumberRule) -> dict[str, Any]:
    kind = "integer" if rule.integer else "number"
    schema: dict[str, Any] = {"type": [kind, "null"] if rule.nullable else kind,
                              "minimum": _plain(rule.low), "maximum": _plain(rule.high)}
    if rule.multiple_of:
        schema["multipleOf"] = rule.multiple_of
    return schema


def _plain(value: float) -> int | float:
    return int(value) if value == int(value) else value


def _text(limit: int, nullable: bool) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "maxLength": limit}


_IMAGE = {"type": "string", "minLength": 1,
          "description": "base64 image data, a data: URI or a URL"}


def sdwebui_content() -> dict[str, Any]:
    """The SD WebUI fields the contract checks; every other field passes untouched."""
    properties: dict[str, Any] = {name: _number(rule) for name, rule in SDWEBUI_NUMBERS.items()}
    properties.update({name: _text(limit, nullable)
                       for name, (limit, nullable) in SDWEBUI_TEXTS.items()})
    properties.update({
        "init_images": {"type": ["array", "null"], "items": _IMAGE},
        "image": {**_IMAGE, "type": ["string", "null"]},
        "mask": {**_IMAGE, "type": ["string", "null"]},
        "imageList": {"type": ["array", "null"], "items": {
            "type": "object", "required": ["data"], "properties": {"data": _IMAGE}}},
        "alwayson_scripts": {"type": "object", "properties": {
            IMAGE_LINK: {"type": "string", "minLength": 1,
                         "description": "an input image URL (image-to-image, "
                                        "extra-single-image)"}}},
        "override_settings": {"type": "object", "properties": {
            "sd_model_checkpoint": {"type": "string", "maxLength": MAX_NAME_CHARS}}},
    })
    return {
        "type": "object",
        "description": (
            "An SD WebUI (AUTOMATIC1111) API body. Integers are JSON integer literals (16.0 "
            "is refused). image-to-image needs init_images (or alwayson_scripts.image_link), "
            "extra-single-image image (or image_link), extra-batch-images imageList. "
            f"Prompts hold at most {MAX_PROMPT_CHARS} characters. Fields not listed pass "
            "to the WebUI untouched."),
        "properties": properties,
        "additionalProperties": True,
    }


def comfyui_workflow() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A ComfyUI workflow in API format ('Save (API Format)'): node id -> "
                       "node. A UI-format export is refused with a hint.",
        "minProperties": 1,
        "additionalProperties": {
            "type": "object", "required": ["class_type", "inputs"],
            "properties": {"class_type": {"type": "string", "minLength": 1},
                           "inputs": {"type": "object"}},
        },
    }


def task_id() -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 64,
            "pattern": _anchored(ID_PATTERN.pattern),
            "description": "1-64 characters of A-Z, a-z, 0-9, _ and -"}


def prefix() -> dict[str, Any]:
    segment = PREFIX_SEGMENT.pattern
    reserved = ", ".join(f"'{name}/'" for name in RESERVED_PREFIXES)
    # No maxLength: the limit applies once trailing slashes are removed, which a length
    # keyword cannot say; the document accepts more rather than refuse what the API takes.
    return {
        "type": ["string", "null"],
        "pattern": f"^{segment}(?:/{segment})*/*$",
        "default": DEFAULT_PREFIX,
        "description": (
            "The output key prefix: segments of A-Z a-z 0-9 . _ - separated by /, no leading "
            f"/, no '.' or '..' segment, not under the reserved {reserved}, at most "
            f"{MAX_PREFIX_CHARS} characters once trailing slashes are removed; null or "
            f"absent means '{DEFAULT_PREFIX}'."),
    }


def webhook() -> dict[str, Any]:
    """``metadata.webhook`` (task_contract.webhook): where the result is POSTed, signed."""
    return {
        "type": ["object", "null"], "required": ["url"], "additionalProperties": False,
        "description": (
            "Where the result message is POSTed, signed (X-Sdaas-Signature: t=<unix "
            "seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>), once the task ends with one of "
            "`events`; retried with backoff on 5xx, 408, 429 and timeouts. No user name or "
            "password, no #fragment, not localhost nor a non-public address (checked again "
            "after DNS resolution at delivery). null or absent: no webhook."),
        "properties": {
            "url": {"type": "string", "maxLength": MAX_URL_CHARS,
                    "pattern": "^[Hh][Tt][Tt][Pp][Ss]://[^/?#]"},
            "events": {"type": ["array", "null"], "minItems": 1,
                       "items": {"type": "string", "enum": list(EVENTS)},
                       "description": "null or absent: every final status"},
        },
    }


def _metadata(tasktypes: tuple[str, ...], runtime_names: list[str] | None) -> dict[str, Any]:
    runtime: dict[str, Any] = {"type": "string", "minLength": 1,
                               "description": "a runtime configured in the stack"}
    if runtime_names is not None:
        runtime["enum"] = runtime_names
    return {
        "type": "object", "required": ["id", "runtime", "tasktype"],
        "description": f"At most {MAX_METADATA_BYTES} bytes as JSON; other keys pass through.",
        "properties": {
            "id": _ref("TaskId"),
            "runtime": runtime,
            "tasktype": {"type": "string", "enum": list(tasktypes)},
            "prefix": _ref("Prefix"),
            "context": {"description": "any JSON, echoed in the result message"},
            "webhook": _ref("Webhook"),
        },
        "additionalProperties": True,
    }


_CONTENT_OF = {"sdwebui": "SdWebuiContent", "comfyui": "ComfyuiWorkflow"}


def _tasks(runtimes: Mapping[str, str] | None) -> dict[str, Any]:
    """One task schema per runtime type (``SdwebuiTask``, ``ComfyuiTask``)."""
    schemas = {}
    for runtime_type, tasktypes in TASKTYPES.items():
        names = (None if runtimes is None else
                 sorted(name for name, kind in runtimes.items() if kind == runtime_type))
        if names == []:
            continue  # the stack has no runtime of this type
        schemas[f"{runtime_type.capitalize()}Task"] = {
            "type": "object", "required": ["metadata", "content"],
            "properties": {"metadata": _metadata(tasktypes, names),
                           "content": _ref(_CONTENT_OF[runtime_type])},
        }
    return schemas


def v1alpha1_request() -> dict[str, Any]:
    """The legacy body, or the early reference client's ``{"task": <legacy body>}``."""
    return {
        "description": "The reference's legacy body (V1alpha1Body); an early reference client "
                       "wrapped it in {\"task\": ...}, which is accepted too.",
        "anyOf": [_ref("V1alpha1Body"), {
            "type": "object", "required": ["task"], "not": {"required": ["alwayson_scripts"]},
            "properties": {"task": _ref("V1alpha1Body")}}],
    }


def v1alpha1_body() -> dict[str, Any]:
    tasktypes = list(TASKTYPES["sdwebui"])
    return {
        "description": "An SD WebUI body whose alwayson_scripts carries the routing keys. It "
                       "is routed to the sdwebui runtime serving the checkpoint, else to one "
                       "loading models on demand.",
        "allOf": [_ref("SdWebuiContent"), {
            "type": "object", "required": ["alwayson_scripts"],
            "properties": {"alwayson_scripts": {
                "type": "object", "required": ["task", "id_task", "sd_model_checkpoint"],
                "properties": {
                    "task": {"type": "string", "enum": tasktypes},
                    "id_task": _ref("TaskId"),
                    "sd_model_checkpoint": {"type": "string", "minLength": 1},
                    "save_dir": _ref("Prefix"),
                }}},
        }],
    }


# --- response schemas ------------------------------------------------------------------------

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema = {"type": "object", "required": list(properties), "properties": properties}
    if description:
        schema["description"] = description
    return schema


def response_schemas() -> dict[str, Any]:
    return {
        "Accepted": _object({"id": _ref("TaskId"), "runtime": _STRING,
                             "output_location": _STRING,
                             "status_url": {**_STRING, "description":
                                            "absolute when the request named its host"}}),
        "LegacyAccepted": _object({"id_task": _ref("TaskId"), "sd_model_checkpoint": _STRING,
                                   "output_location": _STRING}),
        "Output": _object({"url": _STRING, "content_type": _STRING,
                           "animated": {"type": "boolean"},
                           "download_url": {**_NULLABLE_STRING, "description":
                                            "presigned; null outside the output bucket"}}),
        "TaskStatus": _object({
            "id": _ref("TaskId"), "runtime": _NULLABLE_STRING, "tasktype": _NULLABLE_STRING,
            "status": {"type": "string", "enum": list(STATUSES)},
            "attempts": {"type": "integer", "minimum": 0},
            "created_at": _NULLABLE_STRING, "updated_at": _NULLABLE_STRING,
            "output_location": _NULLABLE_STRING,
            "images": {"type": "array", "items": _STRING},
            "image_urls": {"type": "array", "items": _STRING,
                           "description": "presigned GET URLs of the images in the output "
                                          "bucket, in the order of images"},
            "outputs": {"type": "array", "items": _ref("Output")},
            "error": {"type": ["object", "null"]},
            "timings": {"type": "object"},
        }),
        "ErrorDetail": _object({"path": _STRING, "message": _STRING}),
    }


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return _object({"error": _object({
        "code": {"type": "string", "enum": codes},
        "message": _STRING,
        "details": {"type": "array", "items": _ref("ErrorDetail")},
    })})


def error_codes(operation_id: str | None) -> dict[int, list[str]]:
    """Status -> the codes an operation can answer with (its own and the gateway's);
    ``None``: the handler codes no declared operation answers with."""
    by_status: dict[int, list[str]] = {}
    for code, entry in ERRORS.items():
        wanted = (not entry.operations) if operation_id is None else (
            operation_id in entry.operations)
        if wanted:
            for status in entry.statuses:
                by_status.setdefault(status, []).append(code)
    if operation_id is not None:
        for code, (status, _) in GATEWAY_ERRORS.items():
            by_status.setdefault(status, []).append(code)
    return dict(sorted(by_status.items()))


def _describe(codes: list[str]) -> str:
    lines = []
    for code in codes:
        when = ERRORS[code].when if code in ERRORS else GATEWAY_ERRORS[code][1]
        lines.append(f"- `{code}`: {when}")
    return "\n".join(lines)


def _error_response(status: int, codes: list[str]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _describe(codes),
        "content": {JSON: {"schema": _error_schema(codes)}},
    }
    headers = {}
    if status == 503:
        headers["Retry-After"] = {"description": "seconds to wait before retrying",
                                  "schema": {"type": "string"}}
    if status == 405:
        headers["Allow"] = {"description": "the method the route accepts",
                            "schema": {"type": "string"}}
    if headers:
        response["headers"] = headers
    return response


# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One route of the REST API (``constructs_lib/ingress/api.py``) as documented."""

    operation_id: str
    path: str
    method: str
    summary: str
    success: int
    success_description: str
    response_schema: dict[str, Any]
    request_schema: dict[str, Any] | None = None
    request_example: dict[str, Any] | None = None
    id_field: str | None = None  # the success body's field naming the task, for links


_V2_EXAMPLE = {"task": {"metadata": {"id": "test-t2i", "runtime": "sdruntime",
                                     "tasktype": "text-to-image", "prefix": "output",
                                     "context": ""},
                        "content": {"prompt": "A dog", "steps": 16, "width": 512,
                                    "height": 512}}}
_V1_EXAMPLE = {"alwayson_scripts": {"task": "text-to-image", "id_task": "test-t2i-legacy",
                                    "sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors",
                                    "save_dir": "outputs"},
               "prompt": "A dog", "steps": 16, "width": 512, "height": 512}

OPERATIONS: tuple[Operation, ...] = (
    Operation(operation_id=errors.SUBMIT_TASK, path="/v1alpha2", method="post",
              summary="Submit a task", success=202,
              success_description="Accepted: recorded and queued (the same id and task again "
                                  "returns the original acceptance)",
              response_schema=_ref("Accepted"), request_schema=_ref("V1alpha2Request"),
              request_example=_V2_EXAMPLE, id_field="id"),
    Operation(operation_id=errors.SUBMIT_LEGACY_TASK, path="/v1alpha1", method="post",
              summary="Submit a task in the reference's legacy form", success=200,
              success_description="Accepted (200, as the reference answered)",
              response_schema=_ref("LegacyAccepted"), request_schema=_ref("V1alpha1Request"),
              request_example=_V1_EXAMPLE, id_field="id_task"),
    Operation(operation_id=errors.GET_TASK, path="/v1alpha2/tasks/{id}", method="get",
              summary="A task's status, outputs and presigned download URLs", success=200,
              success_description="The task", response_schema=_ref("TaskStatus"),
              id_field="id"),
    Operation(operation_id=errors.CANCEL_TASK, path="/v1alpha2/tasks/{id}/cancel",
              method="post", summary="Cancel a queued or running task (idempotent; no body)",
              success=202,
              success_description="Cancelled (or already cancelled): the task's status view",
              response_schema=_ref("TaskStatus"), id_field="id"),
    Operation(operation_id=errors.GET_OPENAPI, path=DOCUMENT_PATH, method="get",
              summary="This document, for the stack that serves it", success=200,
              success_description="The OpenAPI document",
              response_schema={"type": "object", "required": ["openapi", "info", "paths"]}),
)


def _operation(op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {"description": op.success_description,
                               "content": {JSON: {"schema": op.response_schema}}}
    links = {
        target.operation_id: {"operationId": target.operation_id,
                              "parameters": {"id": f"$response.body#/{op.id_field}"}}
        for target in OPERATIONS if "{id}" in target.path
    } if op.id_field else {}
    if links:
        success["links"] = links
    responses = {str(op.success): success}
    for status, codes in error_codes(op.operation_id).items():
        responses[str(status)] = _error_response(status, codes)
    document: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if "{id}" in op.path:
        document["parameters"] = [{"name": "id", "in": "path", "required": True,
                                   "schema": _ref("TaskId")}]
    if op.request_schema is not None:
        media: dict[str, Any] = {"schema": op.request_schema}
        if op.request_example is not None:
            media["example"] = op.request_example
        document["requestBody"] = {"required": True, "content": {JSON: media}}
    document["responses"] = responses
    return document


def document(runtimes: Mapping[str, str] | None = None,
             server: str | None = None) -> dict[str, Any]:
    """The document; ``runtimes`` (name -> runtime type) narrows the runtime names to the
    stack's, ``server`` is the base URL it is served from."""
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    tasks = _tasks(runtimes)
    schemas: dict[str, Any] = {
        "TaskId": task_id(),
        "Prefix": prefix(),
        "Webhook": webhook(),
        "SdWebuiContent": sdwebui_content(),
        "ComfyuiWorkflow": comfyui_workflow(),
        **tasks,
        "V1alpha2Request": {
            "type": "object", "required": ["task"],
            "description": f"A JSON object (UTF-8, finite numbers, nesting at most "
                           f"{MAX_JSON_DEPTH} levels).",
            "properties": {"task": {"oneOf": [_ref(name) for name in tasks]}}},
        "V1alpha1Request": v1alpha1_request(),
        "V1alpha1Body": v1alpha1_body(),
        **response_schemas(),
    }
    unrouted = {
        f"Unrouted{status}": _error_response(status, codes)
        for status, codes in error_codes(None).items()
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Asynchronous Stable Diffusion task API",
            "version": "v1alpha2",
            "description": (
                "Submit image-generation tasks, then poll their status. Every error is "
                "{\"error\": {\"code\", \"message\", \"details\"}}; codes in UPPER_CASE are "
                "API Gateway's own answers."),
        },
        "servers": [{"url": server}] if server else [DEFAULT_SERVER],
        "security": [{"ApiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header",
                                           "name": API_KEY_HEADER}},
            "schemas": schemas,
            "responses": unrouted,
        },
    }


def render(doc: dict[str, Any]) -> str:
    """The document as the committed file holds it."""
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(render(document()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
