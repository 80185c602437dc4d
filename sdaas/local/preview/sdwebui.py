"""The SD WebUI preview: the AUTOMATIC1111 API subset the queue agent uses, answering with
placeholder images (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from sdaas.local.preview.drawing import (
    LABEL,
    clamp_size,
    derived_seed,
    image_size,
    render_placeholder,
)
from sdaas.local.preview.markers import Markers, markers_in

DEFAULT_MODEL = "preview-placeholder.safetensors"
MAX_IMAGES_PER_REQUEST = 100


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
            seed = derived_seed(request_key)
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
        width, height = image_size(raw)
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


