"""What the preview ComfyUI's nodes hand each other (shapes, not pixels) and the files its
output nodes write: PNG (with the workflow in a ``prompt`` text chunk, as ComfyUI does unless
``--disable-metadata``), animated WebP and PNG, and WebM."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image, PngImagePlugin

from sdaas.local.preview.drawing import LABEL, MAX_SIDE, draw_placeholder

# /view answers with the type of the file name (ComfyUI: mimetypes, plus .webp registered).
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp", ".gif": "image/gif", ".webm": "video/webm",
                 ".mp4": "video/mp4", ".json": "application/json"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tiff", ".tif")
MAX_FRAMES = 64  # frames drawn per file; a bigger batch is drawn as its first MAX_FRAMES


@dataclass(frozen=True)
class Frames:
    """A batch of pictures (IMAGE, LATENT or MASK) as the preview tracks it."""

    width: int
    height: int
    count: int = 1
    key: str = ""  # what the pixels depend on (a picture is drawn from it)
    text: str = ""  # the prompt the picture shows
    seed: int | None = None
    fill: int | None = None  # EmptyImage colour (0xRRGGBB)
    background: bytes | None = None  # an input image

    def derive(self, step: str, **changes: Any) -> Frames:
        return replace(self, key=f"{self.key}|{step}", **changes)


def content_type(filename: str) -> str:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def _fill(color: int | None) -> tuple[int, int, int] | None:
    if color is None:
        return None
    return ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)


def pictures(frames: Frames, title: str) -> list[Image.Image]:
    """The batch drawn as labelled placeholders (identical frames when nothing varies)."""
    width, height = max(1, min(MAX_SIDE, frames.width)), max(1, min(MAX_SIDE, frames.height))
    drawn: list[Image.Image] = []
    for index in range(min(frames.count, MAX_FRAMES)):
        varies = frames.seed is not None
        footer = f"{width}x{height}" + (f" | seed {frames.seed + index}" if varies else "")
        drawn.append(draw_placeholder(
            width=width, height=height, title=title, text=frames.text or "(no prompt)",
            footer=footer, key=f"{frames.key}|{index}" if varies else frames.key,
            background=frames.background, fill=_fill(frames.fill)))
    return drawn


def png_file(picture: Image.Image, prompt: dict[str, Any] | None, compress_level: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    info.add_text("parameters", f"{LABEL}: placeholder from the preview runtime")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def animated_webp(drawn: list[Image.Image], prompt: dict[str, Any] | None, fps: float,
                  lossless: bool, quality: int) -> bytes:
    exif = drawn[0].getexif()
    if prompt is not None:
        exif[0x0110] = f"prompt:{json.dumps(prompt)}"
    buffer = io.BytesIO()
    drawn[0].save(buffer, format="WEBP", save_all=True, append_images=drawn[1:],
                  duration=int(1000.0 / fps), exif=exif, lossless=lossless, quality=quality)
    return buffer.getvalue()


def animated_png(drawn: list[Image.Image], prompt: dict[str, Any] | None, fps: float,
                 compress_level: int) -> bytes:
    info = None
    if prompt is not None:
        info = PngImagePlugin.PngInfo()
        info.add(b"comf", b"prompt\0" + json.dumps(prompt).encode("latin-1", "replace"),
                 after_idat=True)
    buffer = io.BytesIO()
    drawn[0].save(buffer, format="PNG", save_all=True, append_images=drawn[1:],
                  duration=int(1000.0 / fps), pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def _ebml(element_id: int, payload: bytes) -> bytes:
    size = len(payload)
    head = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    length = bytes([0x80 | size]) if size < 0x7F else (0x01 << 56 | size).to_bytes(8, "big")
    return head + length + payload


def webm_file(frames: Frames, prompt: dict[str, Any] | None, fps: float) -> bytes:
    """A WebM container (EBML header, segment info, one video track description, tags) that
    holds no encoded frames: the preview draws no video. Players show nothing."""
    header = _ebml(0x1A45DFA3, b"".join([
        _ebml(0x4286, b"\x01"), _ebml(0x42F7, b"\x01"), _ebml(0x42F2, b"\x04"),
        _ebml(0x42F3, b"\x08"), _ebml(0x4282, b"webm"), _ebml(0x4287, b"\x04"),
        _ebml(0x4285, b"\x02")]))
    info = _ebml(0x1549A966, b"".join([
        _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big")),
        _ebml(0x4D80, b"sd-async-eks preview"), _ebml(0x5741, b"sd-async-eks preview"),
        _ebml(0x7BA9, f"{LABEL}: {frames.count} frames at {fps} fps".encode())]))
    video = _ebml(0xE0, _ebml(0xB0, struct.pack(">H", frames.width))
                  + _ebml(0xBA, struct.pack(">H", frames.height)))
    tracks = _ebml(0x1654AE6B, _ebml(0xAE, _ebml(0xD7, b"\x01") + _ebml(0x83, b"\x01")
                                     + _ebml(0x86, b"V_VP9") + video))
    tags = b""
    if prompt is not None:
        simple = _ebml(0x67C8, _ebml(0x45A3, b"PROMPT") + _ebml(0x4487, json.dumps(
            prompt).encode()))
        tags = _ebml(0x1254C367, _ebml(0x7373, _ebml(0x63C0, b"") + simple))
    return header + _ebml(0x18538067, info + tracks + tags)


def image_frames(data: bytes, key: str) -> tuple[Frames, Frames]:
    """(IMAGE, MASK) of an input image, as LoadImage reads it."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        count = int(getattr(image, "n_frames", 1))
    frames = Frames(width=width, height=height, count=count, key=key, background=data)
    return frames, frames.derive("mask", background=None)
