"""The fake ComfyUI of the tests: the local preview's ComfyUI (one implementation, checked
against the real server's recorded answers) behind the fakes' fault switches.

It validates as ComfyUI 0.3.64 does (unknown node classes are refused, as on a server
without custom nodes; CheckpointLoaderSimple accepts ``CHECKPOINTS``), runs one prompt at a
time, honours targeted interrupts and caches node outputs like the real server. Test hooks:
``fail_execution`` makes the next prompt fail at a node; ``interrupt_bodies`` and
``deleted_history`` record what clients asked for; ``inputs`` and ``outputs`` show the files.
"""

from __future__ import annotations

import json
from typing import Any

from sdaas.local.preview import ComfyUiPreview, ExecutionFault
from tests.fakes.base import FakeServer, Request, Response

CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors",)


class FakeComfyUI(FakeServer):
    def __init__(self, seconds_per_image: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = ComfyUiPreview(seconds_per_image=seconds_per_image,
                                     accept_unknown_nodes=False, checkpoints=CHECKPOINTS)
        self.interrupt_bodies: list[Any] = []
        self.deleted_history: list[str] = []
        self.deleted_from_queue: list[str] = []

    def shutdown(self) -> None:
        """Stop serving and end the execution thread (the fixture's last step)."""
        self.stop()
        self.engine.stop()

    @property
    def seconds_per_image(self) -> float:
        return self.engine.seconds_per_image

    @seconds_per_image.setter
    def seconds_per_image(self, value: float) -> None:
        self.engine.seconds_per_image = value

    @property
    def history(self) -> dict[str, Any]:
        return dict(self.engine.history)

    @property
    def interrupts(self) -> int:
        return len(self.interrupt_bodies)

    @property
    def inputs(self) -> dict[str, bytes]:
        return {"/".join(p for p in (sub, name) if p): data
                for (kind, sub, name), data in self.engine.files.items() if kind == "input"}

    @property
    def outputs(self) -> dict[str, bytes]:
        return {"/".join(p for p in (sub, name) if p): data
                for (kind, sub, name), data in self.engine.files.items() if kind == "output"}

    def fault_paths(self) -> tuple[str, ...]:
        return ("/prompt", "/history", "/view", "/upload")

    def fail_execution(self, node_class: str = "KSampler", exception_type: str = "RuntimeError",
                       message: str = "mat1 and mat2 shapes cannot be multiplied") -> None:
        self.engine.faults.append(ExecutionFault(node_class, exception_type, message))

    def default_error(self, status: int) -> Any:
        return {"error": "internal", "detail": f"injected {status}"}

    def handle(self, request: Request) -> Response:
        if request.method == "POST":
            self._note(request)
        answer = self.engine.handle(request.method, request.path, request.query, request.body,
                                    request.headers.get("Content-Type", ""))
        return Response(answer.status, raw=answer.body, content_type=answer.content_type,
                        headers=answer.headers)

    def _note(self, request: Request) -> None:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        if request.path == "/interrupt":
            self.interrupt_bodies.append(body)
        elif isinstance(body, dict) and request.path == "/history":
            self.deleted_history.extend(body.get("delete") or [])
        elif isinstance(body, dict) and request.path == "/queue":
            self.deleted_from_queue.extend(body.get("delete") or [])


def text_to_image_workflow(prompt: str = "a red fox", seed: int = 7, batch: int = 1
                           ) -> dict[str, Any]:
    """The default ComfyUI text-to-image workflow in API format."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": seed, "steps": 20, "cfg": 8, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0], "denoise": 1}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": CHECKPOINTS[0]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 512, "height": 512, "batch_size": batch}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI",
                                                   "images": ["8", 0]}},
    }
