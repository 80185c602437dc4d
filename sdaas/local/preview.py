"""The PREVIEW runtime: the SD WebUI or ComfyUI API subset the queue agent uses, answering
with placeholder images. It is NOT a model and never claims to be one.

``make local`` runs one of these beside each queue agent so the whole asynchronous path
(API, queue, agent, bucket, status, result topic) can be seen working on a machine without a
GPU. Every image it returns is a gradient (or the input image, for image-to-image and
upscaling) with a "PREVIEW - not a model" banner, the prompt text and the parameters drawn on
it; the PNG's ``parameters`` text chunk says the same. Every response carries the header
``X-Preview-Runtime``.

Generation takes a fixed ``seconds_per_image`` (rendering included), one request at a time,
like a GPU-bound server. Images are deterministic: the same request gives the same bytes.

Markers a request can carry anywhere in its text (the prompt, a ComfyUI node input, any
string field) to steer the preview, for demonstrations and end-to-end tests:

``[preview:fail]``
    The generation fails the way a runtime failure looks: SD WebUI answers 500
    ``{"error": "PreviewFailure", ...}`` (the queue agent treats a 5xx as transient, so the
    task is retried and fails on its last delivery); ComfyUI ends the prompt with an
    ``execution_error`` (permanent for the agent: the task fails at once).
``[preview:invalid]``
    The request is refused as invalid: SD WebUI answers 422 with a FastAPI ``detail`` list,
    ComfyUI 400 with ``node_errors`` (permanent: the task fails at once).
``[preview:sleep=SECONDS]``
    This request takes SECONDS per image instead of the configured time (at most 3600).
``[preview:kill-agent]``, ``[preview:kill-agent=N]``
    The request kills the queue agent that sent it (SIGKILL, as an out-of-memory kill ends
    its container), every time or on the first N identical requests: the task's message
    comes back after its visibility timeout, reaches the dead-letter queue after
    ``maxReceiveCount`` deliveries, and the dead-letter consumer fails the task
    (:mod:`sdaas.local.agent_kill`; needs ``--agent-pid-file``, which local mode passes).

Endpoints (shapes as in the runtimes' own APIs):

* SD WebUI: ``POST /sdapi/v1/txt2img``, ``img2img``, ``extra-single-image``,
  ``extra-batch-images``; ``GET|POST /sdapi/v1/options``; ``GET /sdapi/v1/sd-models``;
  ``POST /sdapi/v1/refresh-checkpoints``, ``unload-checkpoint``, ``reload-checkpoint``,
  ``interrupt``; ``GET /sdapi/v1/progress``, ``/sdapi/v1/memory``, ``/internal/ping``.
  Unknown body keys and non-numeric numeric fields are refused with 422 as FastAPI does;
  sampler, upscaler and script names are not checked.
* ComfyUI: ``POST /prompt`` (and ``GET``), ``GET|POST /history[/<id>]``, ``GET /view``,
  ``POST /upload/image``, ``GET|POST /queue``, ``POST /interrupt``, ``POST /free``,
  ``GET /system_stats``. Any ``class_type`` is accepted (the preview knows no node
  classes); links, outputs and ``LoadImage`` inputs are validated as ComfyUI does. There is
  no WebSocket: clients poll ``/history`` (the queue agent does).

Run one by hand::

    python -m sdaas.local.preview --type sdwebui --port 8080 --seconds-per-image 1
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email
import email.policy
import hashlib
import io
import json
import math
import os
import re
import textwrap
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from sdaas.local._serve import (
    JsonHandler,
    LoopbackServer,
    serve_until_signalled,
    write_ready_file,
)
from sdaas.local.agent_kill import AgentKiller
from sdaas.local.environment import INSTANCE_ENV

LABEL = "PREVIEW - not a model"
HEADER = {"X-Preview-Runtime": "placeholder images, not a model"}
RUNTIME_TYPES = ("sdwebui", "comfyui")
MAX_SIDE = 2048  # larger requests are drawn at this size (and say so in their info)
MIN_SIDE = 8
MAX_IMAGES_PER_REQUEST = 100
MAX_SLEEP_SECONDS = 3600.0
DEFAULT_MODEL = "preview-placeholder.safetensors"
# Bounded memory: the oldest entries go first (ComfyUI keeps files on disk instead).
MAX_STORED_OUTPUTS = 512
MAX_STORED_INPUTS = 256
MAX_HISTORY = 1000

MARKER_RE = re.compile(r"\[preview:(fail|invalid|sleep=(\d+(?:\.\d+)?))\]")


@dataclass(frozen=True)
class Markers:
    fail: bool = False
    invalid: bool = False
    sleep_seconds: float | None = None


def markers_in(text: str) -> Markers:
    fail = invalid = False
    sleep = None
    for match in MARKER_RE.finditer(text):
        if match.group(1) == "fail":
            fail = True
        elif match.group(1) == "invalid":
            invalid = True
        else:
            sleep = min(float(match.group(2)), MAX_SLEEP_SECONDS)
    return Markers(fail, invalid, sleep)


# --- drawing -------------------------------------------------------------------------------


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _colors(key: str) -> list[tuple[int, int, int]]:
    digest = hashlib.sha256(key.encode()).digest()
    return [(digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 12, 3)]


def clamp_size(width: Any, height: Any) -> tuple[int, int]:
    def one(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 512
        return max(MIN_SIDE, min(MAX_SIDE, number))

    return one(width), one(height)


def render_placeholder(*, width: int, height: int, title: str, text: str, footer: str,
                       key: str, background: bytes | None = None) -> bytes:
    """A labelled placeholder PNG; the same arguments always give the same bytes."""
    width, height = clamp_size(width, height)
    base: Image.Image | None = None
    if background is not None:
        try:
            with Image.open(io.BytesIO(background)) as source:
                base = source.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        except (OSError, ValueError, Image.DecompressionBombError):
            base = None
    if base is None:
        corners = Image.new("RGB", (2, 2))
        corners.putdata(_colors(key))
        base = corners.resize((width, height), Image.Resampling.BILINEAR)
    image = base.convert("RGBA")
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    size = max(8, min(width, 1024) // 18)
    banner = _font(size)
    small = _font(max(7, size * 2 // 3))
    band = size * 2 + 8
    draw.rectangle((0, 0, width, band), fill=(0, 0, 0, 190))
    draw.text((6, 4), LABEL, font=banner, fill=(255, 215, 0, 255))
    draw.text((6, 6 + size), title, font=small, fill=(255, 255, 255, 255))
    chars = max(8, int(width / max(4, size * 0.55)))
    lines = textwrap.wrap(text, chars)[: max(1, (height - 2 * band) // (size + 4))]
    y = band + 8
    for line in lines:
        draw.rectangle((0, y - 2, width, y + size + 2), fill=(0, 0, 0, 110))
        draw.text((6, y), line, font=banner, fill=(255, 255, 255, 255))
        y += size + 4
    draw.rectangle((0, height - size - 8, width, height), fill=(0, 0, 0, 190))
    draw.text((6, height - size - 5), footer, font=small, fill=(255, 255, 255, 255))
    out = Image.alpha_composite(image, overlay).convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"{text}\n{footer}\n{LABEL}: placeholder from the preview "
                                f"runtime")
    buffer = io.BytesIO()
    out.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def _derived_seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 4294967295


class _Busy:
    """One generation at a time, interruptible, with progress: the GPU of the preview."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.interrupt = threading.Event()
        self.started = 0.0
        self.expected = 0.0
        self.job_count = 0

    def run(self, count: int, seconds_per_image: float, render: Any) -> tuple[list[bytes], bool]:
        """Render ``count`` images in ``count * seconds_per_image`` seconds (at least)."""
        with self.lock:
            self.interrupt.clear()
            self.started = time.monotonic()
            self.expected = count * seconds_per_image
            self.job_count = count
            images: list[bytes] = []
            interrupted = False
            for index in range(count):
                images.append(render(index))
                due = self.started + (index + 1) * seconds_per_image
                if self.interrupt.wait(max(0.0, due - time.monotonic())):
                    interrupted = True
                    break
            self.expected = 0.0
            self.job_count = 0
            return images, interrupted

    def progress(self) -> tuple[float, float]:
        if not self.expected:
            return 0.0, 0.0
        elapsed = time.monotonic() - self.started
        return min(1.0, elapsed / self.expected), max(0.0, self.expected - elapsed)


# --- SD WebUI -----------------------------------------------------------------------------

_COMMON_KEYS = {
    "prompt", "negative_prompt", "styles", "seed", "subseed", "subseed_strength",
    "seed_resize_from_h", "seed_resize_from_w", "sampler_name", "scheduler", "batch_size",
    "n_iter", "steps", "cfg_scale", "distilled_cfg_scale", "width", "height",
    "restore_faces", "tiling", "do_not_save_samples", "do_not_save_grid", "eta",
    "denoising_strength", "s_min_uncond", "s_churn", "s_tmax", "s_tmin", "s_noise",
    "override_settings", "override_settings_restore_afterwards", "refiner_checkpoint",
    "refiner_switch_at", "disable_extra_networks", "firstpass_image", "comments",
    "sampler_index", "script_name", "script_args", "send_images", "save_images",
    "alwayson_scripts", "infotext", "force_task_id",
}
TXT2IMG_KEYS = _COMMON_KEYS | {
    "enable_hr", "firstphase_width", "firstphase_height", "hr_scale", "hr_upscaler",
    "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "hr_checkpoint_name",
    "hr_sampler_name", "hr_scheduler", "hr_prompt", "hr_negative_prompt", "hr_cfg",
    "hr_distilled_cfg", "hr_additional_modules",
}
IMG2IMG_KEYS = _COMMON_KEYS | {
    "init_images", "resize_mode", "image_cfg_scale", "mask", "mask_blur_x", "mask_blur_y",
    "mask_blur", "mask_round", "inpainting_fill", "inpaint_full_res",
    "inpaint_full_res_padding", "inpainting_mask_invert", "initial_noise_multiplier",
    "latent_mask", "include_init_images",
}
_EXTRAS_KEYS = {
    "resize_mode", "show_extras_results", "gfpgan_visibility", "codeformer_visibility",
    "codeformer_weight", "upscaling_resize", "upscaling_resize_w", "upscaling_resize_h",
    "upscaling_crop", "upscaler_1", "upscaler_2", "extras_upscaler_2_visibility",
    "upscale_first",
}
SINGLE_KEYS = _EXTRAS_KEYS | {"image"}
BATCH_KEYS = _EXTRAS_KEYS | {"imageList"}
INTEGER_FIELDS = ("steps", "width", "height", "batch_size", "n_iter", "seed", "subseed",
                  "resize_mode", "upscaling_resize_w", "upscaling_resize_h")
NUMBER_FIELDS = ("cfg_scale", "denoising_strength", "upscaling_resize", "subseed_strength")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def validate_webui_body(body: Any, allowed: set[str]) -> list[dict[str, Any]]:
    """FastAPI-shaped ``detail`` entries for what the real server would refuse with 422."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
    problems = [{"loc": ["body", key], "msg": "extra fields not permitted",
                 "type": "value_error.extra"} for key in body if key not in allowed]
    for key in INTEGER_FIELDS:
        if key in body and body[key] is not None and _as_int(body[key]) is None:
            problems.append({"loc": ["body", key], "msg": "value is not a valid integer",
                             "type": "type_error.integer"})
    for key in NUMBER_FIELDS:
        if key in body and body[key] is not None and _as_number(body[key]) is None:
            problems.append({"loc": ["body", key], "msg": "value is not a valid float",
                             "type": "type_error.float"})
    for key in ("override_settings", "alwayson_scripts"):
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            problems.append({"loc": ["body", key], "msg": "value is not a valid dict",
                             "type": "type_error.dict"})
    return problems


class _Invalid(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def decode_image(data: Any, field_name: str) -> bytes:
    """An input image as A1111 decodes it (``data:`` prefix allowed); its errors."""
    if not isinstance(data, str):
        raise _Invalid(422, {"detail": [{"loc": ["body", field_name], "msg": "str type expected",
                                         "type": "type_error.str"}]})
    if data.startswith("data:"):
        data = data.split(",", 1)[-1]
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            image.verify()
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        raise _Invalid(500, {"error": "HTTPException", "detail": "Invalid encoded image",
                             "body": "", "errors": ""}) from None
    return raw


def _image_size(raw: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(raw)) as image:
        return image.size


@dataclass
class Checkpoint:
    title: str
    model_name: str
    hash: str
    filename: str

    @classmethod
    def named(cls, name: str) -> Checkpoint:
        base = re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", name.strip())
        stem = base.rsplit(".", 1)[0] if base.endswith((".safetensors", ".ckpt")) else base
        filename = base if base != stem else f"{base}.safetensors"
        short = hashlib.sha256(filename.encode()).hexdigest()[:10]
        return cls(f"{filename} [{short}]", stem, short, f"/models/Stable-diffusion/{filename}")

    def names(self) -> set[str]:
        base = self.filename.rsplit("/", 1)[-1]
        return {self.title, self.model_name, self.hash, base, base.rsplit(".", 1)[0]}

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "model_name": self.model_name, "hash": self.hash,
                "sha256": hashlib.sha256(self.title.encode()).hexdigest(),
                "filename": self.filename, "config": None}


class SdWebUiPreview:
    """State and behaviour of the SD WebUI preview; HTTP-free, so tests can call it."""

    def __init__(self, *, seconds_per_image: float, models: Iterable[str] = ()) -> None:
        self.seconds_per_image = seconds_per_image
        names = list(models) or [DEFAULT_MODEL]
        self.checkpoints = [Checkpoint.named(n) for n in names]
        self.current = self.checkpoints[0]
        self.busy = _Busy()
        self.generations = 0

    def find(self, name: str) -> Checkpoint | None:
        wanted = name.strip()
        for checkpoint in self.checkpoints:
            if wanted in checkpoint.names():
                return checkpoint
        return None

    # -- routes ------------------------------------------------------------------------------
    def handle(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if path in ("/internal/ping", "/sdapi/v1/memory"):
            if method != "GET":
                return 405, {"detail": "Method Not Allowed"}
            if path == "/internal/ping":
                return 200, {}
            return 200, {"ram": {"free": 0, "used": 0, "total": 0},
                         "cuda": {"error": "preview runtime: no GPU, no model"}}
        generation = {
            "/sdapi/v1/txt2img": (TXT2IMG_KEYS, self.txt2img),
            "/sdapi/v1/img2img": (IMG2IMG_KEYS, self.img2img),
            "/sdapi/v1/extra-single-image": (SINGLE_KEYS, self.extra_single),
            "/sdapi/v1/extra-batch-images": (BATCH_KEYS, self.extra_batch),
        }
        if path in generation:
            if method != "POST":
                return 405, {"detail": "Method Not Allowed"}
            allowed, action = generation[path]
            try:
                body = json.loads(raw or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return 422, {"detail": [{"loc": ["body", 0], "msg": str(exc),
                                         "type": "value_error.jsondecode"}]}
            problems = validate_webui_body(body, allowed)
            if problems:
                return 422, {"detail": problems}
            markers = markers_in(raw.decode("utf-8", "replace"))
            if markers.invalid:
                return 422, {"detail": [{"loc": ["body", "prompt"],
                                         "msg": "the request asked the preview runtime to "
                                                "refuse it ([preview:invalid])",
                                         "type": "value_error.preview"}]}
            if markers.fail:
                return 500, {"error": "PreviewFailure", "detail": "",
                             "body": "", "errors": "the request asked the preview runtime "
                                                   "to fail ([preview:fail])"}
            try:
                return 200, action(body, markers)
            except _Invalid as exc:
                return exc.status, exc.body
        return self._control(method, path, raw)

    def _control(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if path == "/sdapi/v1/options":
            if method == "GET":
                return 200, {"sd_model_checkpoint": self.current.title,
                             "sd_checkpoint_hash": self.current.hash,
                             "samples_format": "png", "preview_runtime": True}
            if method != "POST":
                return 405, {"detail": "Method Not Allowed"}
            try:
                body = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return 422, {"detail": [{"loc": ["body", 0], "msg": str(exc),
                                         "type": "value_error.jsondecode"}]}
            wanted = body.get("sd_model_checkpoint") if isinstance(body, dict) else None
            if wanted is not None:
                checkpoint = self.find(str(wanted))
                if checkpoint is None:
                    return 500, {"error": "RuntimeError", "detail": "", "body": "",
                                 "errors": f"checkpoint {wanted!r} not found; the preview "
                                           f"runtime offers "
                                           f"{[c.title for c in self.checkpoints]}"}
                with self.busy.lock:
                    self.current = checkpoint
            return 200, None
        if method == "GET" and path == "/sdapi/v1/sd-models":
            return 200, [c.as_json() for c in self.checkpoints]
        if method == "POST" and path in ("/sdapi/v1/refresh-checkpoints",
                                         "/sdapi/v1/unload-checkpoint",
                                         "/sdapi/v1/reload-checkpoint"):
            return 200, None
        if method == "POST" and path == "/sdapi/v1/interrupt":
            self.busy.interrupt.set()
            return 200, None
        if method == "POST" and path == "/sdapi/v1/skip":
            return 200, None
        if method == "GET" and path == "/sdapi/v1/progress":
            progress, eta = self.busy.progress()
            return 200, {"progress": round(progress, 3), "eta_relative": round(eta, 3),
                         "state": {"skipped": False, "interrupted": False, "job": "",
                                   "job_count": self.busy.job_count, "job_timestamp": "0",
                                   "job_no": 0, "sampling_step": 0, "sampling_steps": 0},
                         "current_image": None, "textinfo": None}
        return 404, {"detail": "Not Found"}

    # -- generation ------------------------------------------------------------------------
    def _per_image(self, markers: Markers) -> float:
        return self.seconds_per_image if markers.sleep_seconds is None else markers.sleep_seconds

    def _sd(self, kind: str, body: dict[str, Any], markers: Markers,
            background: bytes | None) -> dict[str, Any]:
        count = max(1, _as_int(body.get("batch_size")) or 1) * max(1, _as_int(
            body.get("n_iter")) or 1)
        if count > MAX_IMAGES_PER_REQUEST:
            raise _Invalid(422, {"detail": [{"loc": ["body", "batch_size"],
                                             "msg": f"the preview runtime draws at most "
                                                    f"{MAX_IMAGES_PER_REQUEST} images a request",
                                             "type": "value_error.preview"}]})
        width, height = clamp_size(body.get("width", 512), body.get("height", 512))
        prompt = str(body.get("prompt") or "")
        request_key = json.dumps(body, sort_keys=True, default=str)
        seed = _as_int(body.get("seed"))
        if seed is None or seed < 0:
            seed = _derived_seed(request_key)
        seeds = [seed + i for i in range(count)]
        model = self.current

        def render(index: int) -> bytes:
            footer = (f"{kind} | {width}x{height} | seed {seeds[index]} | "
                      f"{model.model_name} | {index + 1}/{count}")
            return render_placeholder(width=width, height=height, title=f"{kind} placeholder",
                                      text=prompt or "(no prompt)", footer=footer,
                                      key=f"{request_key}|{index}", background=background)

        images, _ = self.busy.run(count, self._per_image(markers), render)
        self.generations += 1
        infotexts = [f"{prompt}\nSteps: {body.get('steps', 20)}, Seed: {s}, Size: "
                     f"{width}x{height}, Model: {model.model_name}, {LABEL}" for s in seeds]
        info = {"prompt": prompt, "all_prompts": [prompt] * count,
                "negative_prompt": body.get("negative_prompt", ""), "seed": seeds[0],
                "all_seeds": seeds, "subseed": body.get("subseed", -1),
                "all_subseeds": [body.get("subseed", -1)] * count, "width": width,
                "height": height, "sampler_name": body.get("sampler_name", "Euler a"),
                "steps": body.get("steps", 20), "batch_size": count,
                "sd_model_name": model.model_name, "sd_model_hash": model.hash,
                "infotexts": infotexts[: len(images)], "preview_runtime": True}
        parameters = dict(body)
        if kind == "img2img":
            parameters["init_images"] = None
            parameters["mask"] = None
        return {"images": [base64.b64encode(i).decode() for i in images],
                "parameters": parameters, "info": json.dumps(info)}

    def txt2img(self, body: dict[str, Any], markers: Markers) -> dict[str, Any]:
        return self._sd("txt2img", body, markers, None)

    def img2img(self, body: dict[str, Any], markers: Markers) -> dict[str, Any]:
        inputs = body.get("init_images")
        if not isinstance(inputs, list) or not inputs:
            raise _Invalid(422, {"detail": [{"loc": ["body", "init_images"],
                                             "msg": "field required",
                                             "type": "value_error.missing"}]})
        raws = [decode_image(item, "init_images") for item in inputs]
        if body.get("mask"):
            decode_image(body["mask"], "mask")
        return self._sd("img2img", body, markers, raws[0])

    def _upscaled_size(self, body: dict[str, Any], raw: bytes) -> tuple[int, int]:
        width, height = _image_size(raw)
        if (_as_int(body.get("resize_mode")) or 0) == 1:
            return clamp_size(body.get("upscaling_resize_w", width),
                              body.get("upscaling_resize_h", height))
        factor = _as_number(body.get("upscaling_resize"))
        factor = 2.0 if factor is None or not math.isfinite(factor) or factor <= 0 else factor
        return clamp_size(width * factor, height * factor)

    def _extra(self, body: dict[str, Any], raws: list[bytes], markers: Markers) -> list[bytes]:
        def render(index: int) -> bytes:
            width, height = self._upscaled_size(body, raws[index])
            footer = (f"upscale | {width}x{height} | {body.get('upscaler_1', 'None')} | "
                      f"{index + 1}/{len(raws)}")
            return render_placeholder(width=width, height=height, title="upscale placeholder",
                                      text="upscaled input", footer=footer,
                                      key=hashlib.sha256(raws[index]).hexdigest(),
                                      background=raws[index])

        images, _ = self.busy.run(len(raws), self._per_image(markers), render)
        self.generations += 1
        return images

    def extra_single(self, body: dict[str, Any], markers: Markers) -> dict[str, Any]:
        raw = decode_image(body.get("image"), "image")
        images = self._extra(body, [raw], markers)
        return {"html_info": f"<p>{LABEL}</p>", "image": base64.b64encode(images[0]).decode()}

    def extra_batch(self, body: dict[str, Any], markers: Markers) -> dict[str, Any]:
        items = body.get("imageList")
        if not isinstance(items, list):
            raise _Invalid(422, {"detail": [{"loc": ["body", "imageList"],
                                             "msg": "field required",
                                             "type": "value_error.missing"}]})
        if len(items) > MAX_IMAGES_PER_REQUEST:
            raise _Invalid(422, {"detail": [{"loc": ["body", "imageList"],
                                             "msg": f"the preview runtime draws at most "
                                                    f"{MAX_IMAGES_PER_REQUEST} images a request",
                                             "type": "value_error.preview"}]})
        raws = [decode_image(item.get("data") if isinstance(item, dict) else None,
                             "imageList") for item in items]
        images = self._extra(body, raws, markers) if raws else []
        return {"html_info": f"<p>{LABEL}</p>",
                "images": [base64.b64encode(i).decode() for i in images]}


# --- ComfyUI ------------------------------------------------------------------------------

OUTPUT_CLASSES = {"SaveImage": "output", "PreviewImage": "temp"}
OTHER_OUTPUT_CLASSES = {"SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveImageWebsocket",
                        "SaveLatent"}
LOAD_IMAGE_CLASSES = ("LoadImage", "LoadImageMask")


def _comfy_error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def _marker_node(workflow: dict[str, Any]) -> str | None:
    for node_id, node in workflow.items():
        if MARKER_RE.search(json.dumps(node.get("inputs", {}), default=str)):
            return str(node_id)
    return None


class ComfyUiPreview:
    """State and behaviour of the ComfyUI preview; HTTP-free, so tests can call it."""

    def __init__(self, *, seconds_per_image: float) -> None:
        self.seconds_per_image = seconds_per_image
        self.busy = _Busy()
        self.inputs: OrderedDict[str, bytes] = OrderedDict()
        self.outputs: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._pending: list[tuple[str, int, dict[str, Any], dict[str, Any]]] = []
        self._running: tuple[str, int] | None = None
        self._number = 0
        self._counter = 0
        self._state = threading.Condition()
        self._stopped = False
        self._worker = threading.Thread(target=self._execute_loop, name="preview-comfy",
                                        daemon=True)
        self._worker.start()

    def stop(self) -> None:
        with self._state:
            self._stopped = True
            self._state.notify_all()
        self.busy.interrupt.set()

    # -- routes ------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, raw: bytes,
               content_type: str) -> tuple[int, Any, str]:
        """(status, body, content type); a ``bytes`` body is sent as is."""
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if path == "/system_stats" and method == "GET":
            return 200, {"system": {"os": "preview", "python_version": "", "embedded_python":
                                    False, "comfyui_version": "preview (not a model)"},
                         "devices": []}, "application/json"
        if path == "/prompt":
            if method == "GET":
                with self._state:
                    remaining = len(self._pending) + (1 if self._running else 0)
                return 200, {"exec_info": {"queue_remaining": remaining}}, "application/json"
            if method == "POST":
                status, body = self.submit(raw)
                return status, body, "application/json"
        if path == "/history" or path.startswith("/history/"):
            return self._history(method, path, params, raw)
        if path == "/view" and method == "GET":
            data = self._view(params)
            if data is None:
                return 404, b"404: Not Found", "text/plain"
            return 200, data, "image/png"
        if path == "/upload/image" and method == "POST":
            return self._upload(raw, content_type)
        if path == "/queue":
            return self._queue(method, raw)
        if path == "/interrupt" and method == "POST":
            self.busy.interrupt.set()
            return 200, b"", "text/plain"
        if path == "/free" and method == "POST":
            return 200, b"", "text/plain"
        return 404, b"404: Not Found", "text/plain"

    # -- prompt validation and queueing --------------------------------------------------------
    def submit(self, raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return 400, {"error": _comfy_error("invalid_prompt", "Invalid JSON"),
                         "node_errors": {}}
        workflow = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(workflow, dict):
            return 400, {"error": _comfy_error("invalid_prompt", "Prompt is not a dict"),
                         "node_errors": {}}
        for node_id, node in workflow.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return 400, {"error": _comfy_error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'"), "node_errors": {}}
        outputs = [nid for nid, node in workflow.items()
                   if node["class_type"] in OUTPUT_CLASSES
                   or node["class_type"] in OTHER_OUTPUT_CLASSES]
        if not outputs:
            return 400, {"error": _comfy_error("prompt_no_outputs", "Prompt has no outputs"),
                         "node_errors": {}}
        node_errors: dict[str, Any] = {}
        for node_id, node in workflow.items():
            errors = self._node_errors(node, workflow)
            if errors:
                node_errors[str(node_id)] = {"errors": errors, "dependent_outputs": outputs,
                                             "class_type": node["class_type"]}
        markers = markers_in(json.dumps(workflow, default=str))
        if markers.invalid:
            marked = _marker_node(workflow) or next(iter(workflow))
            node_errors.setdefault(marked, {"errors": [], "dependent_outputs": outputs,
                                            "class_type": workflow[marked]["class_type"]})
            node_errors[marked]["errors"].append({
                "type": "value_not_valid", "message": "Value not valid",
                "details": "the workflow asked the preview runtime to refuse it "
                           "([preview:invalid])", "extra_info": {}})
        if node_errors:
            return 400, {"error": _comfy_error("prompt_outputs_failed_validation",
                                               "Prompt outputs failed validation"),
                         "node_errors": node_errors}
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = {"client_id": body.get("client_id")}
        with self._state:
            self._number += 1
            number = self._number
            self._pending.append((prompt_id, number, workflow, extra))
            self._state.notify_all()
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": {}}

    def _node_errors(self, node: dict[str, Any], workflow: dict[str, Any]) -> list[Any]:
        inputs = node.get("inputs")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            return [{"type": "invalid_input", "message": "inputs must be an object",
                     "details": "", "extra_info": {}}]
        errors: list[Any] = []
        for name, value in inputs.items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) \
                    and not isinstance(value[1], bool):
                if str(value[0]) not in workflow:
                    errors.append({"type": "bad_linked_input",
                                   "message": "Bad linked input, must be a length-2 list of "
                                              "[string, int]",
                                   "details": f"{name}: node {value[0]} does not exist",
                                   "extra_info": {"input_name": name}})
        if node["class_type"] in LOAD_IMAGE_CLASSES:
            name = inputs.get("image")
            if name not in self.inputs:
                errors.append({"type": "value_not_in_list", "message": "Value not in list",
                               "details": f"image: '{name}' not in {sorted(self.inputs)[:20]}",
                               "extra_info": {"input_name": "image"}})
        return errors

    # -- execution ---------------------------------------------------------------------------
    def _execute_loop(self) -> None:
        while True:
            with self._state:
                while not self._pending and not self._stopped:
                    self._state.wait()
                if self._stopped:
                    return
                prompt_id, number, workflow, extra = self._pending.pop(0)
                self._running = (prompt_id, number)
            try:
                entry = self._execute(prompt_id, number, workflow, extra)
            except Exception as exc:  # the preview's own bug: report it like ComfyUI does
                entry = self._entry(number, prompt_id, workflow, extra, {}, "error", [[
                    "execution_error", {"prompt_id": prompt_id, "node_id": None,
                                        "node_type": None, "exception_type": type(exc).__name__,
                                        "exception_message": str(exc)[:300],
                                        "traceback": [], "executed": []}]])
            with self._state:
                self._running = None
                self.history[prompt_id] = entry
                while len(self.history) > MAX_HISTORY:
                    self.history.popitem(last=False)

    def _execute(self, prompt_id: str, number: int, workflow: dict[str, Any],
                 extra: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        messages: list[Any] = [["execution_start", {"prompt_id": prompt_id, "timestamp": now}]]
        markers = markers_in(json.dumps(workflow, default=str))
        ids = sorted(workflow, key=lambda n: (0, int(n)) if str(n).isdigit() else (1, str(n)))
        batch, width, height, background = 1, 512, 512, None
        for node_id in ids:
            node = workflow[node_id]
            inputs = node.get("inputs") or {}
            if node["class_type"] in ("EmptyLatentImage", "EmptySD3LatentImage"):
                batch = max(batch, _as_int(inputs.get("batch_size")) or 1)
                width, height = clamp_size(inputs.get("width", 512), inputs.get("height", 512))
            if node["class_type"] in LOAD_IMAGE_CLASSES and background is None:
                background = self.inputs.get(str(inputs.get("image")))
                if background is not None:
                    width, height = clamp_size(*_image_size(background))
        batch = min(batch, MAX_IMAGES_PER_REQUEST)
        text = self._prompt_text(workflow, ids)
        seed = next((inputs[k] for n in ids
                     for inputs in [workflow[n].get("inputs") or {}]
                     for k in ("seed", "noise_seed") if isinstance(inputs.get(k), int)),
                    _derived_seed(json.dumps(workflow, sort_keys=True, default=str)))
        key = hashlib.sha256(json.dumps(workflow, sort_keys=True, default=str).encode())
        key_text = key.hexdigest()

        def render(index: int) -> bytes:
            footer = f"pipeline | {width}x{height} | seed {seed} | {index + 1}/{batch}"
            return render_placeholder(width=width, height=height, title="ComfyUI placeholder",
                                      text=text or "(no prompt)", footer=footer,
                                      key=f"{key_text}|{index}", background=background)

        per_image = (self.seconds_per_image if markers.sleep_seconds is None
                     else markers.sleep_seconds)
        images, interrupted = self.busy.run(batch, per_image, render)
        if interrupted:
            messages.append(["execution_interrupted", {"prompt_id": prompt_id, "node_id": None,
                                                       "node_type": None, "executed": []}])
            return self._entry(number, prompt_id, workflow, extra, {}, "error", messages)
        if markers.fail:
            node_id = _marker_node(workflow) or ids[0]
            messages.append(["execution_error", {
                "prompt_id": prompt_id, "node_id": node_id,
                "node_type": workflow[node_id]["class_type"], "executed": [],
                "exception_message": "the workflow asked the preview runtime to fail "
                                     "([preview:fail])",
                "exception_type": "PreviewFailure", "traceback": [],
                "current_inputs": {}, "current_outputs": {}}])
            return self._entry(number, prompt_id, workflow, extra, {}, "error", messages)
        outputs: dict[str, Any] = {}
        for node_id in ids:
            node = workflow[node_id]
            kind = OUTPUT_CLASSES.get(node["class_type"])
            if kind is None:
                continue
            prefix = str((node.get("inputs") or {}).get("filename_prefix") or "ComfyUI")
            if kind == "temp":
                prefix = "ComfyUI_temp_preview"
            saved = []
            for data in images:
                with self._state:
                    self._counter += 1
                    filename = f"{prefix.rsplit('/', 1)[-1]}_{self._counter:05}_.png"
                    self.outputs[(kind, filename)] = data
                    while len(self.outputs) > MAX_STORED_OUTPUTS:
                        self.outputs.popitem(last=False)
                saved.append({"filename": filename, "subfolder": "", "type": kind})
            outputs[node_id] = {"images": saved}
            messages.append(["executed", {"prompt_id": prompt_id, "node": node_id,
                                          "output": outputs[node_id]}])
        messages.append(["execution_success", {"prompt_id": prompt_id,
                                               "timestamp": int(time.time() * 1000)}])
        return self._entry(number, prompt_id, workflow, extra, outputs, "success", messages)

    @staticmethod
    def _prompt_text(workflow: dict[str, Any], ids: list[str]) -> str:
        """The positive prompt: the text node a sampler's ``positive`` links to, else the
        first text node."""
        for node_id in ids:
            positive = (workflow[node_id].get("inputs") or {}).get("positive")
            if isinstance(positive, list) and positive and str(positive[0]) in workflow:
                text = (workflow[str(positive[0])].get("inputs") or {}).get("text")
                if isinstance(text, str):
                    return text
        for node_id in ids:
            text = (workflow[node_id].get("inputs") or {}).get("text")
            if isinstance(text, str):
                return text
        return ""

    @staticmethod
    def _entry(number: int, prompt_id: str, workflow: dict[str, Any], extra: dict[str, Any],
               outputs: dict[str, Any], status: str, messages: list[Any]) -> dict[str, Any]:
        return {"prompt": [number, prompt_id, workflow, extra, list(outputs)],
                "outputs": outputs,
                "status": {"status_str": status, "completed": status == "success",
                           "messages": messages},
                "meta": {node: {"node_id": node, "display_node": node} for node in outputs}}

    # -- history, queue, files ---------------------------------------------------------------
    def _history(self, method: str, path: str, params: dict[str, str],
                 raw: bytes) -> tuple[int, Any, str]:
        if method == "POST" and path == "/history":
            try:
                body = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = {}
            with self._state:
                if isinstance(body, dict) and body.get("clear"):
                    self.history.clear()
                for prompt_id in (body.get("delete") or []) if isinstance(body, dict) else []:
                    self.history.pop(str(prompt_id), None)
            return 200, b"", "text/plain"
        if method != "GET":
            return 405, b"405: Method Not Allowed", "text/plain"
        with self._state:
            if path.startswith("/history/"):
                prompt_id = path[len("/history/"):]
                entry = self.history.get(prompt_id)
                return 200, ({prompt_id: entry} if entry else {}), "application/json"
            items = list(self.history.items())
        limit = _as_int(params.get("max_items"))
        if limit is not None and limit >= 0:
            items = items[-limit:] if limit else []
        return 200, dict(items), "application/json"

    def _view(self, params: dict[str, str]) -> bytes | None:
        kind = params.get("type", "output")
        name = params.get("filename", "")
        subfolder = params.get("subfolder", "")
        if kind == "input":
            return self.inputs.get(f"{subfolder}/{name}" if subfolder else name)
        return self.outputs.get((kind, name)) if not subfolder else None

    def _upload(self, raw: bytes, content_type: str) -> tuple[int, Any, str]:
        message = email.message_from_bytes(
            b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw,
            policy=email.policy.HTTP)
        fields: dict[str, tuple[str | None, bytes]] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str):
                    fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "image" not in fields or not fields["image"][0]:
            return 400, b"", "text/plain"
        filename = str(fields["image"][0]).replace("\\", "/").rsplit("/", 1)[-1]
        subfolder = fields.get("subfolder", (None, b""))[1].decode("utf-8", "replace").strip("/")
        if ".." in subfolder.split("/"):
            return 400, b"", "text/plain"
        overwrite = fields.get("overwrite", (None, b""))[1].decode().lower() in ("true", "1")
        data = fields["image"][1]
        with self._state:
            key = f"{subfolder}/{filename}" if subfolder else filename
            if key in self.inputs and not overwrite and self.inputs[key] != data:
                stem, dot, ext = filename.rpartition(".")
                index = 1
                while True:
                    candidate = f"{stem} ({index}).{ext}" if dot else f"{filename} ({index})"
                    key = f"{subfolder}/{candidate}" if subfolder else candidate
                    if key not in self.inputs:
                        filename = candidate
                        break
                    index += 1
            self.inputs[key] = data
            self.inputs.move_to_end(key)
            while len(self.inputs) > MAX_STORED_INPUTS:
                self.inputs.popitem(last=False)
        return 200, {"name": filename, "subfolder": subfolder, "type": "input"}, \
            "application/json"

    def _queue(self, method: str, raw: bytes) -> tuple[int, Any, str]:
        if method == "GET":
            with self._state:
                running = ([[self._running[1], self._running[0], {}, {}, []]]
                           if self._running else [])
                pending = [[n, p, {}, {}, []] for p, n, _, _ in self._pending]
            return 200, {"queue_running": running, "queue_pending": pending}, \
                "application/json"
        if method != "POST":
            return 405, b"405: Method Not Allowed", "text/plain"
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        with self._state:
            if isinstance(body, dict) and body.get("clear"):
                self._pending.clear()
            delete = set(map(str, body.get("delete") or [])) if isinstance(body, dict) else set()
            self._pending = [p for p in self._pending if p[0] not in delete]
        return 200, b"", "text/plain"


# --- HTTP -----------------------------------------------------------------------------------


@dataclass
class PreviewServer:
    """A preview runtime on ``127.0.0.1`` (``port=0``: a free port)."""

    runtime_type: str
    seconds_per_image: float = 1.0
    models: tuple[str, ...] = ()
    port: int = 0
    killer: AgentKiller = field(default_factory=lambda: AgentKiller(None, None))
    _server: LoopbackServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    webui: SdWebUiPreview | None = field(default=None, init=False, repr=False)
    comfy: ComfyUiPreview | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the preview runtime is not running; call start() first")
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> PreviewServer:
        if self.runtime_type not in RUNTIME_TYPES:
            raise ValueError(f"runtime_type must be one of {', '.join(RUNTIME_TYPES)} "
                             f"(got {self.runtime_type!r})")
        if self.runtime_type == "sdwebui":
            self.webui = SdWebUiPreview(seconds_per_image=self.seconds_per_image,
                                        models=self.models)
        else:
            self.comfy = ComfyUiPreview(seconds_per_image=self.seconds_per_image)
        outer = self

        class Handler(JsonHandler):
            extra_headers = HEADER

            def _serve(self) -> None:
                raw = self.read_body()
                if raw is None:
                    return
                parts = urlsplit(self.path)
                killed = outer.killer.check(self.command, parts.path, raw)
                if killed is not None:
                    self.send_json(500, {"error": "PreviewKilledAgent", "detail": killed,
                                         "body": "", "errors": killed})
                    return
                if outer.webui is not None:
                    status, body = outer.webui.handle(self.command, parts.path, raw)
                    self.send_json(status, body)
                    return
                assert outer.comfy is not None
                status, body, content_type = outer.comfy.handle(
                    self.command, parts.path, parts.query, raw,
                    self.headers.get("Content-Type", ""))
                if isinstance(body, bytes):
                    self.send_raw(status, body, content_type)
                else:
                    self.send_json(status, body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = LoopbackServer(self.port, Handler)
        self.port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,),
                                        name=f"preview-{self.runtime_type}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.comfy is not None:
            self.comfy.stop()
        if self.webui is not None:
            self.webui.busy.interrupt.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sdaas.local.preview",
        description=f"{LABEL}: placeholder images behind the SD WebUI or ComfyUI API subset.")
    parser.add_argument("--type", dest="runtime_type", choices=RUNTIME_TYPES, required=True)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seconds-per-image", type=float, default=1.0)
    parser.add_argument("--model", action="append", default=[],
                        help="a checkpoint the SD WebUI preview offers (repeatable; the first "
                             "is loaded)")
    parser.add_argument("--ready-file", help="write {pid, port, url} here once listening")
    parser.add_argument("--agent-pid-file",
                        help="the file holding the pid of the queue agent [preview:kill-agent] "
                             "kills (only a process of this local stack)")
    args = parser.parse_args(argv)
    if args.seconds_per_image < 0:
        parser.error("--seconds-per-image must be >= 0")
    killer = AgentKiller(Path(args.agent_pid_file) if args.agent_pid_file else None,
                         os.environ.get(INSTANCE_ENV))
    server = PreviewServer(args.runtime_type, seconds_per_image=args.seconds_per_image,
                           models=tuple(args.model), port=args.port, killer=killer).start()
    print(f"{LABEL}: {args.runtime_type} API subset on {server.url} "
          f"({args.seconds_per_image}s per image)", flush=True)
    write_ready_file(args.ready_file, port=server.port, url=server.url)
    serve_until_signalled(server.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
