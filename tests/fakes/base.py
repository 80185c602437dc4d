"""A threaded loopback HTTP server with fault switches, shared by the fakes."""

from __future__ import annotations

import io
import json
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

LOOPBACK = "127.0.0.1"
MAX_HANG_SECONDS = 60.0  # a hung request still ends by itself


@dataclass
class Fault:
    """What the next matching request(s) do instead of their normal work."""

    path: str  # a path prefix to match ("" matches all)
    kind: str  # "status" | "hang" | "crash" | "delay"
    times: int = 1
    status: int = 500
    body: Any = None
    seconds: float = 0.0  # delay, or how long a crashed server stays down


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        self.method = handler.command
        self.path = handler.path.split("?", 1)[0]
        self.query = handler.path.split("?", 1)[1] if "?" in handler.path else ""
        self.headers = handler.headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Response:
    def __init__(self, status: int = 200, body: Any = None, raw: bytes | None = None,
                 content_type: str | None = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.raw = raw if raw is not None else json.dumps(body).encode()
        self.content_type = content_type
        self.headers = headers or {}


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        self.open_connections.add(conn)
        return conn, address

    def shutdown_request(self, request: Any) -> None:
        self.open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a size cap, a timeout) are normal here, not errors."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Close every open connection, as a dying process does."""
        for conn in list(self.open_connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeServer:
    """Subclasses implement :meth:`handle`; faults are applied before it."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, ssl_context: Any = None) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._server: _Server | None = None
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.arrivals: list[tuple[float, str]] = []  # (time.time(), path) of each request
        self.release = threading.Event()  # set to end hung requests
        self.delay_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> FakeServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer._dispatch(self, Request(self, body))

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = _Server((self.host, self.port), Handler)
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,),
                         name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()

    def die(self, down_seconds: float | None = None) -> None:
        """Stop listening (connection refused); come back after ``down_seconds`` if given."""
        self.stop()
        if down_seconds is not None:
            timer = threading.Timer(down_seconds, self.start)
            timer.daemon = True
            timer.start()

    @property
    def alive(self) -> bool:
        return self._server is not None

    # -- faults ------------------------------------------------------------------------------
    def fail_next(self, path: str, status: int, body: Any = None, times: int = 1) -> None:
        self._add(Fault(path, "status", times, status, body))

    def hang_next(self, path: str, times: int = 1) -> None:
        self._add(Fault(path, "hang", times))

    def crash_next(self, path: str, down_seconds: float = 1.0, times: int = 1) -> None:
        """Drop the connection mid-request and refuse connections for ``down_seconds``."""
        self._add(Fault(path, "crash", times, seconds=down_seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def fault_paths(self) -> tuple[str, ...]:
        """Paths where faults apply (generation endpoints); others always answer."""
        return ("",)

    # -- dispatch ----------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler, request: Request) -> None:
        with self._lock:
            self.requests.append((request.method, request.path))
            self.arrivals.append((time.time(), request.path))
        fault = None
        if any(request.path.startswith(p) for p in self.fault_paths()):
            fault = self._take_fault(request.path)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if fault is not None and fault.kind == "crash":
            time.sleep(0.2)  # "mid-task"
            self._abort(handler)
            self.die(fault.seconds)
            return
        if fault is not None and fault.kind == "hang":
            self.on_hang(request)
            self.release.wait(MAX_HANG_SECONDS)
            self._abort(handler)
            return
        if fault is not None and fault.kind == "status":
            response = Response(fault.status, fault.body if fault.body is not None
                                else self.default_error(fault.status))
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # a fake's bug shows as a 500 like the real servers
                response = Response(500, {"error": type(exc).__name__, "detail": str(exc)})
        self._send(handler, response)

    def on_hang(self, request: Request) -> None:
        """Called when a request starts hanging (subclasses record it)."""

    @staticmethod
    def _abort(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
        try:
            handler.send_response(response.status)
            if response.content_type is not None:  # an empty answer may carry none
                handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.raw)))
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.raw)
        except OSError:
            pass

    def default_error(self, status: int) -> Any:
        return {"error": "fault", "detail": f"injected {status}"}

    def handle(self, request: Request) -> Response:
        raise NotImplementedError


def render_png(key: str, width: int, height: int, noise: bool = False) -> bytes:
    """A deterministic PNG for ``key``: same key and size, same bytes."""
    rng = random.Random(key)  # noqa: S311 - test pixels, not secrets
    if noise:
        img = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    else:
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        img = Image.new("RGB", (width, height), color)
        for _ in range(8):
            x, y = rng.randrange(width), rng.randrange(height)
            img.putpixel((x, y), (255 - color[0], 255 - color[1], 255 - color[2]))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()
