"""Cancel Lambda: ``POST /v1alpha2/tasks/{id}/cancel``.

Handler string: ``lambda_src.cancel.handler``. One conditional write on the task record,
nothing else (its role may only ``UpdateItem``): a task that is not final (``queued`` or
``running``) becomes ``cancelled``; the queue agent drops it when it receives it, or
interrupts it in its runtime, and publishes its ``cancelled`` result.

- 202 with the status view (as ``GET /v1alpha2/tasks/{id}`` shows it) of the cancelled task;
  the same for a task already cancelled, so repeating a cancel is safe;
- 409 ``task_final`` for a ``completed`` or ``failed`` task (its status in ``details``);
- 404 for an unknown or expired id, 400 for an id that cannot be one.

The request body, if any, is ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from lambda_src import api, config, tasks
from lambda_src.api import ApiError
from lambda_src.aws import DependencyError
from lambda_src.status import status_view, task_id_of
from task_contract.record import CANCELLED, Fields, is_expired

RESOURCE = "/v1alpha2/tasks/{id}/cancel"
_PATH = re.compile(r"/v1alpha2/tasks/([^/]*)/cancel")


def handler(event: Any, context: Any) -> dict[str, Any]:
    return api.run("cancel", _handle, event, context)


def _handle(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    task_id = task_id_of(event, fields, RESOURCE, _PATH, "POST")
    cfg = config.status_config()
    now = datetime.now(UTC)
    try:
        record, cancelled_now = tasks.cancel(cfg.table, task_id, now)
    except DependencyError as exc:
        fields.update(dependency=f"{exc.service}:{exc.operation}", dependency_error=exc.code)
        raise api.dependency_error(exc, "task_table_failed", "the task table") from exc
    if record is None or is_expired(record, now):
        fields["outcome"] = "not_found"
        raise ApiError(404, "not_found", f"no task with id '{task_id}'")
    status = record.get(Fields.STATUS)
    fields["runtime"] = record.get(Fields.RUNTIME)
    if status != CANCELLED:
        fields["outcome"] = "task_final"
        raise ApiError(409, "task_final",
                       f"task '{task_id}' is already {status}; only a queued or running task "
                       "can be cancelled", [{"path": "status", "message": str(status)}])
    fields["outcome"] = "cancelled" if cancelled_now else "already_cancelled"
    return api.response(202, status_view(record, cfg))
