"""Status Lambda: ``GET /v1alpha2/tasks/{id}`` and ``GET /v1alpha2/openapi.json``.

Handler string: ``lambda_src.status.handler``. Reads the task record (strongly consistent)
and answers with its status, output images and presigned GET URLs for the images that are
in the output bucket, and every output file (videos included) with its content type and a
presigned URL. Unknown and expired ids are 404. The OpenAPI document
(:mod:`lambda_src.openapi`) names the stack's runtimes (``RUNTIMES``, optional here) and the
URL the client called.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from lambda_src import api, aws, config, openapi, tasks, validation
from lambda_src.api import ApiError
from lambda_src.aws import DependencyError
from task_contract.metadata import check_id
from task_contract.record import Fields, is_expired
from task_contract.result import outputs_of_images

RESOURCE = "/v1alpha2/tasks/{id}"
_PATH = re.compile(r"/v1alpha2/tasks/([^/]*)")


def handler(event: Any, context: Any) -> dict[str, Any]:
    return api.run("status", _handle, event, context)


def task_id_of(event: dict[str, Any], fields: dict[str, Any], resource: str,
               path: re.Pattern[str], verb: str) -> str:
    """The checked ``{id}`` of a request to ``resource`` (404 for another path, 405 for
    another method, 400 for a bad id): the path parameter, or from the path itself behind a
    greedy proxy resource (``path`` captures it)."""
    if api.route(event) == resource:
        raw_id = api.path_parameter(event, "id")
    else:
        request_path = event.get("path")
        match = (path.fullmatch(request_path.rstrip("/")) if isinstance(request_path, str)
                 else None)
        if match is None:
            raise ApiError(404, "not_found", f"no such resource; {verb} {resource}")
        raw_id = unquote(match.group(1))
    fields["route"] = resource
    if api.method(event) != verb:
        raise ApiError(
            405, "method_not_allowed", f"{resource} accepts {verb}", headers={"Allow": verb}
        )
    problems = validation.Problems()
    task_id = check_id(raw_id, "id", problems)
    problems.raise_if_any()
    assert task_id is not None
    fields["id"] = task_id
    return task_id


def _handle(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    if api.route(event) == openapi.DOCUMENT_PATH:
        return _document(event, fields)
    task_id = task_id_of(event, fields, RESOURCE, _PATH, "GET")
    cfg = config.status_config()
    try:
        record = tasks.get(cfg.table, task_id)
    except DependencyError as exc:
        fields.update(dependency=f"{exc.service}:{exc.operation}", dependency_error=exc.code)
        raise api.dependency_error(exc, "task_table_failed", "the task table") from exc
    if record is None or is_expired(record, datetime.now(UTC)):
        fields["outcome"] = "not_found"
        raise ApiError(404, "not_found", f"no task with id '{task_id}'")
    view = status_view(record, cfg)
    fields.update(runtime=view["runtime"], outcome=view["status"], images=len(view["images"]))
    return api.response(200, view)


def _document(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    fields["route"] = openapi.DOCUMENT_PATH
    if api.method(event) != "GET":
        raise ApiError(405, "method_not_allowed", f"{openapi.DOCUMENT_PATH} accepts GET",
                       headers={"Allow": "GET"})
    runtimes = config.document_runtimes()
    fields["outcome"] = "document"
    return api.response(200, openapi.document(runtimes, api.base_url(event) or None))


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    """``s3://bucket/key`` -> ``(bucket, key)``; ``None`` for anything else."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None


def presign(uri: str, cfg: config.StatusConfig) -> str | None:
    """A presigned GET URL for an object of the output bucket; ``None`` for anything else
    (never sign URLs for objects we do not own)."""
    location = split_s3_uri(uri)
    if location is None or location[0] != cfg.bucket:
        return None
    try:
        return str(aws.call(
            "s3",
            "PresignGetObject",
            aws.client("s3").generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": location[0], "Key": location[1]},
            ExpiresIn=cfg.presign_expires_seconds,
        ))
    except DependencyError as exc:
        raise api.dependency_error(exc, "presign_failed", "signing output URLs") from exc


def output_views(record: dict[str, Any], images: list[str],
                 cfg: config.StatusConfig) -> list[dict[str, Any]]:
    """Every output file (videos included) with its content type and a presigned URL."""
    recorded = record.get(Fields.OUTPUTS)
    outputs = recorded if isinstance(recorded, list) else outputs_of_images(images)
    views = []
    for output in outputs:
        if not isinstance(output, dict) or not isinstance(output.get("url"), str):
            continue
        views.append({"url": output["url"],
                      "content_type": str(output.get("content_type") or
                                          "application/octet-stream"),
                      "animated": output.get("animated") is True,
                      "download_url": presign(output["url"], cfg)})
    return views


def status_view(record: dict[str, Any], cfg: config.StatusConfig) -> dict[str, Any]:
    images = [uri for uri in record.get(Fields.IMAGES) or [] if isinstance(uri, str)]
    image_urls = [url for url in (presign(uri, cfg) for uri in images) if url is not None]
    error = record.get(Fields.ERROR)
    timings = record.get(Fields.TIMINGS)
    attempts = record.get(Fields.ATTEMPTS)
    return {
        "id": record[Fields.ID],
        "runtime": record.get(Fields.RUNTIME),
        "tasktype": record.get(Fields.TASKTYPE),
        "status": record.get(Fields.STATUS),
        "attempts": attempts if type(attempts) is int and attempts >= 0 else 0,
        "created_at": record.get(Fields.CREATED_AT),
        "updated_at": record.get(Fields.UPDATED_AT),
        "output_location": record.get(Fields.OUTPUT_LOCATION),
        "images": images,
        "image_urls": image_urls,
        "outputs": output_views(record, images, cfg),
        "error": error if isinstance(error, dict) else None,
        "timings": timings if isinstance(timings, dict) else {},
    }
