"""Health endpoints for the kubelet: ``/healthz`` (live) and ``/readyz`` (ready)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent import logs


class HealthServer:
    """Answers ``/healthz`` while the agent's threads are alive and ``/readyz`` once the
    runtime answers (and until shutdown starts)."""

    def __init__(self, port: int, live: Callable[[], bool], ready: Callable[[], bool],
                 host: str = "0.0.0.0") -> None:  # noqa: S104 - the kubelet probes the pod IP
        self._live = live
        self._ready = ready
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                checks = {"/healthz": outer._live, "/readyz": outer._ready}
                check = checks.get(self.path.split("?", 1)[0])
                if check is None:
                    self._answer(404, {"error": "not found"})
                    return
                ok = bool(check())
                self._answer(200 if ok else 503, {"ok": ok})

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll interval so that stop() (at shutdown) returns quickly.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logs.event("health_server_started", port=self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
