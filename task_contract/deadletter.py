"""Dead letters: tasks whose message reached their runtime's dead-letter queue
(docs/contracts.md, "Dead letters").

A message lands there after ``maxReceiveCount`` deliveries that ended without a delete:
usually an agent that died on the task every time (out of memory, say), so no agent lived to
report it. The dead-letter consumer (``lambda_src.dead_letters``) then marks the task
``failed`` with :func:`dead_letter_error` and stamps ``dead_lettered_at`` on its record; a
task whose record is ``failed`` and carries that stamp may run again when its message is
redriven (the agent starts it as it starts a queued task). ``sdctl dlq`` names the messages
it lists and redrives by :func:`task_id_of`.
"""

from __future__ import annotations

from typing import Any, Final

from task_contract import jsontext
from task_contract.envelope import enveloped_message
from task_contract.legacy import is_v1alpha1, unwrap
from task_contract.metadata import is_task_id
from task_contract.record import FAILED, Fields

# The error code of a task failed because its message reached the dead-letter queue.
DEAD_LETTERED: Final = "dead_lettered"


def dead_letter_error(receive_count: int) -> dict[str, Any]:
    """The ``error`` of a dead-lettered task: ``receive_count`` is the message's
    ``ApproximateReceiveCount`` when the consumer took it from the dead-letter intake."""
    return {
        "code": DEAD_LETTERED,
        "message": (f"the task's message reached the dead-letter queue after {receive_count} "
                    "receives without a result: the agent died on it or could not report "
                    "it. It stays in the dead-letter queue; `sdctl dlq redrive` runs it "
                    "again"),
        "details": [{"receive_count": receive_count}],
    }


def is_redrivable(record: dict[str, Any]) -> bool:
    """A record an agent may start again: ``failed`` and stamped ``dead_lettered_at``."""
    return record.get(Fields.STATUS) == FAILED and Fields.DEAD_LETTERED_AT in record


def task_id_of(body: Any) -> str | None:
    """The task id a runtime queue's message body names (SNS-enveloped or raw; a task, a
    claim check or a v1alpha1 body); ``None`` when it names no valid one."""
    try:
        document = jsontext.loads(body) if isinstance(body, str) else None
        inner = enveloped_message(document)
        if inner is not None:
            document = jsontext.loads(inner)
    except jsontext.JsonError:
        return None
    if is_v1alpha1(document):
        scripts = unwrap(document).get("alwayson_scripts")
        found = scripts.get("id_task") if isinstance(scripts, dict) else None
    else:
        metadata = document.get("metadata") if isinstance(document, dict) else None
        found = metadata.get("id") if isinstance(metadata, dict) else None
    return found if is_task_id(found) else None
