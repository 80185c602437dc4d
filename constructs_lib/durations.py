"""Karpenter-style durations ("1h30m") to seconds and back; the log retention periods
CloudWatch Logs accepts."""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)


def duration_seconds(value: str) -> int:
    """Seconds in a Karpenter duration such as ``"1h30m"`` (``ValueError`` otherwise)."""
    match = _DURATION_RE.match(value)
    if not value or not match:
        raise ValueError(f'"{value}" is not a duration like "90s", "15m" or "1h30m"')
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """``900`` -> ``"15m"``, ``3690`` -> ``"1h1m30s"`` (the inverse of duration_seconds)."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive (got {seconds} s)")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)



def retention_problems(key: str, days: int) -> list[str]:
    """``[]`` when CloudWatch Logs accepts ``days`` as a retention period, else why not."""
    if days in LOG_RETENTION_DAYS:
        return []
    return [f"{key} must be one of CloudWatch's periods (1, 3, 5, 7, 14, 30, 60, 90, ... "
            f"3653: got {days})"]
