"""Image bytes: format sniffing, decoding checks and base64 helpers."""

from __future__ import annotations

import base64
import binascii
import io
import re

from PIL import Image, UnidentifiedImageError

from agent.errors import PermanentError

# (extension, content type) by leading bytes; the output layout allows exactly these.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpeg", "image/jpeg"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)
_DATA_URI = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,", re.ASCII)


def sniff(data: bytes) -> tuple[str, str]:
    """Return ``(extension, content type)`` from the bytes themselves."""
    for signature, ext, content_type in _SIGNATURES:
        if data.startswith(signature):
            return ext, content_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp"
    return "bin", "application/octet-stream"


def check_image(data: bytes, max_pixels: int) -> str:
    """Check that the bytes are a well-formed image of a sane size; return its format.

    Raises :class:`PermanentError` otherwise (a corrupt or huge image will not get better).
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = img.format or "unknown"
            if width * height > max_pixels:
                raise PermanentError(
                    "input_refused",
                    f"input image is {width}x{height} pixels, above the limit of {max_pixels}",
                )
            img.verify()
    except PermanentError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise PermanentError("input_refused", f"input is not a decodable image: {exc}") from exc
    return fmt.lower()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode base64 image data as runtimes return it, with or without a data URI prefix."""
    payload = _DATA_URI.sub("", text, count=1)
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"runtime returned an image that is not base64: {exc}") from exc
