"""Request validation: the v1alpha2 task, and the legacy v1alpha1 body mapped onto it.

The rules are the task contract's (``task_contract``, shared with the queue agent); this
module adds what only the HTTP API has: the ``{"task": ...}`` wrapper, the configured
runtimes, v1alpha1 routing by checkpoint, and the 400 response listing every problem with
its path (``task.metadata.id``). A valid request becomes a :class:`Submission`: the
normalised task that is recorded, hashed and published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambda_src.api import ApiError
from lambda_src.config import Runtime
from task_contract import problems as contract
from task_contract.legacy import checkpoint_name
from task_contract.problems import child, json_type, quote, required_object
from task_contract.task import NormalizedTask, check_task, check_v1alpha1

MAX_DETAILS = 100  # an error response lists at most this many problems

Submission = NormalizedTask


class Problems(contract.Problems):
    """Problems that end the request with one 400 listing them."""

    def raise_if_any(self) -> None:
        if not self.items:
            return
        details = self.items[:MAX_DETAILS]
        if len(self.items) > MAX_DETAILS:
            details.append(
                {"path": "", "message": f"{len(self.items) - MAX_DETAILS} more problems not shown"}
            )
        count = len(self.items)
        noun = "problem" if count == 1 else "problems"
        raise ApiError(400, "invalid_request", f"the request has {count} {noun}", details)


def _runtime_list(runtimes: Mapping[str, Runtime]) -> str:
    return ", ".join(sorted(runtimes)) or "none"


def v1alpha2(body: Any, runtimes: Mapping[str, Runtime], *,
             allow_loopback_webhooks: bool = False) -> Submission:
    """Validate a ``POST /v1alpha2`` body: ``{"task": {"metadata": {...}, "content": {...}}}``
    (loopback webhook receivers only with ``allow_loopback_webhooks``: local mode)."""
    problems = Problems()
    if not isinstance(body, dict):
        problems.add("", f"the body must be a JSON object (got {json_type(body)})")
        problems.raise_if_any()
    task = required_object(child(body, "task"), "task", problems)
    problems.raise_if_any()
    assert task is not None
    submission = check_task(
        task, "task", {name: runtime.type for name, runtime in runtimes.items()}, problems,
        lambda name: f"unknown runtime {quote(name)}; configured: {_runtime_list(runtimes)}",
        allow_loopback_webhooks=allow_loopback_webhooks,
    )
    problems.raise_if_any()
    assert submission is not None
    return submission


def runtime_for_checkpoint(checkpoint: str, runtimes: Mapping[str, Runtime]) -> Runtime | None:
    """The sdwebui runtime serving ``checkpoint``; else one that loads models on demand.

    Ties are broken by runtime name, so the choice is stable whatever the config order.
    """
    wanted = checkpoint_name(checkpoint)
    candidates = [runtimes[name] for name in sorted(runtimes) if runtimes[name].type == "sdwebui"]
    for runtime in candidates:
        if any(checkpoint_name(model) == wanted for model in runtime.models):
            return runtime
    for runtime in candidates:
        if runtime.dynamic_model:
            return runtime
    return None


def v1alpha1(body: Any, runtimes: Mapping[str, Runtime]) -> Submission:
    """Validate a legacy ``POST /v1alpha1`` body and map it onto a v1alpha2 task.

    The body is a WebUI API body whose ``alwayson_scripts`` also carries ``task``,
    ``id_task``, ``sd_model_checkpoint``, ``save_dir`` and (image input) ``image_link``; the
    mapping is the contract's (:func:`task_contract.task.check_v1alpha1`), routed to the
    runtime that serves the checkpoint (:func:`runtime_for_checkpoint`).
    """
    problems = Problems()

    def route(checkpoint: str) -> str | None:
        runtime = runtime_for_checkpoint(checkpoint, runtimes)
        return runtime.name if runtime is not None else None

    submission = check_v1alpha1(
        body, route,
        lambda checkpoint: (f"no sdwebui runtime serves {quote(checkpoint)} and none loads "
                            "models dynamically"),
        problems,
    )
    problems.raise_if_any()
    assert submission is not None
    return submission
