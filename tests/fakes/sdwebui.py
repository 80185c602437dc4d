"""A fake AUTOMATIC1111 WebUI API (``--api``) following shared/runtime-apis.md.

Generation takes ``seconds_per_image`` per image (``turbo_seconds_per_image`` when the loaded
checkpoint's title contains "turbo"), one generation at a time like the real server. Images
are deterministic PNGs derived from the request, so a retried task yields identical bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sdaas.local.preview import BATCH_KEYS, IMG2IMG_KEYS, SINGLE_KEYS, TXT2IMG_KEYS
from tests.fakes.base import FakeServer, Request, Response, render_png

# The A1111 request fields (FastAPI rejects any other key with 422): one list, shared with
# the local mode's preview runtime.
SAMPLERS = {"Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "LMS"}
UPSCALERS = {"None", "Lanczos", "Nearest", "R-ESRGAN 4x+"}
INT_FIELDS = ("steps", "width", "height", "batch_size", "n_iter", "seed")


@dataclass
class Generation:
    endpoint: str
    started: float
    ended: float = 0.0
    seed: int | None = None
    prompt: str = ""
    model: str = ""
    images: int = 0
    interrupted: bool = False


@dataclass
class Checkpoint:
    title: str
    model_name: str
    hash: str
    filename: str

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "model_name": self.model_name, "hash": self.hash,
                "sha256": hashlib.sha256(self.title.encode()).hexdigest(),
                "filename": self.filename, "config": None}


def checkpoint(name: str) -> Checkpoint:
    short = hashlib.sha256(name.encode()).hexdigest()[:10]
    return Checkpoint(f"{name}.safetensors [{short}]", name, short,
                      f"/models/Stable-diffusion/{name}.safetensors")


@dataclass
class SdState:
    checkpoints: list[Checkpoint] = field(default_factory=lambda: [
        checkpoint("v1-5-pruned-emaonly"), checkpoint("sd_xl_turbo_1.0")])
    hidden: list[Checkpoint] = field(default_factory=list)  # appear after refresh-checkpoints
    current: str = ""
    switches: list[str] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    interrupts: int = 0


class FakeSdWebUI(FakeServer):
    def __init__(self, seconds_per_image: float = 0.05,
                 turbo_seconds_per_image: float | None = None, switch_seconds: float = 0.05,
                 max_side: int = 64, noise: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds_per_image = seconds_per_image
        self.turbo_seconds_per_image = (seconds_per_image if turbo_seconds_per_image is None
                                        else turbo_seconds_per_image)
        self.switch_seconds = switch_seconds
        self.max_side = max_side
        self.noise = noise
        self.state = SdState()
        self.state.current = self.state.checkpoints[0].title
        self._gpu = threading.Lock()
        self._interrupt = threading.Event()

    # -- helpers for tests ----------------------------------------------------------------
    @property
    def generations(self) -> list[Generation]:
        return list(self.state.generations)

    def completed_generations(self) -> list[Generation]:
        return [g for g in self.state.generations if g.ended and not g.interrupted]

    def fault_paths(self) -> tuple[str, ...]:
        return ("/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/extra-",
                "/sdapi/v1/options")

    def on_hang(self, request: Request) -> None:
        self.state.generations.append(Generation(request.path, time.time(), interrupted=True))

    def default_error(self, status: int) -> Any:
        if status == 422:
            return {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer",
                                "type": "type_error.integer"}]}
        if status == 404:
            return {"detail": "Sampler not found"}
        return {"error": "OutOfMemoryError", "detail": "", "body": "",
                "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}

    # -- routes -----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if method == "GET" and path in ("/internal/ping", "/sdapi/v1/memory"):
            return Response(200, {} if path == "/internal/ping" else {"ram": {}, "cuda": {}})
        if path == "/sdapi/v1/options":
            return self._options(request)
        if method == "GET" and path == "/sdapi/v1/sd-models":
            return Response(200, [c.as_json() for c in self.state.checkpoints])
        if method == "POST" and path == "/sdapi/v1/refresh-checkpoints":
            self.state.checkpoints.extend(self.state.hidden)
            self.state.hidden.clear()
            return Response(200, None)
        if method == "POST" and path == "/sdapi/v1/interrupt":
            self.state.interrupts += 1
            self._interrupt.set()
            self.release.set()
            return Response(200, {})
        if method == "GET" and path == "/sdapi/v1/progress":
            return Response(200, {"progress": 0.0, "eta_relative": 0.0, "state": {}})
        routes = {
            "/sdapi/v1/txt2img": (TXT2IMG_KEYS, self._txt2img),
            "/sdapi/v1/img2img": (IMG2IMG_KEYS, self._img2img),
            "/sdapi/v1/extra-single-image": (SINGLE_KEYS, self._extra_single),
            "/sdapi/v1/extra-batch-images": (BATCH_KEYS, self._extra_batch),
        }
        if method == "POST" and path in routes:
            allowed, action = routes[path]
            try:
                body = request.json()
            except json.JSONDecodeError as exc:
                return Response(422, {"detail": [{"loc": ["body", exc.pos], "msg": exc.msg,
                                                  "type": "value_error.jsondecode"}]})
            problems = self._validate(body, allowed)
            if problems:
                return Response(422, {"detail": problems})
            return action(body)
        return Response(404, {"detail": "Not Found"})

    def _options(self, request: Request) -> Response:
        if request.method == "GET":
            return Response(200, {"sd_model_checkpoint": self.state.current,
                                  "samples_format": "png"})
        wanted = (request.json() or {}).get("sd_model_checkpoint")
        if wanted is not None:
            titles = [c.title for c in self.state.checkpoints]
            if wanted not in titles:
                return Response(500, {"error": "RuntimeError", "detail": "",
                                      "body": "", "errors": f"model {wanted!r} not found"})
            with self._gpu:
                time.sleep(self.switch_seconds)
                self.state.current = wanted
                self.state.switches.append(wanted)
        return Response(200, None)

    @staticmethod
    def _validate(body: Any, allowed: set[str]) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            return [{"loc": ["body"], "msg": "value is not a valid dict",
                     "type": "type_error.dict"}]
        problems = [{"loc": ["body", key], "msg": "extra fields not permitted",
                     "type": "value_error.extra"} for key in body if key not in allowed]
        for key in INT_FIELDS:
            if key in body and not isinstance(body[key], int):
                problems.append({"loc": ["body", key], "msg": "value is not a valid integer",
                                 "type": "type_error.integer"})
        return problems

    def _per_image(self) -> float:
        turbo = "turbo" in self.state.current.lower()
        return self.turbo_seconds_per_image if turbo else self.seconds_per_image

    def _generate(self, endpoint: str, key: str, count: int, width: int, height: int,
                  seed: int | None, prompt: str) -> tuple[list[bytes], Generation]:
        size = (max(8, min(width, self.max_side)), max(8, min(height, self.max_side)))
        with self._gpu:
            self._interrupt.clear()
            started = time.monotonic()
            record = Generation(endpoint, time.time(), seed=seed, prompt=prompt,
                                model=self.state.current, images=count)
            self.state.generations.append(record)
            # Encoding the images is part of the fixed time per image, as on the real server.
            images = [render_png(f"{key}|{self.state.current}|{i}", *size, noise=self.noise)
                      for i in range(count)]
            remaining = self._per_image() * count - (time.monotonic() - started)
            interrupted = self._interrupt.wait(max(0.0, remaining))
            record.ended = time.time()
            record.interrupted = interrupted
        return images, record

    def _decode(self, data: Any) -> bytes | Response:
        if not isinstance(data, str):
            return Response(422, {"detail": [{"loc": ["body", "image"], "msg": "str type expected",
                                              "type": "type_error.str"}]})
        if data.startswith("data:"):
            data = data.split(",", 1)[1]
        try:
            raw = base64.b64decode(data, validate=True)
            Image.open(io.BytesIO(raw)).verify()
        except (binascii.Error, ValueError, OSError):
            return Response(500, {"error": "HTTPException", "detail": "Invalid encoded image",
                                  "body": "", "errors": ""})
        return raw

    def _sd(self, endpoint: str, body: dict[str, Any], extra_key: str) -> Response:
        if body.get("sampler_name", "Euler a") not in SAMPLERS:
            return Response(404, {"detail": "Sampler not found"})
        seed = body.get("seed", -1)
        count = int(body.get("batch_size", 1)) * int(body.get("n_iter", 1))
        key = json.dumps({"p": body.get("prompt", ""), "s": seed, "x": extra_key,
                          "w": body.get("width"), "h": body.get("height")}, sort_keys=True)
        images, _ = self._generate(endpoint, key, count, int(body.get("width", 512)),
                                   int(body.get("height", 512)), seed, body.get("prompt", ""))
        seeds = [seed + i for i in range(count)] if isinstance(seed, int) and seed >= 0 else [
            1234 + i for i in range(count)]
        info = {"prompt": body.get("prompt", ""), "seed": seeds[0], "all_seeds": seeds,
                "subseed": body.get("subseed", -1), "sd_model_name": self.state.current,
                "infotexts": [f"{body.get('prompt', '')}\nSeed: {s}" for s in seeds]}
        parameters = dict(body)
        if "init_images" in parameters:
            parameters["init_images"] = None
            parameters["mask"] = None
        return Response(200, {"images": [base64.b64encode(i).decode() for i in images],
                              "parameters": parameters, "info": json.dumps(info)})

    def _txt2img(self, body: dict[str, Any]) -> Response:
        return self._sd("txt2img", body, "")

    def _img2img(self, body: dict[str, Any]) -> Response:
        inputs = body.get("init_images")
        if not isinstance(inputs, list) or not inputs:
            return Response(422, {"detail": [{"loc": ["body", "init_images"],
                                              "msg": "field required", "type": "value_error"}]})
        digests = []
        for item in inputs + ([body["mask"]] if body.get("mask") else []):
            raw = self._decode(item)
            if isinstance(raw, Response):
                return raw
            digests.append(hashlib.sha256(raw).hexdigest()[:12])
        return self._sd("img2img", body, ",".join(digests))

    def _extra_single(self, body: dict[str, Any]) -> Response:
        raw = self._decode(body.get("image"))
        if isinstance(raw, Response):
            return raw
        if body.get("upscaler_1", "None") not in UPSCALERS:
            return Response(404, {"detail": "Upscaler not found"})
        images, _ = self._generate("extra-single-image", hashlib.sha256(raw).hexdigest(), 1,
                                   64, 64, None, "")
        return Response(200, {"html_info": "<p>upscaled</p>",
                              "image": base64.b64encode(images[0]).decode()})

    def _extra_batch(self, body: dict[str, Any]) -> Response:
        items = body.get("imageList")
        if not isinstance(items, list):
            return Response(422, {"detail": [{"loc": ["body", "imageList"],
                                              "msg": "field required", "type": "value_error"}]})
        out = []
        for item in items:
            raw = self._decode(item.get("data") if isinstance(item, dict) else None)
            if isinstance(raw, Response):
                return raw
            images, _ = self._generate("extra-batch-images", hashlib.sha256(raw).hexdigest(),
                                       1, 64, 64, None, "")
            out.append(base64.b64encode(images[0]).decode())
        return Response(200, {"html_info": "<p>upscaled</p>", "images": out})


def reference_images(fake: FakeSdWebUI, body: dict[str, Any]) -> list[bytes]:
    """What the fake returns for ``body`` (txt2img), asked directly: the expected outputs."""
    import requests

    answer = requests.post(f"{fake.url}/sdapi/v1/txt2img", json=body, timeout=30)
    answer.raise_for_status()
    return [base64.b64decode(image) for image in answer.json()["images"]]
