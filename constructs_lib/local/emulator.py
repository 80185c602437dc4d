"""A local AWS emulator: moto's server on loopback, with our fixes for known moto bugs.

Used by the test suite, by ``make local`` and by the benchmarks. moto is a development
dependency; nothing in the deployed system imports this module.

Every fix applied to moto lives in :func:`apply_moto_fixes`, each with the reason, so the
workarounds stay visible and removable once moto fixes the bug upstream.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's documented dummy credentials
    "AWS_SESSION_TOKEN": "testing",
}

_fixes_applied = False
_fixes_lock = threading.Lock()


def apply_moto_fixes() -> list[str]:
    """Patch moto (in this process) for the bugs that break a no-drift Terraform plan.

    Returns the names of the fixes applied, so callers can log them.
    """
    global _fixes_applied  # noqa: PLW0603 - process-wide, idempotent patching
    with _fixes_lock:
        if _fixes_applied:
            return list(_APPLIED)
        for fix in _FIXES:
            fix()
            _APPLIED.append(fix.__name__)
        _fixes_applied = True
        return list(_APPLIED)


_APPLIED: list[str] = []
_FIXES: list[Any] = []


class _LatencyMiddleware:
    """Delays every request by a fixed time, to stand in for real AWS round trips."""

    def __init__(self, app: Any, latency_seconds: float) -> None:
        self._app = app
        self._latency = latency_seconds

    def __call__(self, environ: dict, start_response: Any) -> Any:
        time.sleep(self._latency)
        return self._app(environ, start_response)


@dataclass
class Emulator:
    """moto's server on a loopback port, started in a background thread of this process.

    ``Emulator().start()`` picks a free port; ``endpoint`` is the URL to give to boto3
    (``endpoint_url``), to the agent (``AWS_ENDPOINT_URL``) and to Terraform's provider
    ``endpoints``. ``latency_seconds`` adds a fixed delay to every call (benchmarks).
    ``wrap_app`` wraps the WSGI application (for example to inject faults in tests);
    ``log_requests=False`` silences the per-request log lines.
    """

    host: str = LOOPBACK
    port: int = 0
    latency_seconds: float = 0.0
    wrap_app: Any = None
    log_requests: bool = True
    _server: Any = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - dev-only, heavy
            DomainDispatcherApplication,
            create_backend_app,
        )
        from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: PLC0415

        apply_moto_fixes()
        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.wrap_app is not None:
            app = self.wrap_app(app)
        if self.latency_seconds > 0:
            app = _LatencyMiddleware(app, self.latency_seconds)
        handler: Any = WSGIRequestHandler
        if not self.log_requests:

            class _QuietHandler(WSGIRequestHandler):
                def log_request(self, *args: Any, **kwargs: Any) -> None:
                    return

            handler = _QuietHandler
        self._server = make_server(self.host, self.port, app, threaded=True,
                                   request_handler=handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        return self

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        import requests  # noqa: PLC0415

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
