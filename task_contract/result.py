"""The result message on the result topic (ARCHITECTURE §4, docs/contracts.md): a superset of
the reference's callback, built here only."""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from task_contract.layout import DEFAULT_PREFIX, output_location, result_url
from task_contract.record import COMPLETED, Fields, decode_context


def result_message(
    *, runtime: str, task_id: str, status: str, images: list[str], location: str,
    context: Any, error: dict[str, Any] | None, timings: dict[str, float],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """``{"runtime", "id", "result", "status", "image_url", "outputs", "output_url", "context",
    "error", "timings"}`` for a task whose outputs are at ``location``
    (``s3://<bucket>/<prefix>/<id>``). ``image_url`` lists the images (the reference's clients
    read it); ``outputs`` every output file, videos included, with its content type."""
    return {
        "runtime": runtime,
        "id": task_id,
        "result": status == COMPLETED,
        "status": status,
        "image_url": images,
        "outputs": outputs,
        "output_url": result_url(location),
        "context": context,
        "error": error,
        "timings": timings,
    }


def message_from_record(record: dict[str, Any], bucket: str) -> dict[str, Any]:
    """The result message of a final task record (publishing again after a crash)."""
    task_id = str(record[Fields.ID])
    location = record.get(Fields.OUTPUT_LOCATION) or output_location(
        bucket, DEFAULT_PREFIX, task_id)
    return result_message(
        runtime=str(record.get(Fields.RUNTIME, "")), task_id=task_id,
        status=str(record.get(Fields.STATUS)), images=list(record.get(Fields.IMAGES) or []),
        location=location, context=decode_context(record.get(Fields.CONTEXT, "")),
        error=record.get(Fields.ERROR), timings=dict(record.get(Fields.TIMINGS) or {}),
        outputs=list(record.get(Fields.OUTPUTS) or outputs_of_images(
            list(record.get(Fields.IMAGES) or []))),
    )


def message_text(message: dict[str, Any]) -> str:
    """The message as published: compact JSON."""
    return json.dumps(message, separators=(",", ":"), default=str)


def outputs_of_images(images: list[str]) -> list[dict[str, Any]]:
    """``outputs`` for a record written before they were recorded: its images, typed by
    their extension."""
    return [{"url": url, "content_type": mimetypes.guess_type(url)[0] or
             "application/octet-stream", "animated": False} for url in images]


def message_attributes(message: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The SNS message attributes of a result message (subscribers filter on them)."""
    return {
        "runtime": {"DataType": "String", "StringValue": message["runtime"] or "-"},
        "status": {"DataType": "String", "StringValue": message["status"]},
    }
