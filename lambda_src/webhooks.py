"""Webhook deliverer Lambda: result messages to the receivers tasks asked for.

Handler string: ``lambda_src.webhooks.handler``. The result topic feeds the delivery queue
(raw message delivery), which feeds this function (SQS event source, partial batch
responses). For each result message: read the task's ``webhook`` from its record (ingest
stored it there), skip it unless the task has one that wants this status, then ``POST``
the message as JSON, signed with the stack's secret (:func:`task_contract.webhook.signature`).

The webhook is read from the record rather than carried in the result message: the message
stays what every result subscriber already receives (a receiver URL may hold the receiver's
own token, which other subscribers have no business seeing), and the agent is unchanged.

Outcomes (docs/contracts.md, "Webhooks"):

* 2xx: delivered;
* 5xx, 408, 429, a timeout, a connection or TLS-handshake failure, a DNS failure that may
  pass, or a failing dependency (table, secret): retried. The message is reported as failed
  and hidden for ``WEBHOOK_RETRY_BASE_SECONDS * 2^(attempt-1)`` seconds (at most
  ``WEBHOOK_RETRY_MAX_SECONDS``); after the queue's ``maxReceiveCount`` receives SQS moves
  it to the dead-letter queue, whose alarm fires;
* any other answer (3xx: redirects are not followed; other 4xx), a receiver address the SSRF
  guard refuses (:mod:`task_contract.netguard`, after DNS resolution) or a host that does not
  exist: given up at once and logged.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lambda_src import aws, config, tasks
from lambda_src.aws import DependencyError
from lambda_src.config import ConfigError
from lambda_src.jsonlog import log
from task_contract import netguard, webhook
from task_contract.problems import Problems
from task_contract.record import Fields

USER_AGENT = "sdaas-webhook/1"
SECRET_CACHE_SECONDS = 300.0
MAX_RESPONSE_BYTES = 4096  # read (and ignore) at most this much of the receiver's answer

# Seams for tests and local mode: the clock, the resolver and the TLS trust.
clock = time.time
resolver: netguard.Resolver = netguard.system_resolver
tls_context: ssl.SSLContext | None = None

_secrets: dict[str, tuple[str, float]] = {}


@dataclass(frozen=True)
class Outcome:
    """What became of one result message: ``retry`` or a final ``kind``."""

    kind: str  # delivered | retry | rejected | refused | filtered | no_webhook | invalid
    detail: str = ""
    http_status: int | None = None

    @property
    def retry(self) -> bool:
        return self.kind == "retry"


def handler(event: Any, context: Any) -> dict[str, Any]:
    """An SQS batch: ``{"batchItemFailures": [...]}`` names the messages to retry."""
    cfg = config.webhook_config()
    failures = []
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records or []:
        outcome = deliver_record(record, cfg)
        if outcome.retry:
            postpone(record, cfg)
            failures.append({"itemIdentifier": record.get("messageId", "")})
    return {"batchItemFailures": failures}


def deliver_record(record: dict[str, Any], cfg: config.WebhookConfig) -> Outcome:
    """Deliver one SQS record's result message; log and return what became of it."""
    attempt = _receive_count(record)
    message = _message(record.get("body"))
    fields: dict[str, Any] = {"message_id": record.get("messageId"), "attempt": attempt}
    if message is None:
        outcome = Outcome("invalid", "not a result message")
    else:
        fields.update(id=message["id"], status=message["status"])
        try:
            outcome = _deliver(message, str(record.get("messageId", "")), cfg, fields)
        except DependencyError as exc:
            fields["dependency"] = f"{exc.service}:{exc.operation}"
            outcome = Outcome("retry", f"{exc}")
    level = "WARNING" if outcome.kind in ("retry", "rejected", "refused") else "INFO"
    log(level, "webhook", outcome=outcome.kind, detail=outcome.detail or None,
        http_status=outcome.http_status, **fields)
    return outcome


def _deliver(message: dict[str, Any], delivery_id: str, cfg: config.WebhookConfig,
             fields: dict[str, Any]) -> Outcome:
    task = tasks.get(cfg.table, message["id"])
    target = task.get(Fields.WEBHOOK) if task else None
    if not isinstance(target, dict):
        return Outcome("no_webhook")
    if not webhook.wants(target, message["status"]):
        return Outcome("filtered")
    problems = Problems()
    url = webhook.check_url(target.get("url"), "webhook.url", problems,
                            allow_loopback=cfg.allow_loopback)
    if url is None:
        return Outcome("refused", problems.summary())
    fields["host"] = urlsplit(url).hostname
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = int(clock())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhook.SIGNATURE_HEADER: webhook.signature(secret(cfg.secret_arn), timestamp, body),
        webhook.DELIVERY_HEADER: delivery_id,
        webhook.EVENT_HEADER: message["status"],
        webhook.TASK_HEADER: message["id"],
    }
    rule = netguard.loopback_allowed if cfg.allow_loopback else netguard.forbidden_reason
    return post(url, body, headers, timeout=cfg.timeout_seconds, rule=rule)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         rule: netguard.AddressRule = netguard.forbidden_reason) -> Outcome:
    """One ``POST`` to ``url`` from an address the guard checked, redirects not followed."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        address = netguard.resolve_checked(host, port, timeout=timeout, resolver=resolver,
                                           rule=rule)
    except netguard.Refused as exc:
        return Outcome("refused", f"{exc}; webhooks go to public addresses")
    except netguard.Unresolvable as exc:
        return Outcome("refused", str(exc))
    except netguard.ResolutionUnavailable as exc:
        return Outcome("retry", str(exc))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = netguard.pinned_connection(scheme, host, address, port, timeout=timeout,
                                            context=tls_context)
    try:
        connection.request("POST", path, body=body, headers={
            "Host": netguard.host_header(host, parts.port), **headers})
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except ssl.SSLCertVerificationError as exc:
        return Outcome("rejected", f"TLS verification failed: {exc.verify_message}")
    except (OSError, ValueError) as exc:  # timeouts, refused connections, broken answers
        return Outcome("retry", type(exc).__name__)
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome("delivered", http_status=status)
    if status >= 500 or status in (408, 429):
        return Outcome("retry", f"HTTP {status}", status)
    return Outcome("rejected", f"HTTP {status}", status)


def secret(arn: str) -> str:
    """The signing secret, read from Secrets Manager at most every few minutes."""
    cached = _secrets.get(arn)
    now = time.monotonic()
    if cached is not None and now - cached[1] < SECRET_CACHE_SECONDS:
        return cached[0]
    response = aws.call("secretsmanager", "GetSecretValue",
                        aws.client("secretsmanager").get_secret_value, SecretId=arn)
    value = response.get("SecretString")
    if not isinstance(value, str) or not value:
        raise ConfigError([f"the webhook secret {arn} has no string value"])
    _secrets[arn] = (value, now)
    return value


def backoff_seconds(attempt: int, cfg: config.WebhookConfig) -> int:
    """How long a failed delivery stays hidden before attempt ``attempt + 1``."""
    return min(cfg.retry_max_seconds, cfg.retry_base_seconds * 2 ** max(0, attempt - 1))


def postpone(record: dict[str, Any], cfg: config.WebhookConfig) -> None:
    """Hide a failed message for its backoff (a failure here only shortens the wait)."""
    handle = record.get("receiptHandle")
    if not isinstance(handle, str):
        return
    delay = backoff_seconds(_receive_count(record), cfg)
    try:
        aws.call("sqs", "ChangeMessageVisibility",
                 aws.client("sqs").change_message_visibility,
                 QueueUrl=cfg.queue_url,
                 ReceiptHandle=handle, VisibilityTimeout=delay)
    except DependencyError as exc:
        log("WARNING", "webhook_backoff_failed", message_id=record.get("messageId"),
            dependency_error=exc.code)


def _receive_count(record: dict[str, Any]) -> int:
    attributes = record.get("attributes")
    raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None
    return int(raw) if isinstance(raw, str) and raw.isdigit() else 1


def _message(body: Any) -> dict[str, Any] | None:
    """The result message of an SQS body (raw delivery, or an SNS envelope)."""
    try:
        document = json.loads(body) if isinstance(body, str) else None
        if isinstance(document, dict) and document.get("Type") == "Notification":
            document = json.loads(document.get("Message", ""))
    except ValueError:
        return None
    if (isinstance(document, dict) and isinstance(document.get("id"), str)
            and isinstance(document.get("status"), str)):
        return document
    return None
