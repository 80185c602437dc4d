"""The result message on the result topic (ARCHITECTURE §4, docs/contracts.md)."""

from __future__ import annotations

import json
import mimetypes
from typing import Any


def result_message(
    *, runtime: str, task_id: str, status: str, images: list[str], output_url: str,
    context: Any, error: dict[str, Any] | None, timings: dict[str, float],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """``image_url`` lists the images (the reference's clients read it); ``outputs`` every
    output file, videos included, with its content type."""
    return {
        "runtime": runtime,
        "id": task_id,
        "result": status == "completed",
        "status": status,
        "image_url": images,
        "outputs": outputs,
        "output_url": output_url,
        "context": context,
        "error": error,
        "timings": timings,
    }


def outputs_of_images(images: list[str]) -> list[dict[str, Any]]:
    """``outputs`` for a record written before they were recorded: its images, typed by
    their extension."""
    return [{"url": url, "content_type": mimetypes.guess_type(url)[0] or
             "application/octet-stream", "animated": False} for url in images]


def message_from_record(record: dict[str, Any], bucket: str) -> dict[str, Any]:
    """Rebuild the result message from a final task record (republishing after a crash)."""
    context: Any = record.get("context", "")
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except json.JSONDecodeError:
            pass
    location = record.get("output_location") or f"s3://{bucket}/output/{record['id']}"
    return result_message(
        runtime=str(record.get("runtime", "")), task_id=str(record["id"]),
        status=str(record.get("status")), images=list(record.get("images") or []),
        output_url=f"{location}/result.json", context=context, error=record.get("error"),
        timings=dict(record.get("timings") or {}),
        outputs=list(record.get("outputs") or outputs_of_images(
            list(record.get("images") or []))),
    )


class ResultPublisher:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def publish(self, message: dict[str, Any]) -> str:
        answer = self._sns.publish(
            TopicArn=self.topic_arn,
            Message=json.dumps(message, separators=(",", ":"), default=str),
            MessageAttributes={
                "runtime": {"DataType": "String", "StringValue": message["runtime"] or "-"},
                "status": {"DataType": "String", "StringValue": message["status"]},
            },
        )
        return str(answer.get("MessageId", ""))
