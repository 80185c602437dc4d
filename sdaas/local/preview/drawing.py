"""Placeholder pictures: a gradient (or the input image) with a banner saying what it is."""

from __future__ import annotations

import hashlib
import io
import textwrap
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

LABEL = "PREVIEW - not a model"
MAX_SIDE = 2048  # larger requests are drawn at this size (and say so in their info)
MIN_SIDE = 8


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _colors(key: str) -> list[tuple[int, int, int]]:
    digest = hashlib.sha256(key.encode()).digest()
    return [(digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 12, 3)]


def clamp_size(width: Any, height: Any, minimum: int = MIN_SIDE) -> tuple[int, int]:
    def one(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 512
        return max(minimum, min(MAX_SIDE, number))

    return one(width), one(height)


def image_size(raw: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(raw)) as image:
        return image.size


def draw_placeholder(*, width: int, height: int, title: str, text: str, footer: str, key: str,
                     background: bytes | None = None,
                     fill: tuple[int, int, int] | None = None) -> Image.Image:
    """A labelled placeholder picture (RGB): over ``background`` (image bytes, resized), a
    solid ``fill`` colour, or else a gradient chosen by ``key``. Deterministic."""
    base: Image.Image | None = None
    if fill is not None:
        base = Image.new("RGB", (width, height), fill)
    elif background is not None:
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
    return Image.alpha_composite(image, overlay).convert("RGB")


def render_placeholder(*, width: int, height: int, title: str, text: str, footer: str,
                       key: str, background: bytes | None = None,
                       fill: tuple[int, int, int] | None = None,
                       text_chunks: dict[str, str] | None = None) -> bytes:
    """A labelled placeholder PNG (size clamped to MIN_SIDE..MAX_SIDE); its ``parameters``
    text chunk says what it is. The same arguments always give the same bytes."""
    width, height = clamp_size(width, height)
    picture = draw_placeholder(width=width, height=height, title=title, text=text,
                               footer=footer, key=key, background=background, fill=fill)
    return png_bytes(picture, {**(text_chunks or {}), "parameters": (
        f"{text}\n{footer}\n{LABEL}: placeholder from the preview runtime")})


def png_bytes(picture: Image.Image, text_chunks: dict[str, str] | None = None,
              compress_level: int = 1) -> bytes:
    info = PngImagePlugin.PngInfo()
    for name, value in (text_chunks or {}).items():
        info.add_text(name, value)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def derived_seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 4294967295

