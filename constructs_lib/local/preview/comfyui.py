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

It has no WebSocket: clients poll ``/history`` (the queue agent does). Files live in memory,
bounded (the oldest go first).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import heapq
import itertools
import json
import posixpath
import re
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from constructs_lib.local.preview.comfyui_media import IMAGE_SUFFIXES, Frames, content_type
from constructs_lib.local.preview.comfyui_nodes import COMFYUI_VERSION, NODE_CLASSES
from constructs_lib.local.preview.comfyui_nodes_behaviour import (
    SAMPLERS,
    NodeFailure,
    SaveContext,
    evaluate,
    save,
    temp_prefix,
)
from constructs_lib.local.preview.comfyui_validation import (
    Catalogue,
    full_type_name,
    validate_prompt,
)
from constructs_lib.local.preview.drawing import LABEL
from constructs_lib.local.preview.markers import MARKER_RE, markers_in

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
SERVER_ERROR = b"500 Internal Server Error\n\nServer got itself in trouble"
FILE_TYPES = ("input", "temp", "output")
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
MAX_STORED_FILES = 1024
MAX_HISTORY = 1000
_NUMBERED = re.compile(r"^(.*)_(\d{5,})_(\.[^.]*)?$")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Answer:
        return cls(status, json.dumps(value).encode(), JSON)


EMPTY = Answer(200)
SERVER_FAILURE = Answer(500, SERVER_ERROR, TEXT)
NOT_FOUND = Answer(404, b"404: Not Found", TEXT)
NOT_ALLOWED = Answer(405, b"405: Method Not Allowed", TEXT)


@dataclass
class ExecutionFault:
    """Makes the next prompt that runs fail at its first node of ``node_class`` (tests)."""

    node_class: str
    exception_type: str
    message: str


class _Interrupted(Exception):
    def __init__(self, node_id: str) -> None:
        super().__init__(node_id)
        self.node_id = node_id


@dataclass
class _Run:
    """One prompt being executed."""

    prompt_id: str
    prompt: dict[str, Any]
    outputs: list[str]
    messages: list[Any] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    ui: dict[str, Any] = field(default_factory=dict)
    success: bool = True

    def add(self, event: str, **data: Any) -> None:
        self.messages.append([event, {**data, "timestamp": int(time.time() * 1000)}])


def _node_order(node_id: str) -> tuple[int, int | str]:
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


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
        self.seconds_per_image = seconds_per_image
        self.disable_metadata = disable_metadata
        self.checkpoints = checkpoints
        self.catalogue = Catalogue(input_exists=self._input_exists,
                                   input_images=self._input_images,
                                   checkpoints=lambda: (list(self.checkpoints)
                                                        if self.checkpoints is not None
                                                        else None),
                                   accept_unknown=accept_unknown_nodes)
        self.files: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.faults: list[ExecutionFault] = []
        self._queue: list[tuple[Any, ...]] = []
        self._running: dict[int, tuple[Any, ...]] = {}
        self._task_counter = itertools.count()
        self._number = 0
        self._counters: dict[tuple[str, str, str], int] = {}
        self._cache: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        # Node objects live as long as their (id, class) appears in each prompt, and with
        # them PreviewImage's random file prefix (ComfyUI's object cache).
        self._temp_prefixes: dict[tuple[str, str], str] = {}
        self._free_memory = False
        self._state = threading.Condition(threading.RLock())
        self._interrupt = threading.Event()
        self._stopped = threading.Event()
        self._worker = threading.Thread(target=self._execute_loop, name="preview-comfy",
                                        daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stopped.set()
        self._interrupt.set()
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
            ("GET", "/view"): lambda: self._view(params),
            ("POST", "/upload/image"): lambda: self._upload(raw, request_type),
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
            self._interrupt.set()
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
        while not self._stopped.is_set():
            with self._state:
                while not self._queue and not self._free_memory and not self._stopped.is_set():
                    self._state.wait()
                if self._free_memory:
                    self._cache.clear()
                    self._free_memory = False
                if self._stopped.is_set() or not self._queue:
                    continue
                item = heapq.heappop(self._queue)
                task = next(self._task_counter)
                self._running[task] = item
            _, prompt_id, prompt, extra, outputs = item
            run = _Run(prompt_id, prompt, list(outputs))
            try:
                self._execute(run)
            except Exception as exc:  # the preview's own bug: reported as ComfyUI reports one
                run.success = False
                run.add("execution_error", prompt_id=prompt_id, node_id=None, node_type=None,
                        executed=run.executed, exception_message=f"{exc}\n",
                        exception_type=full_type_name(type(exc)),
                        traceback=traceback.format_tb(exc.__traceback__), current_inputs={},
                        current_outputs=[])
            entry_prompt = [item[0], prompt_id, prompt,
                            {k: v for k, v in extra.items() if k not in SENSITIVE_EXTRA_DATA_KEYS},
                            list(outputs)]
            entry = {"prompt": entry_prompt, "outputs": {
                node: ui for node, ui in run.ui.items() if ui is not None},
                "status": {"status_str": "success" if run.success else "error",
                           "completed": run.success, "messages": run.messages}}
            entry["meta"] = {node: {"node_id": node, "display_node": node, "parent_node": None,
                                    "real_node_id": node} for node in entry["outputs"]}
            with self._state:
                self._running.pop(task, None)
                self.history[prompt_id] = entry
                while len(self.history) > MAX_HISTORY:
                    self.history.popitem(last=False)

    def _signatures(self, prompt: dict[str, Any]) -> dict[str, str]:
        """Cache keys: a node's class, inputs and (through links) ancestors, plus the input
        file's hash for LoadImage (ComfyUI's IS_CHANGED)."""
        memo: dict[str, str] = {}

        def signature(node_id: str, trail: tuple[str, ...] = ()) -> str:
            if node_id in memo:
                return memo[node_id]
            node = prompt[node_id]
            inputs = node.get("inputs") or {}
            parts: dict[str, Any] = {}
            for name, value in sorted(inputs.items()):
                if (isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt
                        and str(value[0]) not in trail):
                    parts[name] = [signature(str(value[0]), (*trail, node_id)), value[1]]
                else:
                    parts[name] = value
            if node["class_type"] in ("LoadImage", "LoadImageMask"):
                data = self._read_input(str(inputs.get("image")))
                parts["__changed__"] = hashlib.sha256(data or b"").hexdigest()
            memo[node_id] = hashlib.sha256(json.dumps(
                [node["class_type"], parts], sort_keys=True, default=str).encode()).hexdigest()
            return memo[node_id]

        return {node_id: signature(node_id) for node_id in prompt}

    def _order(self, prompt: dict[str, Any], outputs: list[str]) -> list[str]:
        """The nodes the outputs need, dependencies first."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(node_id: str) -> None:
            if node_id in seen:
                return
            seen.add(node_id)
            for value in (prompt[node_id].get("inputs") or {}).values():
                if isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt:
                    visit(str(value[0]))
            order.append(node_id)

        for output in sorted(outputs, key=_node_order):
            visit(output)
        return order

    def _execute(self, run: _Run) -> None:
        self._interrupt.clear()
        prompt = run.prompt
        run.add("execution_start", prompt_id=run.prompt_id)
        signatures = self._signatures(prompt)
        with self._state:
            self._cache = {sig: v for sig, v in self._cache.items()
                           if sig in set(signatures.values())}
            cache = dict(self._cache)
            present = {(n, prompt[n]["class_type"]) for n in prompt}
            self._temp_prefixes = {k: v for k, v in self._temp_prefixes.items() if k in present}
        run.add("execution_cached", nodes=[n for n in prompt if signatures[n] in cache],
                prompt_id=run.prompt_id)
        order = self._order(prompt, run.outputs)
        ctx = SaveContext(prompt=None if self.disable_metadata else prompt,
                          write=self._write_file, next_counter=self._next_counter,
                          read_input=self._read_input,
                          temp_prefix=lambda node: self._temp_prefixes.setdefault(
                              (node, prompt[node]["class_type"]), temp_prefix()))
        values: dict[str, tuple[Any, ...]] = {}
        planned: dict[str, Exception | None] = {}
        to_run = [n for n in order if signatures[n] not in cache]
        for node_id in order:  # shapes first: they decide how long the prompt takes
            if node_id in to_run:
                try:
                    values[node_id] = evaluate(prompt[node_id]["class_type"],
                                               self._resolve(prompt, node_id, values), ctx)
                    planned[node_id] = None
                except Exception as exc:
                    values[node_id] = ()
                    planned[node_id] = exc
            else:
                values[node_id] = cache[signatures[node_id]][0]
                run.ui[node_id] = cache[signatures[node_id]][1]
        share = self._seconds(prompt, run.outputs, values) / max(1, len(to_run))
        for node_id in to_run:
            class_type = prompt[node_id]["class_type"]
            try:
                if self._interrupt.is_set():
                    raise _Interrupted(node_id)
                self._work(share, interruptible=class_type in SAMPLERS, node_id=node_id)
                failure = planned[node_id] or self._fault(prompt, node_id)
                if failure is not None:
                    raise failure
                ui = None
                if self.catalogue.is_output(class_type):
                    ui = save(class_type, self._resolve(prompt, node_id, values), ctx, node_id)
            except _Interrupted as stop:
                run.success = False
                run.add("execution_interrupted", prompt_id=run.prompt_id, node_id=stop.node_id,
                        node_type=prompt[stop.node_id]["class_type"],
                        executed=list(run.executed))
                return
            except Exception as exc:
                run.success = False
                type_name = exc.type_name if isinstance(exc, NodeFailure) else full_type_name(
                    type(exc))
                run.add("execution_error", prompt_id=run.prompt_id, node_id=node_id,
                        node_type=class_type, executed=list(run.executed),
                        exception_message=f"{exc}\n", exception_type=type_name,
                        traceback=traceback.format_tb(exc.__traceback__), current_inputs={},
                        current_outputs=[n for n in prompt if signatures[n] in cache])
                return
            run.executed.append(node_id)
            if ui is not None:
                run.ui[node_id] = ui
            with self._state:
                self._cache[signatures[node_id]] = (values[node_id], ui)
        run.add("execution_success", prompt_id=run.prompt_id)

    @staticmethod
    def _resolve(prompt: dict[str, Any], node_id: str,
                 values: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name, value in (prompt[node_id].get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in values:
                outputs = values[str(value[0])]
                resolved[name] = outputs[value[1]] if value[1] < len(outputs) else None
            else:
                resolved[name] = value
        return resolved

    def _seconds(self, prompt: dict[str, Any], outputs: list[str],
                 values: dict[str, tuple[Any, ...]]) -> float:
        """``seconds_per_image`` (or ``[preview:sleep=S]``) times the largest batch saved."""
        markers = markers_in(json.dumps(prompt, default=str))
        per_image = (self.seconds_per_image if markers.sleep_seconds is None
                     else markers.sleep_seconds)
        batch = 1
        for output in outputs:
            for value in self._resolve(prompt, output, values).values():
                if isinstance(value, Frames):
                    batch = max(batch, value.count)
        return per_image * batch

    def _work(self, seconds: float, interruptible: bool, node_id: str) -> None:
        """The node's run time: an interrupt stops samplers at once, other nodes when done."""
        if seconds <= 0:
            return
        if interruptible:
            if self._interrupt.wait(seconds) and not self._stopped.is_set():
                raise _Interrupted(node_id)
        else:
            self._stopped.wait(seconds)

    def _fault(self, prompt: dict[str, Any], node_id: str) -> Exception | None:
        node = prompt[node_id]
        if MARKER_RE.search(json.dumps(node.get("inputs") or {}, default=str)) and \
                markers_in(json.dumps(node.get("inputs") or {}, default=str)).fail:
            return NodeFailure("PreviewFailure",
                               "the workflow asked the preview runtime to fail ([preview:fail])")
        with self._state:
            for fault in self.faults:
                if fault.node_class == node["class_type"] or not any(
                        n.get("class_type") == fault.node_class for n in prompt.values()):
                    self.faults.remove(fault)
                    return NodeFailure(fault.exception_type, fault.message)
        return None

    # ====================================================================== files ====
    def _write_file(self, kind: str, subfolder: str, name: str, data: bytes) -> None:
        with self._state:
            key = (kind, subfolder, name)
            self.files[key] = data
            self.files.move_to_end(key)
            while len(self.files) > MAX_STORED_FILES:
                self.files.popitem(last=False)
            numbered = _NUMBERED.match(name)
            if numbered:
                counter_key = (kind, subfolder, numbered.group(1))
                self._counters[counter_key] = max(self._counters.get(counter_key, 0),
                                                  int(numbered.group(2)))

    def _next_counter(self, kind: str, subfolder: str, stem: str) -> int:
        """One more than the highest ``<stem>_<counter>_`` file written there (ComfyUI
        counts the files in the folder; these counters outlive evicted files)."""
        with self._state:
            return self._counters.get((kind, subfolder, stem), 0) + 1

    @staticmethod
    def _split(kind: str, path: str, annotated: bool = True) -> tuple[str, str, str] | None:
        """(type, subfolder, name) of a path under a type's directory; None if it escapes.
        ``annotated``: a ``name [output]`` suffix names the directory, as in ComfyUI."""
        if annotated and path.endswith((" [input]", " [temp]", " [output]")):
            path, _, annotation = path.rpartition(" [")
            kind = annotation[:-1]
        full = posixpath.normpath(posixpath.join("/root", path))
        if posixpath.commonpath(("/root", full)) != "/root" or full == "/root":
            return None
        subfolder, name = posixpath.split(posixpath.relpath(full, "/root"))
        return kind, subfolder, name

    def _read_input(self, name: str) -> bytes | None:
        key = self._split("input", name)
        with self._state:
            return self.files.get(key) if key is not None else None

    def _input_exists(self, name: str) -> bool:
        return self._read_input(name) is not None

    def _input_images(self) -> list[str]:
        with self._state:
            return sorted(name for kind, subfolder, name in self.files
                          if kind == "input" and not subfolder
                          and name.lower().endswith(IMAGE_SUFFIXES))

    def _view(self, params: dict[str, str]) -> Answer:
        if "filename" not in params:
            return Answer(404)
        filename, kind = params["filename"], None
        for annotation in ("input", "temp", "output"):
            if filename.endswith(f" [{annotation}]"):
                filename, kind = filename[: -len(annotation) - 3], annotation
        if not filename:
            return Answer(400)
        if filename[0] == "/" or ".." in filename:
            return Answer(400)
        kind = kind or params.get("type", "output")
        if kind not in FILE_TYPES:
            return Answer(400)
        subfolder = ""
        if "subfolder" in params:
            full = posixpath.normpath(posixpath.join("/root", params["subfolder"]))
            if posixpath.commonpath(("/root", full)) != "/root":
                return Answer(403)
            relative = posixpath.relpath(full, "/root")
            subfolder = "" if relative == "." else relative
        name = posixpath.basename(filename)
        with self._state:
            data = self.files.get((kind, subfolder, name))
        if data is None:
            return Answer(404)
        return Answer(200, data, content_type(name),
                      {"Content-Disposition": f'filename="{name}"'})

    def _upload(self, raw: bytes, request_type: str) -> Answer:
        message = email.message_from_bytes(
            b"Content-Type: " + request_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw,
            policy=email.policy.HTTP)
        fields: dict[str, tuple[str | None, bytes]] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str):
                    fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
        kind = (fields["type"][1].decode() if "type" in fields else None) or "input"
        if kind not in FILE_TYPES:
            return SERVER_FAILURE  # ComfyUI fails on an unknown type
        if "image" not in fields or fields["image"][0] is None:
            return Answer(400)
        filename = fields["image"][0]
        data = fields["image"][1]
        if not filename:
            return Answer(400)
        subfolder = fields["subfolder"][1].decode() if "subfolder" in fields else ""
        key = self._split(kind, posixpath.join(posixpath.normpath(subfolder or "."), filename),
                          annotated=False)
        if key is None:
            return Answer(400)
        overwrite = fields["overwrite"][1].decode() if "overwrite" in fields else None
        stem, dot, suffix = filename.rpartition(".")
        stem, suffix = (stem, dot + suffix) if dot and stem else (filename, "")
        with self._state:
            duplicate = False
            if overwrite not in ("true", "1"):
                index = 1
                while key in self.files:
                    if self.files[key] == data:
                        duplicate = True
                        break
                    filename = f"{stem} ({index}){suffix}"
                    key = (key[0], key[1], filename)
                    index += 1
            if not duplicate:
                self.files[key] = data
                self.files.move_to_end(key)
                while len(self.files) > MAX_STORED_FILES:
                    self.files.popitem(last=False)
        return Answer.json({"name": filename, "subfolder": subfolder, "type": kind})
