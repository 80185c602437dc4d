"""Turning an SQS message into a :class:`Task`.

Accepted bodies (ARCHITECTURE §4):
- an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``) or a raw body;
- ``{"metadata": {...}, "content": {...}}``, the task itself;
- ``{"metadata": {...}, "content_ref": "s3://<output bucket>/_requests/<id>/<sha>.json"}``, a
  claim check whose object holds the whole task;
- a legacy v1alpha1 body: a flat SD WebUI body with ``alwayson_scripts.task``, ``id_task``
  and ``sd_model_checkpoint`` (and ``save_dir``, ``image_link``), possibly wrapped in
  ``{"task": ...}``.

Every rule is the task contract's (``task_contract``), the one ingest applies: a message that
ingest would have refused is refused here too, whoever published it. Anything else raises
:class:`InvalidMessage`, which carries the task id when it is known so that a failed result
can still be reported, and every problem with its path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.errors import PermanentError
from task_contract import jsontext
from task_contract.envelope import enveloped_message
from task_contract.layout import DEFAULT_PREFIX, claim_check_problem, output_key
from task_contract.legacy import is_v1alpha1, unwrap, webui_body
from task_contract.metadata import is_task_id
from task_contract.problems import Problems, quote
from task_contract.task import (
    LEGACY_RUNTIME_TYPE,
    V1ALPHA2,
    NormalizedTask,
    check_task,
    check_v1alpha1,
)


class InvalidMessage(PermanentError):
    """The message is not a valid task; ``task_id`` is set when the id could be read."""

    def __init__(self, message: str, task_id: str | None = None, details: Any = None) -> None:
        super().__init__("invalid_task", message, details)
        self.task_id = task_id


@dataclass
class Task:
    """One task as the agent processes it."""

    id: str
    runtime: str
    tasktype: str
    content: dict[str, Any]
    prefix: str = DEFAULT_PREFIX
    context: Any = ""
    source: str = V1ALPHA2
    checkpoint: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return output_key(self.prefix, self.id, name)


def unwrap_envelope(body: str) -> dict[str, Any]:
    """Parse the message body (strict JSON) and remove an SNS envelope if there is one."""
    document = _loads(body, "message body")
    inner = enveloped_message(document)
    if inner is not None:
        document = _loads(inner, "SNS message")
    if not isinstance(document, dict):
        raise InvalidMessage("message body must be a JSON object")
    return document


def _loads(text: Any, what: str, task_id: str | None = None) -> Any:
    if not isinstance(text, str):
        raise InvalidMessage(f"{what} is not text", task_id)
    try:
        return jsontext.loads(text)
    except jsontext.JsonError as exc:
        raise InvalidMessage(f"{what} is {exc}", task_id) from None


def parse_task(
    body: str,
    runtime_type: str,
    runtime_name: str,
    load_claim_check: Callable[[str], str],
    output_bucket: str,
    *,
    allow_loopback_webhooks: bool = False,
) -> Task:
    """Parse and validate one message body for this runtime (a webhook with a loopback
    receiver is valid only with ``allow_loopback_webhooks``: local mode)."""
    document = unwrap_envelope(body)
    problems = Problems()
    if is_v1alpha1(document):
        scripts = unwrap(document)["alwayson_scripts"]
        task_id = scripts.get("id_task") if is_task_id(scripts.get("id_task")) else None
        normalized = check_v1alpha1(
            document,
            lambda _checkpoint: runtime_name if runtime_type == LEGACY_RUNTIME_TYPE else None,
            lambda _checkpoint: (f"v1alpha1 bodies are for {LEGACY_RUNTIME_TYPE} runtimes; this "
                                 f"queue serves runtime '{runtime_name}' ({runtime_type})"),
            problems,
        )
    else:
        metadata = document.get("metadata")
        task_id = metadata.get("id") if isinstance(metadata, dict) else None
        task_id = task_id if is_task_id(task_id) else None
        if "content_ref" in document and "content" not in document and task_id is not None:
            document = _load_claim_check(document, task_id, load_claim_check, output_bucket)
        normalized = check_task(
            document, "", {runtime_name: runtime_type}, problems,
            lambda name: f"is {quote(name)} but this queue serves runtime '{runtime_name}'",
            allow_loopback_webhooks=allow_loopback_webhooks,
        )
    if normalized is None:
        raise InvalidMessage(problems.summary(), task_id, problems.items)
    return _task(normalized, runtime_type)


def _task(normalized: NormalizedTask, runtime_type: str) -> Task:
    content = normalized.content
    if runtime_type == LEGACY_RUNTIME_TYPE:
        content = webui_body(content, normalized.tasktype)
    return Task(
        id=normalized.id,
        runtime=normalized.runtime,
        tasktype=normalized.tasktype,
        content=content,
        prefix=normalized.prefix,
        context=normalized.metadata.get("context", ""),
        source=normalized.source,
        checkpoint=normalized.checkpoint,
    )


def _load_claim_check(
    document: dict[str, Any], task_id: str, load: Callable[[str], str], bucket: str
) -> dict[str, Any]:
    """The message with the claim-checked content in place of ``content_ref``."""
    ref = document["content_ref"]
    problem = claim_check_problem(ref, bucket, task_id)
    if problem is not None:
        raise InvalidMessage(f"content_ref {problem}", task_id,
                             [{"path": "content_ref", "message": problem}])
    try:
        text = load(ref)
    except InvalidMessage:
        raise
    except PermanentError as exc:
        raise InvalidMessage(exc.message, task_id, exc.details) from exc
    stored = _loads(text, "claim-checked body", task_id)
    if not isinstance(stored, dict) or not isinstance(stored.get("content"), dict):
        raise InvalidMessage("claim-checked body has no 'content' object", task_id)
    stored_metadata = stored.get("metadata")
    stored_id = stored_metadata.get("id") if isinstance(stored_metadata, dict) else None
    if stored_id is not None and stored_id != task_id:
        raise InvalidMessage(
            f"claim-checked body belongs to task {quote(stored_id)}, not '{task_id}'", task_id
        )
    return {"metadata": document["metadata"], "content": stored["content"]}
