"""The ComfyUI preview: ComfyUI 0.3.64's HTTP API as the queue agent sees it, drawing
placeholders instead of running models (see the package docstring).

It answers like the real server on every point a client can observe, checked against the
real server's recorded answers (tests/real_comfyui): validation (a partly valid workflow is
accepted with ``node_errors`` and runs its valid outputs), one prompt at a time from a queue
ordered by number, ``/interrupt`` with a ``prompt_id`` touching only that prompt when it
runs, an interrupt taking effect when the running node ends (the history entry appears
then), node outputs cached between prompts (an identical prompt returns the same files, an
interrupted one resumes from its finished nodes), history entries with ``meta``, the
``prompt`` tuple and ``execution_cached``, empty 200 answers, ``/view`` and
``/upload/image`` rules, and PNG/animated WebP/APNG/WebM outputs.

It has no WebSocket: clients poll ``/history`` (the queue agent does). This module holds
the routes, the queue and the history; ``comfyui_execution`` runs prompts, ``comfyui_files``
keeps the files, ``comfyui_validation`` checks workflows.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from sdaas.local.preview.comfyui_answers import (
    EMPTY,
    NOT_ALLOWED,
    NOT_FOUND,
    SERVER_FAILURE,
    Answer,
)
from sdaas.local.preview.comfyui_execution import ExecutionFault, Executor
from sdaas.local.preview.comfyui_files import FileStore
from sdaas.local.preview.comfyui_nodes import COMFYUI_VERSION, NODE_CLASSES
from sdaas.local.preview.comfyui_validation import Catalogue, validate_prompt
from sdaas.local.preview.drawing import LABEL

SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
MAX_HISTORY = 1000


class ComfyUiPreview:
    """State and behaviour of the ComfyUI preview; HTTP-free (``handle`` answers a request).

    ``seconds_per_image``: how long a prompt takes per picture it saves (spread over the
    nodes it runs). ``accept_unknown_nodes``: accept node classes outside the catalogue
    (custom nodes of a real deployment) instead of refusing them as ComfyUI without them
    would. ``checkpoints``: the checkpoint names CheckpointLoaderSimple accepts (None: any).
    ``disable_metadata``: as ComfyUI's ``--disable-metadata``, no workflow in saved files.
    """

    def __init__(self, *, seconds_per_image: float = 1.0, accept_unknown_nodes: bool = True,
                 checkpoints: tuple[str, ...] | None = None,
                 disable_metadata: bool = False) -> None:
        self.checkpoints = checkpoints
        self.store = FileStore()
        self.catalogue = Catalogue(input_exists=self.store.input_exists,
                                   input_images=self.store.input_images,
                                   checkpoints=lambda: (list(self.checkpoints)
                                                        if self.checkpoints is not None
                                                        else None),
                                   accept_unknown=accept_unknown_nodes)
        self.executor = Executor(self.catalogue, self.store, seconds_per_image,
                                 disable_metadata)
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._queue: list[tuple[Any, ...]] = []
        self._running: dict[int, tuple[Any, ...]] = {}
        self._task_counter = itertools.count()
        self._number = 0
        self._free_memory = False
        self._state = threading.Condition(threading.RLock())
        self._worker = threading.Thread(target=self._execute_loop, name="preview-comfy",
                                        daemon=True)
        self._worker.start()

    @property
    def seconds_per_image(self) -> float:
        return self.executor.seconds_per_image

    @seconds_per_image.setter
    def seconds_per_image(self, value: float) -> None:
        self.executor.seconds_per_image = value

    @property
    def files(self) -> OrderedDict[tuple[str, str, str], bytes]:
        """(type, subfolder, name) -> bytes of every file held."""
        return self.store.files

    @property
    def faults(self) -> list[ExecutionFault]:
        return self.executor.faults

    def stop(self) -> None:
        self.executor.stopped.set()
        self.executor.interrupted.set()
        with self._state:
            self._state.notify_all()

    # ==================================================================== routes ====
    def handle(self, method: str, path: str, query: str, raw: bytes,
               request_type: str = "") -> Answer:
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        routes = {
            ("GET", "/system_stats"): lambda: Answer.json(self._system_stats()),
            ("GET", "/prompt"): lambda: Answer.json(
                {"exec_info": {"queue_remaining": self.remaining()}}),
            ("POST", "/prompt"): lambda: self._post_prompt(raw),
            ("GET", "/queue"): lambda: Answer.json(self.queue_document()),
            ("POST", "/queue"): lambda: self._post_queue(raw),
            ("POST", "/interrupt"): lambda: self._post_interrupt(raw),
            ("POST", "/free"): lambda: self._post_free(raw),
            ("GET", "/history"): lambda: Answer.json(self._history_items(params)),
            ("POST", "/history"): lambda: self._post_history(raw),
            ("GET", "/view"): lambda: self.store.view(params),
            ("POST", "/upload/image"): lambda: self.store.upload(raw, request_type),
            ("GET", "/object_info"): lambda: Answer.json(NODE_CLASSES),
        }
        route = routes.get((method, path))
        try:
            if route is not None:
                return route()
            if method == "GET" and path.startswith("/history/"):
                prompt_id = path[len("/history/"):]
                with self._state:
                    entry = self.history.get(prompt_id)
                    return Answer.json({prompt_id: entry} if entry is not None else {})
            if method == "GET" and path.startswith("/object_info/"):
                name = path[len("/object_info/"):]
                return Answer.json({name: NODE_CLASSES[name]} if name in NODE_CLASSES else {})
        except Exception:  # what aiohttp answers for a handler's exception
            return SERVER_FAILURE
        if any(path == p for _, p in routes) or path.startswith("/history/"):
            return NOT_ALLOWED
        return NOT_FOUND

    @staticmethod
    def _system_stats() -> dict[str, Any]:
        return {"system": {"os": "posix", "ram_total": 0, "ram_free": 0,
                           "comfyui_version": f"{COMFYUI_VERSION} ({LABEL})",
                           "python_version": "", "pytorch_version": "", "embedded_python": False,
                           "argv": []},
                "devices": [{"name": "preview (no GPU, no model)", "type": "cpu", "index": None,
                             "vram_total": 0, "vram_free": 0, "torch_vram_total": 0,
                             "torch_vram_free": 0}]}

    # ==================================================================== prompts ====
    def _post_prompt(self, raw: bytes) -> Answer:
        body = json.loads(raw)
        with self._state:
            if "number" in body:
                number: Any = float(body["number"])
            else:
                number = self._number
                if body.get("front"):
                    number = -number
                self._number += 1
        if "prompt" not in body:
            return Answer.json({"error": {"type": "no_prompt", "message": "No prompt provided",
                                          "details": "No prompt provided", "extra_info": {}},
                                "node_errors": {}}, 400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        valid, error, outputs, node_errors = validate_prompt(
            prompt, self.catalogue, body.get("partial_execution_targets"))
        extra: dict[str, Any] = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        if not valid:
            return Answer.json({"error": error, "node_errors": node_errors}, 400)
        with self._state:
            heapq.heappush(self._queue, (number, prompt_id, prompt, extra, outputs))
            self._state.notify_all()
        return Answer.json({"prompt_id": prompt_id, "number": number,
                            "node_errors": node_errors})

    def remaining(self) -> int:
        with self._state:
            return len(self._queue) + len(self._running)

    def queue_document(self) -> dict[str, Any]:
        with self._state:
            return {"queue_running": [list(item) for item in self._running.values()],
                    "queue_pending": [list(item) for item in self._queue]}

    def running_ids(self) -> list[str]:
        with self._state:
            return [item[1] for item in self._running.values()]

    def _post_queue(self, raw: bytes) -> Answer:
        body = json.loads(raw)
        with self._state:
            if body.get("clear"):
                self._queue = []
            for prompt_id in body.get("delete", []):
                for index, item in enumerate(self._queue):
                    if item[1] == prompt_id:
                        self._queue.pop(index)
                        heapq.heapify(self._queue)
                        break
        return EMPTY

    def _post_interrupt(self, raw: bytes) -> Answer:
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = {}
        prompt_id = body.get("prompt_id")
        if not prompt_id or prompt_id in self.running_ids():
            self.executor.interrupted.set()
        return EMPTY

    def _post_free(self, raw: bytes) -> Answer:
        body = json.loads(raw)
        if body.get("free_memory", False):
            with self._state:
                self._free_memory = True
                self._state.notify_all()
        return EMPTY

    def _post_history(self, raw: bytes) -> Answer:
        body = json.loads(raw)
        with self._state:
            if body.get("clear"):
                self.history.clear()
            for prompt_id in body.get("delete", []):
                self.history.pop(prompt_id, None)
        return EMPTY

    def _history_items(self, params: dict[str, str]) -> dict[str, Any]:
        max_items = int(params["max_items"]) if "max_items" in params else None
        offset = int(params["offset"]) if "offset" in params else -1
        with self._state:
            if offset < 0 and max_items is not None:
                offset = len(self.history) - max_items
            out: dict[str, Any] = {}
            for index, (key, entry) in enumerate(self.history.items()):
                if index >= offset:
                    out[key] = entry
                    if max_items is not None and len(out) >= max_items:
                        break
            return out

    # ================================================================== execution ====
    def _execute_loop(self) -> None:
        while not self.executor.stopped.is_set():
            with self._state:
                while not (self._queue or self._free_memory or self.executor.stopped.is_set()):
                    self._state.wait()
                if self._free_memory:
                    self.executor.clear_cache()
                    self._free_memory = False
                if self.executor.stopped.is_set() or not self._queue:
                    continue
                item = heapq.heappop(self._queue)
                task = next(self._task_counter)
                self._running[task] = item
            number, prompt_id, prompt, extra, outputs = item
            run = self.executor.run(prompt_id, prompt, outputs)
            entry_outputs = {node: ui for node, ui in run.ui.items() if ui is not None}
            entry = {
                "prompt": [number, prompt_id, prompt,
                           {k: v for k, v in extra.items()
                            if k not in SENSITIVE_EXTRA_DATA_KEYS}, list(outputs)],
                "outputs": entry_outputs,
                "status": {"status_str": "success" if run.success else "error",
                           "completed": run.success, "messages": run.messages},
                "meta": {node: {"node_id": node, "display_node": node, "parent_node": None,
                                "real_node_id": node} for node in entry_outputs},
            }
            with self._state:
                self._running.pop(task, None)
                self.history[prompt_id] = entry
                while len(self.history) > MAX_HISTORY:
                    self.history.popitem(last=False)
