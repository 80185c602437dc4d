"""Progress of a long start-up, for a person: a terminal, a CI log, or a test's list."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Protocol


class Progress(Protocol):
    def step(self, text: str) -> None: ...
    def update(self, text: str) -> None: ...
    def done(self, text: str) -> None: ...
    def info(self, text: str) -> None: ...


class TerminalProgress:
    """Progress lines on a stream: one rewritten line on a terminal, throttled lines
    elsewhere (CI logs): the first update of a step, then at most one every
    ``interval_seconds`` of ``clock``."""

    def __init__(self, stream: IO[str] | None = None, interval_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval_seconds
        self._clock = clock
        self._last: float | None = None  # when the last update was shown in this step
        self._open = False
        self._step_started = clock()
        self._lock = threading.Lock()

    def _write(self, text: str, *, final: bool) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r\033[K" + text + ("\n" if final else ""))
                self._open = not final
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def step(self, text: str) -> None:
        self._step_started = self._clock()
        self._last = None
        self._write(f"  ... {text}", final=not self.tty)

    def update(self, text: str) -> None:
        now = self._clock()
        if not self.tty and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self._write(f"  ... {text}", final=not self.tty)

    def done(self, text: str) -> None:
        seconds = self._clock() - self._step_started
        self._write(f"  ok  {text} ({seconds:.1f}s)", final=True)

    def info(self, text: str) -> None:
        if self._open:
            self._write("", final=True)
        self._write(text, final=True)


class RecordingProgress:
    """Collects progress lines (tests), optionally echoing them."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self._echo = echo

    def _add(self, text: str) -> None:
        self.lines.append(text)
        if self._echo is not None:
            self._echo(text)

    def step(self, text: str) -> None:
        self._add(f"... {text}")

    def update(self, text: str) -> None:
        self._add(f"... {text}")

    def done(self, text: str) -> None:
        self._add(f"ok {text}")

    def info(self, text: str) -> None:
        self._add(text)

