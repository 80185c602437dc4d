"""Plumbing shared by the local-mode services: a loopback JSON HTTP server and the child
process protocol (bind, write a ready file, serve until SIGTERM).

Each service of ``make local`` (the emulator, the API adapter, the preview runtimes) runs as
a child process of the orchestrator. It binds ``127.0.0.1`` on the port it is given (``0``: a
free one), then writes ``{"port": ..., "pid": ...}`` atomically to the ready file the
orchestrator waits for, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server that only ever binds loopback and keeps quiet about clients
    hanging up (timeouts and size caps on the client side are normal)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((LOOPBACK, port), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, socket.timeout)):
            super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """Request plumbing for small JSON APIs: body reading, JSON and raw answers."""

    protocol_version = "HTTP/1.1"
    server_version = "sd-local"
    max_body_bytes = 64 * 1024 * 1024
    extra_headers: dict[str, str] = {}  # noqa: RUF012 - class-level constant per service

    def read_body(self) -> bytes | None:
        """The request body, or None (after answering 413) when it is too large."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body_bytes:
            self.send_raw(413, b"request body too large", "text/plain")
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, json.dumps(body).encode(), "application/json", headers)

    def send_raw(self, status: int, data: bytes, content_type: str | None,
                 headers: dict[str, str] | None = None) -> None:
        """Send ``data``; ``content_type`` None sends none (an empty answer, as aiohttp)."""
        try:
            self.send_response(status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in {**self.extra_headers, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


def write_ready_file(path: Path | str | None, **info: Any) -> None:
    """Tell the orchestrator this service is up: ``{"pid": ..., **info}``, written atomically."""
    if path is None:
        return
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), **info}))
    temporary.replace(target)


def serve_until_signalled(stop: Callable[[], None]) -> None:
    """Block the main thread until SIGTERM/SIGINT/SIGHUP, then call ``stop``."""
    done = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    while not done.wait(0.5):
        pass
    stop()
