"""Image and video bytes: format sniffing, decoding checks and base64 helpers."""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from agent.errors import PermanentError

# (extension, content type) of still-image formats by leading bytes.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpeg", "image/jpeg"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)
_DATA_URI = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,", re.ASCII)
_EBML = b"\x1a\x45\xdf\xa3"
_QUICKTIME_BRANDS = (b"qt  ",)


@dataclass(frozen=True)
class MediaType:
    """What output bytes are: the key extension, the content type, animated or not."""

    ext: str
    content_type: str
    animated: bool = False

    @property
    def kind(self) -> str:
        """``video`` or ``image`` (the output key's prefix)."""
        return "video" if self.content_type.startswith("video/") else "image"


UNKNOWN_MEDIA = MediaType("bin", "application/octet-stream")
STORED_FORMATS = "png, jpeg, gif, webp (still or animated), webm, mkv, mp4, mov"


def media_type(data: bytes) -> MediaType | None:
    """The format of output bytes (images, animated images, videos), or None if unknown."""
    for signature, ext, content_type in _SIGNATURES:
        if data.startswith(signature):
            return MediaType(ext, content_type, ext == "png" and _is_apng(data))
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        # An extended WebP (VP8X) says in its flags whether it holds an animation.
        animated = data[12:16] == b"VP8X" and len(data) > 20 and bool(data[20] & 0x02)
        return MediaType("webp", "image/webp", animated)
    if data.startswith(_EBML):
        if b"webm" in data[:64]:
            return MediaType("webm", "video/webm", True)
        if b"matroska" in data[:64]:
            return MediaType("mkv", "video/x-matroska", True)
    if len(data) >= 12 and data[4:8] == b"ftyp":
        if data[8:12] in _QUICKTIME_BRANDS:
            return MediaType("mov", "video/quicktime", True)
        return MediaType("mp4", "video/mp4", True)
    return None


def _is_apng(data: bytes) -> bool:
    """An animated PNG has an ``acTL`` chunk before its first ``IDAT``."""
    idat = data.find(b"IDAT")
    return b"acTL" in data[: idat if idat >= 0 else len(data)]


def sniff(data: bytes) -> tuple[str, str]:
    """Return ``(extension, content type)`` of an image from the bytes themselves."""
    media = media_type(data) or UNKNOWN_MEDIA
    if media.kind != "image":
        media = UNKNOWN_MEDIA
    return media.ext, media.content_type


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
