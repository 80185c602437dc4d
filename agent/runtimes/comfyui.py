"""ComfyUI adapter: workflows in API format, completion by polling ``/history``.

What the agent does to a prompt it gives up on (timeout, shutdown, a workflow ComfyUI
accepted with ``node_errors``) touches that prompt only: deleted from the queue while it
waits there, interrupted by id (``POST /interrupt {"prompt_id": ...}``) while it runs, left
alone otherwise. Its history entry, written when the interrupted node ends, is deleted then
(:mod:`agent.runtimes.comfyui_history`).

Outputs are read from every output node's ``images`` list (ComfyUI lists videos and
animations there too, with ``animated: [true]``); each file must be a format the agent
stores (``agent.images.media_type``), else the task fails with ``unsupported_output``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import requests

from agent import logs
from agent.errors import PermanentError, TransientError, clip
from agent.images import STORED_FORMATS, media_type, sniff
from agent.messages import Task
from agent.runtimes.base import (
    CONNECT_TIMEOUT,
    CONTROL_TIMEOUT,
    Cancelled,
    Fetch,
    Prepared,
    RuntimeAdapter,
    RuntimeOutput,
    connection_failure,
    http_failure,
)
from agent.runtimes.comfyui_history import HistoryJanitor
from agent.runtimes.sdwebui import is_url

LOAD_IMAGE_CLASSES = ("LoadImage", "LoadImageMask")
SEED_INPUTS = ("seed", "noise_seed")


def workflow_of(content: dict[str, Any]) -> dict[str, Any]:
    """The workflow in API format: the content itself, or its ``prompt`` member."""
    workflow = content.get("prompt") if isinstance(content.get("prompt"), dict) else content
    if not workflow or not all(
        isinstance(node, dict) and isinstance(node.get("class_type"), str)
        for node in workflow.values()
    ):
        raise PermanentError(
            "invalid_task",
            "content must be a ComfyUI workflow in API format: an object of nodes, each with "
            "'class_type' and 'inputs'",
        )
    return workflow


def _node_order(node_id: str) -> tuple[int, int | str]:
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


def execution_error(history_entry: dict[str, Any]) -> PermanentError | TransientError:
    """The failure a finished-with-error history entry describes."""
    status = history_entry.get("status") or {}
    for message in status.get("messages") or []:
        if not (isinstance(message, list) and len(message) == 2):
            continue
        kind, data = message
        data = data if isinstance(data, dict) else {}
        if kind == "execution_error":
            details = {key: data.get(key) for key in
                       ("node_id", "node_type", "exception_type", "exception_message")}
            details["exception_message"] = str(details["exception_message"] or "").strip()
            text = (f"node {details['node_id']} ({details['node_type']}) raised "
                    f"{details['exception_type']}: {clip(details['exception_message'], 300)}")
            if "OutOfMemory" in str(details["exception_type"]):
                return TransientError("execution_error", text, [details])
            return PermanentError("execution_error", text, [details])
        if kind == "execution_interrupted":
            return TransientError("runtime_interrupted", "the workflow was interrupted",
                                  [{"node_id": data.get("node_id")}])
    return TransientError("execution_error", "the workflow ended with an error and no details")


class ComfyUiAdapter(RuntimeAdapter):
    type_name = "comfyui"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_id = str(uuid.uuid4())
        self.janitor = HistoryJanitor(self.url, lambda: self.session,
                                      self.config.comfyui_poll_seconds,
                                      max(60.0, float(self.config.task_timeout_seconds)))

    def ready(self) -> bool:
        return self.probe("/system_stats")

    def close(self, timeout: float) -> None:
        if not self.janitor.wait(timeout):
            logs.warning("history_cleanup_unfinished", prompt_ids=self.janitor.pending())

    # -- prepare ---------------------------------------------------------------------------
    def prepare(self, task: Task, fetch: Fetch) -> Prepared:
        workflow = json.loads(json.dumps(workflow_of(task.content)))
        count = 0
        for node_id in sorted(workflow, key=_node_order):
            node = workflow[node_id]
            inputs = node.get("inputs")
            if node["class_type"] not in LOAD_IMAGE_CLASSES or not isinstance(inputs, dict):
                continue
            if is_url(inputs.get("image")):
                data = fetch(inputs["image"])
                inputs["image"] = self._upload(f"{task.id}-{node_id}", data)
                count += 1
        return Prepared(task=task, body=workflow, input_count=count)

    def _upload(self, stem: str, data: bytes) -> str:
        ext, content_type = sniff(data)
        name = f"agent-{stem}.{ext}"
        try:
            response = self.session.post(
                self.url("/upload/image"),
                files={"image": (name, data, content_type)},
                data={"overwrite": "true", "type": "input"},
                timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise connection_failure(exc, "uploading an input image") from exc
        if response.status_code != 200:
            raise http_failure(response, "POST /upload/image")
        answer = response.json()
        subfolder = answer.get("subfolder") or ""
        return f"{subfolder}/{answer['name']}" if subfolder else str(answer["name"])

    # -- run ---------------------------------------------------------------------------------
    def run(self, prepared: Prepared, cancel: threading.Event) -> RuntimeOutput:
        prompt_id = self._submit(prepared.body)
        prepared.state["prompt_id"] = prompt_id
        try:
            entry = self._wait(prompt_id, cancel)
        except BaseException:
            self._abandon(prompt_id)
            raise
        try:
            status = entry.get("status") or {}
            if status.get("status_str") == "error":
                raise execution_error(entry)
            files, names, animated = self._download(entry)
        finally:
            self._forget(prompt_id)
        seeds = [
            node["inputs"][key]
            for _, node in sorted(prepared.body.items(), key=lambda kv: _node_order(kv[0]))
            if isinstance(node.get("inputs"), dict)
            for key in SEED_INPUTS
            if isinstance(node["inputs"].get(key), int)
        ]
        return RuntimeOutput(images=files, parameters=prepared.body, seeds=seeds,
                             info={"prompt_id": prompt_id, "files": names},
                             animated=animated)

    def cancel(self, prepared: Prepared) -> None:
        """Nothing more: :meth:`run` sees the event within ``AGENT_COMFYUI_POLL_SECONDS`` and
        withdraws its prompt by id (deleted from the queue, or interrupted while it runs)."""

    def interrupt(self, prepared: Prepared | None = None) -> None:
        prompt_id = prepared.state.get("prompt_id") if prepared is not None else None
        if prompt_id:
            self._abandon(str(prompt_id))

    def _abandon(self, prompt_id: str) -> None:
        """Stop ``prompt_id`` (only it) and have its history entry deleted when it appears."""
        self._cancel(prompt_id)
        self.janitor.watch(prompt_id)

    def _cancel(self, prompt_id: str) -> None:
        """Delete the prompt from the queue if it waits there; interrupt it by id if it runs;
        nothing otherwise. Never a bare ``/interrupt``: that stops whatever is running."""
        try:
            state = self._queue_state(prompt_id)
            if state == "pending":
                self.session.post(self.url("/queue"), json={"delete": [prompt_id]},
                                  timeout=(CONNECT_TIMEOUT, 10.0))
                state = self._queue_state(prompt_id)  # it may have started meanwhile
            if state == "running":
                self.session.post(self.url("/interrupt"), json={"prompt_id": prompt_id},
                                  timeout=(CONNECT_TIMEOUT, 10.0))
            logs.event("prompt_cancelled", prompt_id=prompt_id, state=state)
        except (requests.RequestException, ValueError) as exc:
            logs.warning("runtime_interrupt_failed", prompt_id=prompt_id,
                         error=type(exc).__name__)

    def _queue_state(self, prompt_id: str) -> str:
        """``running``, ``pending`` or ``absent``: where the prompt is in ComfyUI's queue."""
        response = self.session.get(self.url("/queue"), timeout=(CONNECT_TIMEOUT, 10.0))
        response.raise_for_status()
        answer = response.json()
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            if any(isinstance(item, list) and len(item) > 1 and item[1] == prompt_id
                   for item in answer.get(key) or []):
                return state
        return "absent"

    def _submit(self, workflow: dict[str, Any]) -> str:
        try:
            response = self.session.post(
                self.url("/prompt"), json={"prompt": workflow, "client_id": self.client_id},
                timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise connection_failure(exc, "submitting the workflow") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 400 and isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            raise PermanentError(
                "runtime_validation",
                f"the workflow failed validation: {clip(error.get('message', 'invalid'), 200)}",
                {"error": error, "node_errors": answer.get("node_errors", {})},
            )
        if response.status_code != 200 or not isinstance(answer, dict):
            raise http_failure(response, "POST /prompt")
        prompt_id = answer.get("prompt_id")
        if answer.get("node_errors"):
            # ComfyUI accepted the workflow and will run its valid outputs only: refuse the
            # task as a whole and withdraw this prompt (and nothing else).
            if prompt_id:
                self._abandon(str(prompt_id))
            raise PermanentError("runtime_validation", "the workflow has node errors",
                                 {"node_errors": answer["node_errors"]})
        if not isinstance(prompt_id, str):
            raise TransientError("runtime_error", "POST /prompt returned no prompt_id")
        return prompt_id

    def _wait(self, prompt_id: str, cancel: threading.Event) -> dict[str, Any]:
        deadline = time.monotonic() + self.config.task_timeout_seconds
        poll = self.config.comfyui_poll_seconds
        while True:
            if cancel.is_set():
                raise Cancelled()
            try:
                response = self.session.get(self.url(f"/history/{prompt_id}"),
                                            timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
            except requests.RequestException as exc:
                raise connection_failure(exc, "polling the workflow") from exc
            if response.status_code != 200:
                raise http_failure(response, "GET /history")
            entry = (response.json() or {}).get(prompt_id)
            if isinstance(entry, dict):
                status = entry.get("status") or {}
                if status.get("completed") or status.get("status_str") in ("success", "error"):
                    return entry
            if time.monotonic() > deadline:
                raise TransientError(
                    "runtime_timeout",
                    f"the workflow did not finish within {self.config.task_timeout_seconds}s; "
                    "interrupted",
                )
            cancel.wait(poll)

    def _download(self, entry: dict[str, Any]) -> tuple[list[bytes], list[str], list[bool]]:
        """The files of every output node, in node order: bytes, names, animated flags."""
        files: list[bytes] = []
        names: list[str] = []
        animated: list[bool] = []
        outputs = entry.get("outputs") or {}
        for node_id in sorted(outputs, key=_node_order):
            output = outputs[node_id] or {}
            moving = any(flag is True for flag in output.get("animated") or [])
            for item in output.get("images") or []:
                if not isinstance(item, dict) or item.get("type") != "output":
                    continue
                params = {"filename": item.get("filename", ""),
                          "subfolder": item.get("subfolder", ""), "type": "output"}
                try:
                    response = self.session.get(self.url("/view"), params=params,
                                                timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
                except requests.RequestException as exc:
                    raise connection_failure(exc, "downloading an output") from exc
                if response.status_code != 200:
                    raise http_failure(response, "GET /view")
                media = media_type(response.content)
                if media is None:
                    raise PermanentError(
                        "unsupported_output",
                        f"node {node_id} wrote {params['filename']!r} "
                        f"({response.headers.get('Content-Type', 'unknown type')}), a format "
                        f"the agent does not store; it stores {STORED_FORMATS}",
                        [{"node_id": node_id, "filename": params["filename"]}])
                files.append(response.content)
                names.append(str(item.get("filename")))
                animated.append(moving or media.animated)
        return files, names, animated

    def _forget(self, prompt_id: str) -> None:
        try:
            self.session.post(self.url("/history"), json={"delete": [prompt_id]},
                              timeout=(CONNECT_TIMEOUT, 10.0))
        except requests.RequestException as exc:
            logs.warning("history_delete_failed", error=type(exc).__name__)
