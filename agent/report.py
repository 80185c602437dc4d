"""What a finished task leaves behind: the result document and its log and metric lines."""

from __future__ import annotations

from typing import Any

from agent import logs
from agent.config import AgentConfig
from agent.job import Job

_IMAGE_FIELDS = ("init_images", "mask", "image", "images", "imageList", "data", "input_image",
                 "mask_image")


def result_document(job: Job, status: str, error: dict[str, Any] | None) -> dict[str, Any]:
    """``<prefix>/<id>/result.json`` (docs/contracts.md)."""
    task = job.task
    assert task is not None
    output = job.output
    return {
        "id": task.id,
        "runtime": task.runtime,
        "tasktype": task.tasktype,
        "status": status,
        "images": job.images,
        "outputs": [o.as_dict() for o in job.outputs],
        "parameters": redact_images(output.parameters if output else None),
        "seeds": output.seeds if output else [],
        "info": redact_images(output.info if output else None),
        "timings": job.public_timings(),
        "error": error,
    }


def redact_images(value: Any, depth: int = 0) -> Any:
    """A copy of runtime parameters without inline image data (it belongs in the images)."""
    if depth > 20:
        return None
    if isinstance(value, dict):
        return {k: ("<image>" if k in _IMAGE_FIELDS and _is_inline(v) else
                     redact_images(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_images(v, depth + 1) for v in value]
    if isinstance(value, str) and len(value) > 2048 and " " not in value[:2048]:
        return "<data>"
    return value


def _is_inline(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) > 256 or value.startswith("data:")
    if isinstance(value, list):
        return any(_is_inline(v) or isinstance(v, dict) for v in value)
    return isinstance(value, dict)


def log_finished(config: AgentConfig, job: Job, status: str,
                 error: dict[str, Any] | None) -> None:
    """One JSON log line and one CloudWatch embedded-metric line for a finished task.

    ``Total`` runs from the agent's receive to the result; ``EndToEnd`` adds the queue wait,
    so it runs from the publish to the result (what a client waits).
    """
    timings = job.public_timings()
    logs.event("task_finished", task_id=job.task_id, status=status, attempt=job.attempts,
               images=len(job.images), error_code=(error or {}).get("code"),
               error=(error or {}).get("message"),
               prefetch_wait=round(job.timings.get("prefetch_wait", 0.0), 4), **timings)
    logs.emit_metrics(
        config.metrics_namespace, {"Runtime": config.runtime_name},
        {"QueueWait": timings["queue_wait"], "Download": timings["download"],
         "Inference": timings["inference"], "Upload": timings["upload"],
         "Total": timings["total"], "EndToEnd": timings["queue_wait"] + timings["total"],
         "TasksCompleted": float(status == "completed"),
         "TasksFailed": float(status == "failed"),
         "TasksCancelled": float(status == "cancelled")},
        {"TasksCompleted": "Count", "TasksFailed": "Count", "TasksCancelled": "Count"},
    )
