"""The preview runtime as an HTTP server on loopback, and its command line."""

from __future__ import annotations

import argparse
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sdaas.local._serve import (
    JsonHandler,
    LoopbackServer,
    serve_until_signalled,
    write_ready_file,
)
from sdaas.local.agent_kill import AgentKiller
from sdaas.local.environment import INSTANCE_ENV
from sdaas.local.preview.comfyui import ComfyUiPreview
from sdaas.local.preview.drawing import LABEL
from sdaas.local.preview.sdwebui import SdWebUiPreview

HEADER = {"X-Preview-Runtime": "placeholder images, not a model"}
RUNTIME_TYPES = ("sdwebui", "comfyui")


@dataclass
class PreviewServer:
    """A preview runtime on ``127.0.0.1`` (``port=0``: a free port)."""

    runtime_type: str
    seconds_per_image: float = 1.0
    models: tuple[str, ...] = ()
    port: int = 0
    disable_metadata: bool = False
    killer: AgentKiller = field(default_factory=lambda: AgentKiller(None, None))
    _server: LoopbackServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    webui: SdWebUiPreview | None = field(default=None, init=False, repr=False)
    comfy: ComfyUiPreview | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the preview runtime is not running; call start() first")
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> PreviewServer:
        if self.runtime_type not in RUNTIME_TYPES:
            raise ValueError(f"runtime_type must be one of {', '.join(RUNTIME_TYPES)} "
                             f"(got {self.runtime_type!r})")
        if self.runtime_type == "sdwebui":
            self.webui = SdWebUiPreview(seconds_per_image=self.seconds_per_image,
                                        models=self.models)
        else:
            self.comfy = ComfyUiPreview(seconds_per_image=self.seconds_per_image,
                                        disable_metadata=self.disable_metadata)
        outer = self

        class Handler(JsonHandler):
            extra_headers = HEADER

            def _serve(self) -> None:
                raw = self.read_body()
                if raw is None:
                    return
                parts = urlsplit(self.path)
                killed = outer.killer.check(self.command, parts.path, raw)
                if killed is not None:
                    self.send_json(500, {"error": "PreviewKilledAgent", "detail": killed,
                                         "body": "", "errors": killed})
                    return
                if outer.webui is not None:
                    status, body = outer.webui.handle(self.command, parts.path, raw)
                    self.send_json(status, body)
                    return
                assert outer.comfy is not None
                answer = outer.comfy.handle(self.command, parts.path, parts.query, raw,
                                            self.headers.get("Content-Type", ""))
                self.send_raw(answer.status, answer.body, answer.content_type, answer.headers)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = LoopbackServer(self.port, Handler)
        self.port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,),
                                        name=f"preview-{self.runtime_type}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.comfy is not None:
            self.comfy.stop()
        if self.webui is not None:
            self.webui.busy.interrupt.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sdaas.local.preview",
        description=f"{LABEL}: placeholder images behind the SD WebUI or ComfyUI API subset.")
    parser.add_argument("--type", dest="runtime_type", choices=RUNTIME_TYPES, required=True)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seconds-per-image", type=float, default=1.0)
    parser.add_argument("--model", action="append", default=[],
                        help="a checkpoint the SD WebUI preview offers (repeatable; the first "
                             "is loaded)")
    parser.add_argument("--disable-metadata", action="store_true",
                        help="comfyui: no workflow in the saved files (as ComfyUI's own flag)")
    parser.add_argument("--ready-file", help="write {pid, port, url} here once listening")
    parser.add_argument("--agent-pid-file",
                        help="the file holding the pid of the queue agent [preview:kill-agent] "
                             "kills (only a process of this local stack)")
    args = parser.parse_args(argv)
    if args.seconds_per_image < 0:
        parser.error("--seconds-per-image must be >= 0")
    killer = AgentKiller(Path(args.agent_pid_file) if args.agent_pid_file else None,
                         os.environ.get(INSTANCE_ENV))
    server = PreviewServer(args.runtime_type, seconds_per_image=args.seconds_per_image,
                           models=tuple(args.model), port=args.port,
                           disable_metadata=args.disable_metadata, killer=killer).start()
    print(f"{LABEL}: {args.runtime_type} API subset on {server.url} "
          f"({args.seconds_per_image}s per image)", flush=True)
    write_ready_file(args.ready_file, port=server.port, url=server.url)
    serve_until_signalled(server.stop)
    return 0
