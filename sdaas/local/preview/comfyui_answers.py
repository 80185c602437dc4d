"""What the preview ComfyUI answers, as aiohttp sends ComfyUI's answers: JSON with a
charset, empty 200s without a content type, bare text for 404, 405 and 500."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Answer:
        return cls(status, json.dumps(value).encode(), JSON)


EMPTY = Answer(200)
SERVER_FAILURE = Answer(500, b"500 Internal Server Error\n\nServer got itself in trouble", TEXT)
NOT_FOUND = Answer(404, b"404: Not Found", TEXT)
NOT_ALLOWED = Answer(405, b"405: Method Not Allowed", TEXT)
