"""Every error code the API answers with: the handlers' own and API Gateway's.

:data:`ERRORS` is the registry of the handlers' codes: an :class:`~lambda_src.api.ApiError`
with a code or status it does not list cannot be built, and the OpenAPI document
(:mod:`lambda_src.openapi`) lists each code under the operations it names, so a new code
is documented or fails the tests. :data:`GATEWAY_ERRORS` are API Gateway's own answers,
rendered by the REST API's ``DEFAULT_4XX``/``DEFAULT_5XX`` gateway responses in the same
envelope with the gateway response type as the code (``constructs_lib/ingress/api.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Operation ids of the OpenAPI document, one per route of the REST API.
SUBMIT_TASK = "submitTask"
SUBMIT_LEGACY_TASK = "submitLegacyTask"
GET_TASK = "getTask"
CANCEL_TASK = "cancelTask"
GET_OPENAPI = "getOpenApiDocument"
OPERATIONS = (SUBMIT_TASK, SUBMIT_LEGACY_TASK, GET_TASK, CANCEL_TASK, GET_OPENAPI)
SUBMISSIONS = (SUBMIT_TASK, SUBMIT_LEGACY_TASK)
ON_A_TASK = (GET_TASK, CANCEL_TASK)


@dataclass(frozen=True, kw_only=True)
class ErrorCode:
    """A code, the statuses it comes with, the operations that answer it, and when."""

    statuses: tuple[int, ...]
    operations: tuple[str, ...]
    when: str


ERRORS: Mapping[str, ErrorCode] = {
    "invalid_json": ErrorCode(
        statuses=(400,), operations=SUBMISSIONS,
        when="the body is empty, not UTF-8, bad base64, not JSON, holds NaN/Infinity or "
             "numbers out of range, or nests deeper than 64 levels"),
    "invalid_request": ErrorCode(
        statuses=(400,), operations=(*SUBMISSIONS, *ON_A_TASK),
        when="a field breaks a rule (every problem listed in details), or the task id in "
             "the path is not a valid id"),
    "not_found": ErrorCode(
        statuses=(404,), operations=ON_A_TASK,
        when="no task with this id, or its record expired (a handler reached on a path "
             "that is not its route answers it too)"),
    "method_not_allowed": ErrorCode(
        statuses=(405,), operations=(),
        when="a handler reached with another method than its route's (the Allow header "
             "names it); API Gateway itself answers MISSING_AUTHENTICATION_TOKEN first"),
    "id_conflict": ErrorCode(
        statuses=(409,), operations=SUBMISSIONS,
        when="the id was already submitted with a different task"),
    "task_final": ErrorCode(
        statuses=(409,), operations=(CANCEL_TASK,),
        when="the task is already completed or failed (its status in details): only a "
             "queued or running task can be cancelled"),
    "payload_too_large": ErrorCode(
        statuses=(413,), operations=SUBMISSIONS,
        when="the body is larger than the function's MAX_BODY_BYTES"),
    "configuration_error": ErrorCode(
        statuses=(500,), operations=OPERATIONS,
        when="the function's environment is missing or invalid (logged in detail)"),
    "internal_error": ErrorCode(
        statuses=(500,), operations=OPERATIONS,
        when="a bug (logged with the exception type and code locations)"),
    "task_table_failed": ErrorCode(
        statuses=(502, 503), operations=(*SUBMISSIONS, *ON_A_TASK),
        when="DynamoDB refused the call (502) or is throttling or unreachable (503)"),
    "publish_failed": ErrorCode(
        statuses=(502, 503), operations=SUBMISSIONS,
        when="SNS refused the publish (502) or is throttling or unreachable (503)"),
    "claim_check_failed": ErrorCode(
        statuses=(502, 503), operations=SUBMISSIONS,
        when="storing a large task in S3 was refused (502) or S3 is unreachable (503)"),
    "presign_failed": ErrorCode(
        statuses=(502, 503), operations=ON_A_TASK,
        when="signing an output URL failed (502) or is temporarily impossible (503)"),
}

# API Gateway's answers for this REST API (API keys, a usage plan, a parameter validator,
# Lambda proxy integrations): response type -> (status, when). Every operation can get them.
GATEWAY_ERRORS: Mapping[str, tuple[int, str]] = {
    "BAD_REQUEST_PARAMETERS": (400, "a required path parameter is missing"),
    "INVALID_API_KEY": (403, "the x-api-key header is missing, unknown or disabled"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "no such path or method on this API"),
    "REQUEST_TOO_LARGE": (413, "the body is larger than API Gateway's 10 MiB"),
    "THROTTLED": (429, "the usage plan's or stage's rate or burst limit was exceeded"),
    "QUOTA_EXCEEDED": (429, "the usage plan's daily quota is used up"),
    "API_CONFIGURATION_ERROR": (500, "the API is misconfigured"),
    "DEFAULT_5XX": (502, "the function failed or returned a malformed response"),
    "INTEGRATION_FAILURE": (504, "the function could not be invoked"),
    "INTEGRATION_TIMEOUT": (504, "the function did not answer within 29 seconds"),
}


def check(code: str, status: int) -> None:
    """Refuse a code the registry does not have, or a status it does not list for it."""
    entry = ERRORS.get(code)
    if entry is None:
        raise ValueError(f"error code {code!r} is not in lambda_src.errors.ERRORS")
    if status not in entry.statuses:
        raise ValueError(f"error code {code!r} comes with {entry.statuses}, not {status}")
