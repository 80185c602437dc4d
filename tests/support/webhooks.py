"""A webhook receiver on loopback and the verifier docs/contracts.md prints (extracted from
the doc, so the tests verify deliveries with exactly the code receivers copy)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


def documented_verifier() -> Any:
    """``verify_webhook`` exactly as docs/contracts.md prints it."""
    text = DOCS.read_text()
    found = re.search(r"<!-- webhook-verifier -->\n```python\n(.*?)```", text, re.S)
    assert found, "docs/contracts.md lost its webhook verifier block"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 - our own doc
    return namespace["verify_webhook"]


verify_webhook = documented_verifier()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 answering ``statuses`` in turn (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [204])
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    tls: Any = None  # an ssl.SSLContext to serve HTTPS

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                status = (receiver.statuses.pop(0) if len(receiver.statuses) > 1
                          else receiver.statuses[0])
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}/hooks/sd?token=abc"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


