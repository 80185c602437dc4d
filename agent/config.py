"""The agent's configuration, read once from the environment.

Every variable is documented in ``agent/README.md``. :func:`load_config` reports every
problem at once, each in the words of the variable that has it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from task_contract.delivery import (
    CANCEL_POLL_SECONDS,
    LONG_POLL_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    default_heartbeat_seconds,
    heartbeat_fits,
)
from task_contract.logformat import LEVELS
from task_contract.metadata import RUNTIME_TYPES
from task_contract.record import TASK_TTL_DAYS, TASK_TTL_DAYS_RANGE
from task_contract.webhook import ALLOW_LOOPBACK_ENV

METRICS_NAMESPACE = "SdAsync/QueueAgent"  # CloudWatch namespace of the embedded metrics
DEFAULT_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

T = TypeVar("T")


class ConfigError(ValueError):
    """The environment is not a valid agent configuration; ``problems`` lists every issue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid agent configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    queue_url: str
    topic_arn: str
    bucket: str
    table: str | None
    runtime_type: str
    runtime_name: str
    api_base_url: str = "http://127.0.0.1:8080"
    dynamic_model: bool = False
    task_ttl_days: int = TASK_TTL_DAYS
    log_level: str = "INFO"
    wait_time_seconds: int = LONG_POLL_SECONDS
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS
    heartbeat_seconds: float = default_heartbeat_seconds(VISIBILITY_TIMEOUT_SECONDS)
    task_timeout_seconds: float = 600.0
    shutdown_grace_seconds: float = 90.0
    runtime_concurrency: int = 1
    prefetch: int = 1
    upload_workers: int = 4
    retry_delay_seconds: float = 10.0
    retry_delay_max_seconds: float = 300.0
    finish_attempts: int = 3
    max_receive_count: int | None = None
    max_input_bytes: int = 20 * 1024 * 1024
    max_input_pixels: int = 50_000_000
    input_timeout_seconds: float = 30.0
    allow_http: bool = False
    input_allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Local mode only: tasks whose webhook is a loopback receiver are valid (ingest's rule).
    webhook_allow_loopback: bool = False
    health_port: int = 8081
    health_host: str = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod IP
    pod_annotation: bool = True
    pod_name: str | None = None
    pod_namespace: str | None = None
    kube_api_url: str | None = None
    kube_serviceaccount_dir: str = DEFAULT_SERVICEACCOUNT_DIR
    comfyui_poll_seconds: float = 0.1
    cancel_poll_seconds: float = CANCEL_POLL_SECONDS
    metrics_namespace: str = METRICS_NAMESPACE


class _Reader:
    """Parses variables one by one, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    def required(self, name: str, meaning: str) -> str:
        value = self.raw(name)
        if value is None:
            self.problems.append(f"{name} is required ({meaning})")
            return ""
        return value

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            self.problems.append(f"{name} must be {expected} (got {value!r})")
            return default

    def number(
        self, name: str, default: T, kind: Callable[[str], T], low: float, high: float
    ) -> T:
        value = self.parsed(name, default, kind, f"a number between {low} and {high}")
        if not low <= value <= high:  # type: ignore[operator]
            self.problems.append(f"{name} must be between {low} and {high} (got {value})")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        return self.parsed(name, default, _parse_bool, "true or false")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _parse_host(text: str) -> str:
    return str(ipaddress.ip_address(text.strip()))


def _parse_networks(text: str) -> tuple[Any, ...]:
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False)
        for item in text.split(",")
        if item.strip()
    )


def load_config(env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read the agent's configuration; raise :class:`ConfigError` listing every problem."""
    r = _Reader(os.environ if env is None else env)
    runtime_type = r.required("RUNTIME_TYPE", "sdwebui or comfyui").lower()
    if runtime_type and runtime_type not in RUNTIME_TYPES:
        r.problems.append(f"RUNTIME_TYPE must be one of {', '.join(RUNTIME_TYPES)} "
                          f"(got {runtime_type!r})")
    api_base_url = (r.raw("API_BASE_URL") or "http://127.0.0.1:8080").rstrip("/")
    if urlparse(api_base_url).scheme not in ("http", "https"):
        r.problems.append(f"API_BASE_URL must be an http(s) URL (got {api_base_url!r})")
    concurrency = r.number("AGENT_RUNTIME_CONCURRENCY", 1, int, 1, 16)
    visibility = r.number("AGENT_VISIBILITY_TIMEOUT_SECONDS", VISIBILITY_TIMEOUT_SECONDS, int, 2,
                          43200)
    heartbeat = r.number("AGENT_HEARTBEAT_SECONDS", default_heartbeat_seconds(visibility), float,
                         0.2, 21600)
    if not heartbeat_fits(heartbeat, visibility):
        r.problems.append(
            "AGENT_HEARTBEAT_SECONDS must be at most half of AGENT_VISIBILITY_TIMEOUT_SECONDS "
            f"so a late heartbeat cannot let the message reappear (got {heartbeat} and "
            f"{visibility})"
        )
    max_receive = r.raw("AGENT_MAX_RECEIVE_COUNT")
    config = AgentConfig(
        queue_url=r.required("SQS_QUEUE_URL", "the runtime's input queue URL"),
        topic_arn=r.required("SNS_TOPIC_ARN", "the result topic ARN"),
        bucket=r.required("S3_BUCKET", "the output bucket"),
        table=r.raw("TASK_TABLE"),
        runtime_type=runtime_type,
        runtime_name=r.required("RUNTIME_NAME", "the runtime's name, echoed in results"),
        api_base_url=api_base_url,
        dynamic_model=r.flag("DYNAMIC_SD_MODEL", False),
        task_ttl_days=r.number("TASK_TTL_DAYS", TASK_TTL_DAYS, int, *TASK_TTL_DAYS_RANGE),
        log_level=(r.raw("LOG_LEVEL") or "INFO").upper(),
        wait_time_seconds=r.number("AGENT_WAIT_TIME_SECONDS", LONG_POLL_SECONDS, int, 0,
                                   LONG_POLL_SECONDS),
        visibility_timeout_seconds=visibility,
        heartbeat_seconds=heartbeat,
        task_timeout_seconds=r.number("AGENT_TASK_TIMEOUT_SECONDS", 600.0, float, 1, 43200),
        shutdown_grace_seconds=r.number("AGENT_SHUTDOWN_GRACE_SECONDS", 90.0, float, 0, 3600),
        runtime_concurrency=concurrency,
        prefetch=r.number("AGENT_PREFETCH", concurrency, int, 0, 10),
        upload_workers=r.number("AGENT_UPLOAD_WORKERS", 4, int, 1, 32),
        retry_delay_seconds=r.number("AGENT_RETRY_DELAY_SECONDS", 10.0, float, 0, 43200),
        retry_delay_max_seconds=r.number("AGENT_RETRY_DELAY_MAX_SECONDS", 300.0, float, 0,
                                         43200),
        finish_attempts=r.number("AGENT_FINISH_ATTEMPTS", 3, int, 1, 10),
        max_receive_count=(
            r.number("AGENT_MAX_RECEIVE_COUNT", 0, int, 1, 1000) if max_receive else None
        ),
        max_input_bytes=r.number("AGENT_MAX_INPUT_BYTES", 20 * 1024 * 1024, int, 1, 2**31),
        max_input_pixels=r.number("AGENT_MAX_INPUT_PIXELS", 50_000_000, int, 1, 2**31),
        input_timeout_seconds=r.number("AGENT_INPUT_TIMEOUT_SECONDS", 30.0, float, 0.1, 600),
        allow_http=r.flag("AGENT_ALLOW_HTTP", False),
        input_allow_networks=r.parsed(
            "AGENT_INPUT_ALLOW_ADDRESSES", (), _parse_networks,
            "a comma-separated list of IP addresses or CIDR networks",
        ),
        webhook_allow_loopback=r.flag(ALLOW_LOOPBACK_ENV, False),
        health_port=r.number("AGENT_HEALTH_PORT", 8081, int, 0, 65535),
        health_host=r.parsed("AGENT_HEALTH_HOST", "0.0.0.0", _parse_host,  # noqa: S104
                             "an IP address to bind the health server to"),
        pod_annotation=r.flag("AGENT_POD_ANNOTATION", True),
        pod_name=r.raw("POD_NAME") or r.raw("HOSTNAME"),
        pod_namespace=r.raw("POD_NAMESPACE"),
        kube_api_url=r.raw("AGENT_KUBE_API_URL") or _in_cluster_api_url(r),
        kube_serviceaccount_dir=r.raw("AGENT_KUBE_SERVICEACCOUNT_DIR")
        or DEFAULT_SERVICEACCOUNT_DIR,
        comfyui_poll_seconds=r.number("AGENT_COMFYUI_POLL_SECONDS", 0.1, float, 0.01, 10),
        cancel_poll_seconds=r.number("AGENT_CANCEL_POLL_SECONDS", CANCEL_POLL_SECONDS, float,
                                     0.1, 60),
        metrics_namespace=r.raw("AGENT_METRICS_NAMESPACE") or METRICS_NAMESPACE,
    )
    if config.retry_delay_max_seconds < config.retry_delay_seconds:
        r.problems.append(
            "AGENT_RETRY_DELAY_MAX_SECONDS must be >= AGENT_RETRY_DELAY_SECONDS "
            f"(got {config.retry_delay_max_seconds} < {config.retry_delay_seconds})"
        )
    if config.log_level not in LEVELS:
        r.problems.append(f"LOG_LEVEL must be one of {', '.join(LEVELS)} "
                          f"(got {config.log_level!r})")
    if r.problems:
        raise ConfigError(r.problems)
    return config


def _in_cluster_api_url(r: _Reader) -> str | None:
    host = r.raw("KUBERNETES_SERVICE_HOST")
    if host is None:
        return None
    port = r.raw("KUBERNETES_SERVICE_PORT") or "443"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"
