"""A task checked against the contract: the one verdict ingest and the agent both reach.

:func:`check_task` checks a v1alpha2 task ``{"metadata", "content"}``; :func:`check_v1alpha1`
checks a legacy body and maps it onto one (docs/contracts.md). Both add every problem to
a :class:`~task_contract.problems.Problems` and return a :class:`NormalizedTask` only when
they added none. What differs between the two programs is passed in: which runtimes exist
(ingest: the configured ones; the agent: its own) and where a legacy body is routed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from task_contract.content import check_content, check_sdwebui, with_image_link
from task_contract.legacy import requested_checkpoint, unwrap
from task_contract.metadata import (
    check_id,
    check_metadata_size,
    check_prefix,
    check_tasktype,
)
from task_contract.problems import (
    MISSING,
    Problems,
    child,
    join,
    json_type,
    required_object,
    required_string,
)
from task_contract.webhook import check_webhook

V1ALPHA2 = "v1alpha2"
V1ALPHA1 = "v1alpha1"
LEGACY_RUNTIME_TYPE = "sdwebui"  # legacy bodies are SD WebUI bodies


@dataclass(frozen=True, kw_only=True)
class NormalizedTask:
    """A valid task. ``task`` is ``{"metadata", "content"}`` as published: the prefix
    normalised and always present; for v1alpha1 the mapped task."""

    task: dict[str, Any]
    id: str
    runtime: str
    tasktype: str
    prefix: str
    source: str  # V1ALPHA2 or V1ALPHA1
    checkpoint: str | None = None  # the checkpoint an SD WebUI task asks for, if any
    webhook: dict[str, Any] | None = None  # ``{"url", "events"}`` when the task has one

    @property
    def metadata(self) -> dict[str, Any]:
        return self.task["metadata"]

    @property
    def content(self) -> dict[str, Any]:
        return self.task["content"]

    @property
    def has_context(self) -> bool:
        return "context" in self.metadata

    @property
    def context(self) -> Any:
        return self.metadata.get("context", MISSING)


def check_task(task: dict[str, Any], path: str, runtimes: Mapping[str, str],
               problems: Problems, unknown_runtime: Callable[[str], str], *,
               allow_loopback_webhooks: bool = False) -> NormalizedTask | None:
    """A v1alpha2 task object; ``runtimes`` maps runtime names to runtime types, and
    ``unknown_runtime(name)`` says why a name not in it is refused. Loopback webhook
    receivers pass only with ``allow_loopback_webhooks`` (local mode)."""
    before = len(problems)
    metadata_path = join(path, "metadata")
    metadata = required_object(child(task, "metadata"), metadata_path, problems)
    task_id = runtime = tasktype = prefix = webhook = None
    if metadata is not None:
        task_id = check_id(child(metadata, "id"), join(metadata_path, "id"), problems)
        runtime_path = join(metadata_path, "runtime")
        runtime = required_string(child(metadata, "runtime"), runtime_path, problems)
        runtime_type = runtimes.get(runtime) if runtime is not None else None
        if runtime is not None and runtime_type is None:
            problems.add(runtime_path, unknown_runtime(runtime))
            runtime = None
        tasktype = check_tasktype(child(metadata, "tasktype"), join(metadata_path, "tasktype"),
                                  runtime_type, runtime, problems)
        prefix = check_prefix(child(metadata, "prefix"), join(metadata_path, "prefix"),
                              problems)
        if prefix is not None:
            metadata = {**metadata, "prefix": prefix}
        webhook = check_webhook(child(metadata, "webhook"), join(metadata_path, "webhook"),
                                problems, allow_loopback=allow_loopback_webhooks)
        if webhook is not None:
            metadata = {**metadata, "webhook": webhook}
        check_metadata_size(metadata, metadata_path, problems)
    content = required_object(child(task, "content"), join(path, "content"), problems)
    if content is not None and tasktype is not None:
        check_content(content, tasktype, join(path, "content"), problems)
    if len(problems) > before:
        return None
    assert metadata is not None and content is not None
    assert task_id and runtime and tasktype and prefix
    return NormalizedTask(
        task={"metadata": metadata, "content": content},
        id=task_id, runtime=runtime, tasktype=tasktype, prefix=prefix, source=V1ALPHA2,
        checkpoint=requested_checkpoint(content) if tasktype != "pipeline" else None,
        webhook=webhook,
    )


def check_v1alpha1(body: Any, route: Callable[[str], str | None],
                   no_route: Callable[[str], str], problems: Problems) -> NormalizedTask | None:
    """A legacy body, mapped as the reference does: ``metadata = {"id": id_task, "runtime":
    route(sd_model_checkpoint), "tasktype": task, "prefix": save_dir or "output", "context":
    {}}``, ``content`` = the body, with ``image_link`` copied to the input image field when
    that is empty. ``no_route(checkpoint)`` says why a checkpoint ``route`` cannot place is
    refused. Problem paths are the body's own (``alwayson_scripts.id_task``, ``steps``)."""
    before = len(problems)
    body = unwrap(body)
    if not isinstance(body, dict):
        problems.add("", f"the body must be a JSON object (got {json_type(body)})")
        return None
    scripts = required_object(child(body, "alwayson_scripts"), "alwayson_scripts", problems)
    if scripts is None:
        return None
    tasktype = check_tasktype(child(scripts, "task"), "alwayson_scripts.task",
                              LEGACY_RUNTIME_TYPE, None, problems)
    task_id = check_id(child(scripts, "id_task"), "alwayson_scripts.id_task", problems)
    checkpoint_path = "alwayson_scripts.sd_model_checkpoint"
    checkpoint = required_string(child(scripts, "sd_model_checkpoint"), checkpoint_path,
                                 problems)
    runtime = route(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and runtime is None:
        problems.add(checkpoint_path, no_route(checkpoint))
    prefix = check_prefix(child(scripts, "save_dir"), "alwayson_scripts.save_dir", problems)
    content = with_image_link(dict(body), tasktype) if tasktype else dict(body)
    check_sdwebui(content, tasktype or "", "", problems)
    if len(problems) > before:
        return None
    assert tasktype and task_id and checkpoint and runtime and prefix
    metadata = {"id": task_id, "runtime": runtime, "tasktype": tasktype, "prefix": prefix,
                "context": {}}
    return NormalizedTask(
        task={"metadata": metadata, "content": content},
        id=task_id, runtime=runtime, tasktype=tasktype, prefix=prefix, source=V1ALPHA1,
        checkpoint=checkpoint,
    )
