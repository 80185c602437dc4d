"""A fake image host on loopback: the "internet" that task inputs point at in tests.

Used both as a source that must be REFUSED by default (it listens on a loopback address)
and, with an explicit allow list in the agent's test configuration, as one that works.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from tests.fakes.base import FakeServer, Request, Response, render_png


class FakeImageHost(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.png = render_png("input-image", 24, 24)

    def fault_paths(self) -> tuple[str, ...]:
        return ("/",)

    def hits(self, path: str | None = None) -> int:
        return sum(1 for _, p in self.requests if path is None or p == path)

    def handle(self, request: Request) -> Response:
        query = {k: v[0] for k, v in parse_qs(request.query).items()}
        path = request.path
        if path.startswith("/img") and path.endswith(".png"):
            return Response(200, raw=self.png, content_type="image/png")
        if path == "/redirect":
            return Response(302, raw=b"", headers={"Location": query["to"]})
        if path == "/huge":
            size = int(query.get("bytes", 30 * 1024 * 1024))
            return Response(200, raw=self.png + b"\0" * (size - len(self.png)),
                            content_type="image/png")
        if path == "/text":
            return Response(200, raw=b"this is not an image", content_type="image/png")
        if path == "/unavailable":
            return Response(503, raw=b"busy", content_type="text/plain")
        return Response(404, raw=b"not found", content_type="text/plain")
