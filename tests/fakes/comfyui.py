"""A fake ComfyUI server (aiohttp API shapes) following shared/runtime-apis.md.

Prompts are validated like ComfyUI does (unknown class, missing input, bad link, image not
uploaded -> 400 with ``node_errors``), queued, and executed one at a time by a worker thread;
``history`` shows them when done. ``fail_execution`` makes the next prompt end with an
``execution_error``; ``interrupt`` ends the running one with ``execution_interrupted``.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.base import FakeServer, Request, Response, render_png

# class_type -> (required inputs, output node?)
NODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "CheckpointLoaderSimple": (("ckpt_name",), False),
    "CLIPTextEncode": (("text", "clip"), False),
    "EmptyLatentImage": (("width", "height", "batch_size"), False),
    "KSampler": (("model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive",
                  "negative", "latent_image", "denoise"), False),
    "VAEDecode": (("samples", "vae"), False),
    "VAEEncode": (("pixels", "vae"), False),
    "LoadImage": (("image",), False),
    "SaveImage": (("images",), True),
    "PreviewImage": (("images",), True),
}


@dataclass
class ExecutionFault:
    node_class: str
    exception_type: str
    message: str


class FakeComfyUI(FakeServer):
    def __init__(self, seconds_per_image: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds_per_image = seconds_per_image
        self.inputs: dict[str, bytes] = {}
        self.outputs: dict[str, bytes] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.executed: list[str] = []  # prompt ids, in execution order
        self.deleted_history: list[str] = []
        self.interrupts = 0
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._pending: list[str] = []
        self._running: str | None = None
        self._interrupt = threading.Event()
        self._execution_faults: list[ExecutionFault] = []
        self._counter = 0
        self._number = 0
        self._state_lock = threading.Lock()
        threading.Thread(target=self._execute_loop, name="comfy-exec", daemon=True).start()

    def fault_paths(self) -> tuple[str, ...]:
        return ("/prompt", "/history", "/view", "/upload")

    def fail_execution(self, node_class: str = "KSampler", exception_type: str = "RuntimeError",
                       message: str = "mat1 and mat2 shapes cannot be multiplied") -> None:
        self._execution_faults.append(ExecutionFault(node_class, exception_type, message))

    def default_error(self, status: int) -> Any:
        if status == 400:
            return {"error": {"type": "prompt_outputs_failed_validation",
                              "message": "Prompt outputs failed validation", "details": "",
                              "extra_info": {}},
                    "node_errors": {"3": {"errors": [{"type": "value_not_in_list",
                                                      "message": "Value not in list",
                                                      "details": "sampler_name", "extra_info": {}}],
                                          "dependent_outputs": ["9"], "class_type": "KSampler"}}}
        return {"error": "internal", "detail": f"injected {status}"}

    # -- routes ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if method == "GET" and path == "/system_stats":
            return Response(200, {"system": {"os": "posix"}, "devices": []})
        if method == "POST" and path == "/prompt":
            return self._prompt(request.json())
        if path.startswith("/history"):
            return self._history(request)
        if method == "GET" and path == "/view":
            query = {k: v[0] for k, v in parse_qs(request.query).items()}
            data = self.outputs.get(query.get("filename", ""))
            if data is None or query.get("type") != "output":
                return Response(404, None, raw=b"404: Not Found", content_type="text/plain")
            return Response(200, raw=data, content_type="image/png")
        if method == "POST" and path == "/upload/image":
            return self._upload(request)
        if path == "/queue":
            if method == "GET":
                with self._state_lock:
                    running = [[0, self._running, {}, {}, []]] if self._running else []
                    pending = [[0, p, {}, {}, []] for p in self._pending]
                return Response(200, {"queue_running": running, "queue_pending": pending})
            body = request.json() or {}
            with self._state_lock:
                for prompt_id in body.get("delete", []):
                    if prompt_id in self._pending:
                        self._pending.remove(prompt_id)
            return Response(200, None)
        if method == "POST" and path == "/interrupt":
            self.interrupts += 1
            self._interrupt.set()
            return Response(200, None)
        if method == "POST" and path == "/free":
            return Response(200, None)
        return Response(404, None, raw=b"404: Not Found", content_type="text/plain")

    def _upload(self, request: Request) -> Response:
        message = email.message_from_bytes(
            b"Content-Type: " + request.headers["Content-Type"].encode() + b"\r\n\r\n"
            + request.body, policy=email.policy.HTTP)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        if "image" not in fields:
            return Response(400, None, raw=b"", content_type="text/plain")
        filename, data = fields["image"]
        subfolder = (fields.get("subfolder", (None, b""))[1] or b"").decode()
        name = f"{subfolder}/{filename}" if subfolder else filename
        self.inputs[name] = data
        return Response(200, {"name": filename, "subfolder": subfolder, "type": "input"})

    def _history(self, request: Request) -> Response:
        if request.method == "POST":
            body = request.json() or {}
            for prompt_id in body.get("delete", []):
                self.history.pop(prompt_id, None)
                self.deleted_history.append(prompt_id)
            if body.get("clear"):
                self.history.clear()
            return Response(200, None)
        prompt_id = request.path[len("/history/"):]
        if prompt_id:
            entry = self.history.get(prompt_id)
            return Response(200, {prompt_id: entry} if entry else {})
        return Response(200, dict(self.history))

    # -- validation (like ComfyUI's validate_prompt) -------------------------------------------
    def _prompt(self, body: Any) -> Response:
        workflow = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(workflow, dict):
            return Response(400, {"error": {"type": "invalid_prompt", "message":
                                            "Prompt is not a dict", "details": "",
                                            "extra_info": {}}, "node_errors": {}})
        for node_id, node in workflow.items():
            class_type = node.get("class_type") if isinstance(node, dict) else None
            if class_type not in NODES:
                return Response(400, {"error": {
                    "type": "invalid_prompt",
                    "message": f"Cannot execute because node {class_type} does not exist.",
                    "details": f"Node ID '#{node_id}'", "extra_info": {}}, "node_errors": {}})
        outputs = [nid for nid, n in workflow.items() if NODES[n["class_type"]][1]]
        if not outputs:
            return Response(400, {"error": {"type": "prompt_no_outputs",
                                            "message": "Prompt has no outputs", "details": "",
                                            "extra_info": {}}, "node_errors": {}})
        node_errors: dict[str, Any] = {}
        for node_id, node in workflow.items():
            errors = self._node_errors(node, workflow)
            if errors:
                node_errors[node_id] = {"errors": errors, "dependent_outputs": outputs,
                                        "class_type": node["class_type"]}
        if node_errors:
            return Response(400, {"error": {"type": "prompt_outputs_failed_validation",
                                            "message": "Prompt outputs failed validation",
                                            "details": "", "extra_info": {}},
                                  "node_errors": node_errors})
        prompt_id = str(uuid.uuid4())
        with self._state_lock:
            self._number += 1
            number = self._number
            self._pending.append(prompt_id)
        self._queue.put((prompt_id, workflow))
        return Response(200, {"prompt_id": prompt_id, "number": number, "node_errors": {}})

    def _node_errors(self, node: dict[str, Any], workflow: dict[str, Any]) -> list[Any]:
        inputs = node.get("inputs") or {}
        errors = []
        for name in NODES[node["class_type"]][0]:
            if name not in inputs:
                errors.append({"type": "required_input_missing",
                               "message": "Required input is missing", "details": name,
                               "extra_info": {"input_name": name}})
            elif isinstance(inputs[name], list) and (
                    len(inputs[name]) != 2 or str(inputs[name][0]) not in workflow):
                errors.append({"type": "bad_linked_input", "message": "Bad linked input",
                               "details": name, "extra_info": {"input_name": name}})
        if node["class_type"] == "LoadImage" and inputs.get("image") not in self.inputs:
            errors.append({"type": "value_not_in_list", "message": "Value not in list",
                           "details": f"image: '{inputs.get('image')}' not in "
                                      f"{sorted(self.inputs)}",
                           "extra_info": {"input_name": "image"}})
        return errors

    # -- execution ---------------------------------------------------------------------------
    def _execute_loop(self) -> None:
        while True:
            prompt_id, workflow = self._queue.get()
            with self._state_lock:
                if prompt_id not in self._pending:
                    continue  # deleted from the queue
                self._pending.remove(prompt_id)
                self._running = prompt_id
            self._interrupt.clear()
            self.executed.append(prompt_id)
            try:
                self.history[prompt_id] = self._execute(prompt_id, workflow)
            finally:
                with self._state_lock:
                    self._running = None

    def _execute(self, prompt_id: str, workflow: dict[str, Any]) -> dict[str, Any]:
        start = {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
        messages: list[Any] = [["execution_start", start]]
        batch = sum(int((n.get("inputs") or {}).get("batch_size", 1))
                    for n in workflow.values() if n["class_type"] == "EmptyLatentImage") or 1
        if self._interrupt.wait(self.seconds_per_image * batch):
            messages.append(["execution_interrupted", {"prompt_id": prompt_id,
                                                       "node_id": "3", "node_type": "KSampler",
                                                       "executed": []}])
            return self._entry(workflow, {}, "error", messages)
        if self._execution_faults:
            fault = self._execution_faults.pop(0)
            node_id = next((nid for nid, n in workflow.items()
                            if n["class_type"] == fault.node_class), next(iter(workflow)))
            messages.append(["execution_error", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": fault.node_class,
                "executed": [], "exception_message": fault.message,
                "exception_type": fault.exception_type, "traceback": ["..."],
                "current_inputs": {}, "current_outputs": {}}])
            return self._entry(workflow, {}, "error", messages)
        seed = next((n["inputs"].get("seed") for n in workflow.values()
                     if n["class_type"] == "KSampler"), 0)
        key = hashlib.sha256(json.dumps(workflow, sort_keys=True).encode()).hexdigest()
        outputs: dict[str, Any] = {}
        for node_id, node in sorted(workflow.items()):
            if not NODES[node["class_type"]][1]:
                continue
            kind = "output" if node["class_type"] == "SaveImage" else "temp"
            prefix = (node.get("inputs") or {}).get("filename_prefix", "ComfyUI")
            images = []
            for index in range(batch):
                with self._state_lock:
                    self._counter += 1
                    counter = self._counter
                name = f"{prefix}_{counter:05}_.png"
                self.outputs[name] = render_png(f"{key}|{seed}|{node_id}|{index}", 32, 32)
                images.append({"filename": name, "subfolder": "", "type": kind})
            outputs[node_id] = {"images": images}
        messages.append(["execution_success", {"prompt_id": prompt_id}])
        return self._entry(workflow, outputs, "success", messages)

    @staticmethod
    def _entry(workflow: dict[str, Any], outputs: dict[str, Any], status: str,
               messages: list[Any]) -> dict[str, Any]:
        return {"prompt": [0, "id", workflow, {}, list(outputs)], "outputs": outputs,
                "status": {"status_str": status, "completed": status == "success",
                           "messages": messages}}


def text_to_image_workflow(prompt: str = "a red fox", seed: int = 7, batch: int = 1
                           ) -> dict[str, Any]:
    """The default ComfyUI text-to-image workflow in API format."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": seed, "steps": 20, "cfg": 8, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0], "denoise": 1}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 512, "height": 512, "batch_size": batch}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI",
                                                   "images": ["8", 0]}},
    }
