"""Lambda configuration from environment variables (the contract is in docs/contracts.md).

Read on every invocation: it is a handful of dictionary look-ups, and it keeps the handlers
free of import-time state. A bad configuration raises :class:`ConfigError` listing every
problem; the handlers turn it into a 500 ``configuration_error`` and log the problems.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from task_contract.metadata import RUNTIME_TYPES
from task_contract.record import TASK_TTL_DAYS, TASK_TTL_DAYS_RANGE
from task_contract.webhook import ALLOW_LOOPBACK_ENV

DEFAULT_SNS_MAX_BYTES = 262_144
SNS_HARD_LIMIT_BYTES = 262_144  # SNS rejects larger messages (message + attributes)
DEFAULT_MAX_BODY_BYTES = 10_485_760  # the API Gateway REST payload limit
DEFAULT_PRESIGN_EXPIRES_SECONDS = 3_600
PRESIGN_MAX_SECONDS = 604_800  # the SigV4 maximum (7 days)


class ConfigError(Exception):
    """The Lambda's environment is missing or has invalid settings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """One configured inference runtime, as the ingest Lambda needs to know it."""

    name: str
    type: str
    models: tuple[str, ...] = ()
    dynamic_model: bool = False


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    table: str
    bucket: str
    topic_arn: str
    runtimes: Mapping[str, Runtime]
    task_ttl_days: int
    sns_max_bytes: int
    max_body_bytes: int
    webhook_allow_loopback: bool = False  # local mode only


@dataclass(frozen=True, kw_only=True)
class WebhookConfig:
    table: str
    secret_arn: str
    queue_url: str  # the delivery queue (failed deliveries are hidden there for a backoff)
    timeout_seconds: int
    retry_base_seconds: int
    retry_max_seconds: int
    allow_loopback: bool = False  # local mode only


@dataclass(frozen=True, kw_only=True)
class DeadLetterSource:
    """One runtime's dead-letter intake (the consumer's event source) and the dead-letter
    queue its messages are kept in."""

    runtime: str
    source_arn: str
    queue_url: str


@dataclass(frozen=True, kw_only=True)
class DeadLetterConfig:
    table: str
    bucket: str
    topic_arn: str
    sources: Mapping[str, DeadLetterSource]  # by source ARN


@dataclass(frozen=True, kw_only=True)
class StatusConfig:
    table: str
    bucket: str
    presign_expires_seconds: int


def _required(env: Mapping[str, str], name: str, problems: list[str]) -> str:
    value = env.get(name, "").strip()
    if not value:
        problems.append(f"{name} is not set")
    return value


def _integer(
    env: Mapping[str, str], name: str, default: int, low: int, high: int, problems: list[str]
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be an integer (got {raw!r})")
        return default
    if not low <= value <= high:
        problems.append(f"{name} must be between {low} and {high} (got {value})")
    return value


_UNREADABLE = object()


def _json_variable(name: str, raw: str, problems: list[str]) -> object:
    """The JSON document in variable ``name``; ``_UNREADABLE`` (and a problem) when it is
    unset or not JSON."""
    if not raw.strip():
        problems.append(f"{name} is not set")
        return _UNREADABLE
    try:
        return json.loads(raw)
    except ValueError as exc:
        problems.append(f"{name} is not valid JSON ({exc})")
        return _UNREADABLE


def _flag(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false"):
        problems.append(f"{name} must be true or false (got {raw!r})")
    return raw == "true"


def parse_runtimes(raw: str, problems: list[str]) -> dict[str, Runtime]:
    """Parse ``RUNTIMES``: ``{"<name>": {"type", "models", "dynamic_model"}}``."""
    document = _json_variable("RUNTIMES", raw, problems)
    if document is _UNREADABLE:
        return {}
    if not isinstance(document, dict) or not document:
        problems.append("RUNTIMES must be a non-empty JSON object of runtime name -> settings")
        return {}
    runtimes: dict[str, Runtime] = {}
    for name, spec in document.items():
        where = f"RUNTIMES[{name!r}]"
        if not name:
            problems.append("RUNTIMES has an empty runtime name")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where} must be an object")
            continue
        kind = spec.get("type")
        if kind not in RUNTIME_TYPES:
            problems.append(
                f"{where}.type must be one of {', '.join(RUNTIME_TYPES)} (got {kind!r})"
            )
            continue
        models = spec.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            problems.append(f"{where}.models must be a list of strings")
            continue
        dynamic = spec.get("dynamic_model", False)
        if not isinstance(dynamic, bool):
            problems.append(f"{where}.dynamic_model must be true or false")
            continue
        runtimes[name] = Runtime(name=name, type=kind, models=tuple(models), dynamic_model=dynamic)
    return runtimes


def document_runtimes(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Runtime name -> type from ``RUNTIMES`` for the OpenAPI document; ``None`` when unset
    (the document then names no runtime)."""
    env = os.environ if env is None else env
    if not env.get("RUNTIMES", "").strip():
        return None
    problems: list[str] = []
    runtimes = parse_runtimes(env["RUNTIMES"], problems)
    if problems:
        raise ConfigError(problems)
    return {name: runtime.type for name, runtime in runtimes.items()}


def ingest_config(env: Mapping[str, str] | None = None) -> IngestConfig:
    env = os.environ if env is None else env
    problems: list[str] = []
    config = IngestConfig(
        table=_required(env, "TASK_TABLE", problems),
        bucket=_required(env, "OUTPUT_BUCKET", problems),
        topic_arn=_required(env, "INPUT_TOPIC_ARN", problems),
        runtimes=parse_runtimes(env.get("RUNTIMES", ""), problems),
        task_ttl_days=_integer(env, "TASK_TTL_DAYS", TASK_TTL_DAYS, *TASK_TTL_DAYS_RANGE, problems),
        sns_max_bytes=_integer(
            env, "SNS_MAX_BYTES", DEFAULT_SNS_MAX_BYTES, 1024, SNS_HARD_LIMIT_BYTES, problems
        ),
        max_body_bytes=_integer(
            env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, DEFAULT_MAX_BODY_BYTES, problems
        ),
        webhook_allow_loopback=_flag(env, ALLOW_LOOPBACK_ENV, problems),
    )
    if problems:
        raise ConfigError(problems)
    return config


def status_config(env: Mapping[str, str] | None = None) -> StatusConfig:
    env = os.environ if env is None else env
    problems: list[str] = []
    config = StatusConfig(
        table=_required(env, "TASK_TABLE", problems),
        bucket=_required(env, "OUTPUT_BUCKET", problems),
        presign_expires_seconds=_integer(
            env,
            "PRESIGN_EXPIRES_SECONDS",
            DEFAULT_PRESIGN_EXPIRES_SECONDS,
            1,
            PRESIGN_MAX_SECONDS,
            problems,
        ),
    )
    if problems:
        raise ConfigError(problems)
    return config


def parse_dead_letter_queues(raw: str, problems: list[str]) -> dict[str, DeadLetterSource]:
    """Parse ``DEAD_LETTER_QUEUES``: ``[{"runtime", "source_arn", "queue_url"}, ...]``."""
    document = _json_variable("DEAD_LETTER_QUEUES", raw, problems)
    if document is _UNREADABLE:
        return {}
    if not isinstance(document, list) or not document:
        problems.append("DEAD_LETTER_QUEUES must be a non-empty JSON array of "
                        '{"runtime", "source_arn", "queue_url"} objects')
        return {}
    sources: dict[str, DeadLetterSource] = {}
    for index, entry in enumerate(document):
        where = f"DEAD_LETTER_QUEUES[{index}]"
        values = {key: entry.get(key) if isinstance(entry, dict) else None
                  for key in ("runtime", "source_arn", "queue_url")}
        missing = [key for key, value in values.items() if not isinstance(value, str) or not value]
        if missing:
            problems.append(f"{where} needs non-empty strings {', '.join(missing)}")
            continue
        if values["source_arn"] in sources:
            problems.append(f"{where}.source_arn {values['source_arn']!r} is listed twice")
            continue
        sources[values["source_arn"]] = DeadLetterSource(**values)
    return sources


def dead_letter_config(env: Mapping[str, str] | None = None) -> DeadLetterConfig:
    env = os.environ if env is None else env
    problems: list[str] = []
    config = DeadLetterConfig(
        table=_required(env, "TASK_TABLE", problems),
        bucket=_required(env, "OUTPUT_BUCKET", problems),
        topic_arn=_required(env, "RESULT_TOPIC_ARN", problems),
        sources=parse_dead_letter_queues(env.get("DEAD_LETTER_QUEUES", ""), problems),
    )
    if problems:
        raise ConfigError(problems)
    return config


def webhook_config(env: Mapping[str, str] | None = None) -> WebhookConfig:
    env = os.environ if env is None else env
    problems: list[str] = []
    config = WebhookConfig(
        table=_required(env, "TASK_TABLE", problems),
        secret_arn=_required(env, "WEBHOOK_SECRET_ARN", problems),
        queue_url=_required(env, "WEBHOOK_QUEUE_URL", problems),
        timeout_seconds=_integer(env, "WEBHOOK_TIMEOUT_SECONDS", 10, 1, 60, problems),
        retry_base_seconds=_integer(env, "WEBHOOK_RETRY_BASE_SECONDS", 30, 0, 900, problems),
        retry_max_seconds=_integer(env, "WEBHOOK_RETRY_MAX_SECONDS", 900, 0, 43_200, problems),
        allow_loopback=_flag(env, ALLOW_LOOPBACK_ENV, problems),
    )
    if config.retry_max_seconds < config.retry_base_seconds:
        problems.append("WEBHOOK_RETRY_MAX_SECONDS must be >= WEBHOOK_RETRY_BASE_SECONDS")
    if problems:
        raise ConfigError(problems)
    return config
