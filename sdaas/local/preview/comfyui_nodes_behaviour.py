"""What each node class of the preview ComfyUI does, at the level of shapes.

``evaluate`` computes a node's outputs from its inputs (pure: sizes, batch counts, the text
and seed a picture shows) and raises what the real node would raise for the same inputs;
``save`` writes an output node's files and returns its ``ui`` answer, named and shaped as
ComfyUI 0.3.64 names and shapes them (``<prefix>_<counter>_.png``, a subfolder taken from
the prefix, ``animated`` for WebP, APNG and WebM outputs, ``temp`` files for PreviewImage).
A class the preview does not know passes its first linked input through.
"""

from __future__ import annotations

import hashlib
import posixpath
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdaas.local.preview.comfyui_media import (
    Frames,
    animated_png,
    animated_webp,
    image_frames,
    pictures,
    png_file,
    webm_file,
)

SAMPLERS = ("KSampler", "KSamplerAdvanced")  # interruptible while they run, as in ComfyUI
TITLE = "ComfyUI placeholder"
_TEMP_LETTERS = "abcdefghijklmnopqrstupvxyz"  # sic, as ComfyUI's PreviewImage
_ROOT = "/comfyui-output"


class NodeFailure(Exception):
    """A node failed at run time; ``type_name`` is what ComfyUI reports as exception_type."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


@dataclass
class SaveContext:
    """What output nodes need: the prompt for the metadata, and the file store."""

    prompt: dict[str, Any] | None  # None: --disable-metadata
    write: Callable[[str, str, str, bytes], None]  # (type, subfolder, filename, data)
    next_counter: Callable[[str, str, str], int]  # (type, subfolder, filename prefix)
    read_input: Callable[[str], bytes | None]
    temp_prefix: Callable[[str], str]  # PreviewImage's random name part, kept per node


def evaluate(class_type: str, inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    """The node's outputs (a tuple, one item per return type)."""
    handler = _EVALUATE.get(class_type)
    if handler is None:
        first = next((v for v in inputs.values() if isinstance(v, Frames)), None)
        return (first if first is not None else Frames(512, 512, key=class_type),) * 8
    return handler(inputs, ctx)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _checkpoint(inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    name = str(inputs.get("ckpt_name"))
    return (f"model:{name}", f"clip:{name}", f"vae:{name}")


def _sample(inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    latent = inputs["latent_image"]
    seed = inputs.get("seed", inputs.get("noise_seed", 0))
    step = f"sample|{seed}|{inputs.get('steps')}|{inputs.get('cfg')}|{inputs.get('sampler_name')}"
    return (latent.derive(step, text=_text(inputs.get("positive")), seed=int(seed), fill=None),)


def _scale(inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    image: Frames = inputs["image"]
    width, height = int(inputs["width"]), int(inputs["height"])
    if width == 0 and height == 0:
        return (image,)
    if width == 0:
        width = max(1, round(image.width * height / image.height))
    elif height == 0:
        height = max(1, round(image.height * width / image.width))
    return (image.derive(f"scale|{width}x{height}", width=width, height=height),)


def _scale_by(inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    image: Frames = inputs["image"]
    factor = float(inputs["scale_by"])
    width, height = round(image.width * factor), round(image.height * factor)
    return (image.derive(f"scale|{width}x{height}", width=width, height=height),)


def _load(inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    name = str(inputs["image"])
    data = ctx.read_input(name)
    if data is None:
        raise NodeFailure("FileNotFoundError", f"[Errno 2] No such file or directory: '{name}'")
    return image_frames(data, f"load|{hashlib.sha256(data).hexdigest()}")


def _invert(inputs: dict[str, Any], ctx: SaveContext) -> tuple[Any, ...]:
    image: Frames = inputs["image"]
    return (image.derive("invert", fill=None if image.fill is None else 0xFFFFFF ^ image.fill),)


_EVALUATE: dict[str, Callable[[dict[str, Any], SaveContext], tuple[Any, ...]]] = {
    "CheckpointLoaderSimple": _checkpoint,
    "CLIPTextEncode": lambda i, c: (_text(i.get("text")),),
    "EmptyLatentImage": lambda i, c: (Frames(
        int(i["width"]), int(i["height"]), int(i["batch_size"]),
        key=f"latent|{i['width']}x{i['height']}"),),
    "KSampler": _sample,
    "KSamplerAdvanced": _sample,
    "VAEDecode": lambda i, c: (i["samples"].derive("decode"),),
    "VAEEncode": lambda i, c: (i["pixels"].derive("encode"),),
    "EmptyImage": lambda i, c: (Frames(
        int(i["width"]), int(i["height"]), int(i["batch_size"]),
        key=f"empty|{i['width']}x{i['height']}|{i['color']}", fill=int(i["color"])),),
    "LoadImage": _load,
    "LoadImageMask": lambda i, c: (_load(i, c)[1],),
    "ImageInvert": _invert,
    "ImageBlur": lambda i, c: (i["image"].derive(f"blur|{i['blur_radius']}|{i['sigma']}"),),
    "ImageScale": _scale,
    "ImageScaleBy": _scale_by,
}


# --- output nodes -------------------------------------------------------------------------


def save_path(prefix: str, frames: Frames) -> tuple[str, str]:
    """(subfolder, file name stem) of a ``filename_prefix``, as folder_paths does it."""
    if "%" in prefix:
        prefix = prefix.replace("%width%", str(frames.width)).replace(
            "%height%", str(frames.height))
    normalized = posixpath.normpath(prefix)
    subfolder, name = posixpath.dirname(normalized), posixpath.basename(normalized)
    full = posixpath.normpath(posixpath.join(_ROOT, subfolder))
    if posixpath.commonpath((_ROOT, full)) != _ROOT:
        raise NodeFailure("Exception", "**** ERROR: Saving image outside the output folder is "
                                       "not allowed.")
    return subfolder, name


def temp_prefix() -> str:
    """PreviewImage's file prefix: ``ComfyUI_temp_`` and five random letters."""
    return "ComfyUI_temp_" + "".join(random.choice(_TEMP_LETTERS)  # noqa: S311
                                     for _ in range(5))


def save(class_type: str, inputs: dict[str, Any], ctx: SaveContext,
         node_id: str) -> dict[str, Any]:
    """Write the output node's files; its ``ui`` answer."""
    images: Frames = next((v for v in inputs.values() if isinstance(v, Frames)),
                          Frames(512, 512, key=class_type))
    kind, prefix, compress = "output", str(inputs.get("filename_prefix", "ComfyUI")), 4
    if class_type == "PreviewImage" or (class_type not in _SAVERS
                                        and class_type.startswith("Preview")):
        kind, compress = "temp", 1
        prefix = ctx.temp_prefix(node_id)
    subfolder, stem = save_path(prefix, images)
    counter = ctx.next_counter(kind, subfolder, stem)
    saver = _SAVERS.get(class_type)
    if saver is not None:
        return saver(inputs, images, ctx, subfolder, stem, counter)
    results = []
    for index, picture in enumerate(pictures(images, TITLE)):
        name = f"{stem}_{counter + index:05}_.png"
        ctx.write(kind, subfolder, name, png_file(picture, ctx.prompt, compress))
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
    return {"images": results}


def _webp(inputs: dict[str, Any], images: Frames, ctx: SaveContext, subfolder: str, stem: str,
          counter: int) -> dict[str, Any]:
    name = f"{stem}_{counter:05}_.webp"
    ctx.write("output", subfolder, name, animated_webp(
        pictures(images, TITLE), ctx.prompt, float(inputs["fps"]), bool(inputs["lossless"]),
        int(inputs["quality"])))
    return {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}],
            "animated": [images.count != 1]}


def _apng(inputs: dict[str, Any], images: Frames, ctx: SaveContext, subfolder: str, stem: str,
          counter: int) -> dict[str, Any]:
    name = f"{stem}_{counter:05}_.png"
    ctx.write("output", subfolder, name, animated_png(
        pictures(images, TITLE), ctx.prompt, float(inputs["fps"]),
        int(inputs["compress_level"])))
    return {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}],
            "animated": [True]}


def _webm(inputs: dict[str, Any], images: Frames, ctx: SaveContext, subfolder: str, stem: str,
          counter: int) -> dict[str, Any]:
    codec = inputs.get("codec")
    if codec not in ("vp9", "av1"):
        raise NodeFailure("KeyError", repr(codec))
    name = f"{stem}_{counter:05}_.webm"
    ctx.write("output", subfolder, name, webm_file(images, ctx.prompt, float(inputs["fps"])))
    return {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}],
            "animated": [True]}


_SAVERS: dict[str, Callable[..., dict[str, Any]]] = {
    "SaveAnimatedWEBP": _webp,
    "SaveAnimatedPNG": _apng,
    "SaveWEBM": _webm,
}
