"""Webhooks: the ``metadata.webhook`` rules and the signature of a delivery.

``metadata.webhook`` is an object ``{"url": "https://...", "events": [...]}`` (a bare URL
string is refused with a hint: one shape is easier to document and to extend). ``events``
is optional and defaults to every final status. The URL is checked here at submit time
(scheme, length, host, no credentials, no literal non-public address) and again at
delivery time, after DNS resolution, by :mod:`task_contract.netguard`.

A delivery is the result message as a JSON ``POST``, signed with the stack's secret:
``X-Sdaas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
(docs/contracts.md, "Webhooks", has the receiver's verifier).

Local mode alone allows loopback receivers, and plain ``http://`` for them, through the
:data:`ALLOW_LOOPBACK_ENV` setting of every program that applies these rules.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final
from urllib.parse import urlsplit

from task_contract import netguard
from task_contract.problems import MISSING, Problems, child, join, json_type, quote, required
from task_contract.record import FINAL_STATUSES

EVENTS = FINAL_STATUSES  # completed, failed, cancelled
MAX_URL_CHARS = 2048
# The local-mode setting ("true"): loopback receivers allowed, over http:// too. Never set
# by the constructs; only local mode sets it.
ALLOW_LOOPBACK_ENV: Final = "WEBHOOK_ALLOW_LOOPBACK"

SIGNATURE_HEADER: Final = "X-Sdaas-Signature"
DELIVERY_HEADER: Final = "X-Sdaas-Delivery"  # unique per delivery, the same on its retries
EVENT_HEADER: Final = "X-Sdaas-Event"  # the status the delivery reports
TASK_HEADER: Final = "X-Sdaas-Task-Id"


def check_webhook(value: Any, path: str, problems: Problems, *,
                  allow_loopback: bool = False) -> dict[str, Any] | None:
    """``metadata.webhook`` normalised to ``{"url", "events"}``; None (with problems added)
    when it is invalid. Absent or ``null``: None and no problem."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, str):
        problems.add(path, 'must be an object {"url": "https://...", "events": [...]} '
                           "(got a string)")
        return None
    if not isinstance(value, dict):
        problems.add(path, f"must be an object (got {json_type(value)})")
        return None
    before = len(problems)
    for key in sorted(set(value) - {"url", "events"}):
        problems.add(join(path, key), "is not a webhook field (expected url, events)")
    url = check_url(child(value, "url"), join(path, "url"), problems,
                    allow_loopback=allow_loopback)
    events = _check_events(child(value, "events"), join(path, "events"), problems)
    if len(problems) > before or url is None or events is None:
        return None
    return {"url": url, "events": events}


def check_url(value: Any, path: str, problems: Problems, *,
              allow_loopback: bool = False) -> str | None:
    """A receiver URL: ``https://`` with a host, at most :data:`MAX_URL_CHARS` characters,
    no user name or password, no fragment, and no literal address the SSRF guard refuses."""
    value = required(value, str, "a string", path, problems)
    if value is None:
        return None
    if len(value) > MAX_URL_CHARS:
        problems.add(path, f"must be at most {MAX_URL_CHARS} characters (got {len(value)})")
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        problems.add(path, "must not contain spaces or control characters")
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        problems.add(path, f"is not a valid URL ({exc})")
        return None
    host = parts.hostname or ""
    rule = netguard.loopback_allowed if allow_loopback else netguard.forbidden_reason
    literal = netguard.literal_address(host) if host else None
    loopback_host = host == "localhost" or (literal is not None and literal.is_loopback)
    schemes = ("https", "http") if allow_loopback and loopback_host else ("https",)
    if parts.scheme.lower() not in schemes:
        problems.add(path, f"must be an https:// URL (got {quote(value)})")
    elif not host:
        problems.add(path, f"must name a host (got {quote(value)})")
    elif parts.username is not None or parts.password is not None:
        problems.add(path, "must not carry a user name or password")
    elif parts.fragment:
        problems.add(path, "must not have a #fragment")
    elif port == 0:
        problems.add(path, "must not use port 0")
    elif host == "localhost" and not allow_loopback:
        problems.add(path, "must not name localhost: webhooks go to public addresses")
    elif literal is not None and (reason := rule(literal)) is not None:
        problems.add(path, f"names {literal}, a {reason} address: webhooks go to public "
                           "addresses")
    else:
        return value
    return None


def _check_events(value: Any, path: str, problems: Problems) -> list[str] | None:
    if value is MISSING or value is None:
        return list(EVENTS)
    if not isinstance(value, list):
        problems.add(path, f"must be an array (got {json_type(value)})")
        return None
    if not value:
        problems.add(path, f"must name at least one of {', '.join(EVENTS)} (leave it out "
                           "for all)")
        return None
    found: list[str] = []
    for index, event in enumerate(value):
        if event not in EVENTS:
            problems.add(join(path, index), f"must be one of {', '.join(EVENTS)} (got "
                                            f"{quote(event)})")
        elif event not in found:
            found.append(event)
    return found


def wants(webhook: dict[str, Any], status: str) -> bool:
    """Whether ``webhook`` asked to hear about ``status``."""
    events = webhook.get("events")
    return status in (events if isinstance(events, list) else EVENTS)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The :data:`SIGNATURE_HEADER` value: ``t=<timestamp>,v1=<hex>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
