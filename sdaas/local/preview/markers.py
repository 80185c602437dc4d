"""Request markers: text a request can carry to steer the preview runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SLEEP_SECONDS = 3600.0
MARKER_RE = re.compile(r"\[preview:(fail|invalid|sleep=(\d+(?:\.\d+)?))\]")


@dataclass(frozen=True)
class Markers:
    fail: bool = False
    invalid: bool = False
    sleep_seconds: float | None = None


def markers_in(text: str) -> Markers:
    fail = invalid = False
    sleep = None
    for match in MARKER_RE.finditer(text):
        if match.group(1) == "fail":
            fail = True
        elif match.group(1) == "invalid":
            invalid = True
        else:
            sleep = min(float(match.group(2)), MAX_SLEEP_SECONDS)
    return Markers(fail, invalid, sleep)

