"""Props of :class:`ServerlessIngress` and the reference it hands out for a runtime's queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from constructs_lib.durations import retention_problems
from constructs_lib.tags import Tags, check_tags, normalize_tags

RuntimeType = Literal["sdwebui", "comfyui"]
SNS_MAX_BYTES = 262_144
API_MAX_BODY_BYTES = 10 * 1024 * 1024
# The Lambda functions' timeout.
LAMBDA_TIMEOUT_SECONDS = 15
# Receives of a dead-lettered message the consumer gets before SQS moves it on unhandled.
DEAD_LETTER_CONSUMER_ATTEMPTS = 5
# The dead-letter intake's visibility timeout: six times the consumer's timeout, as AWS
# advises for a queue a Lambda event source mapping reads.
DEAD_LETTER_INTAKE_VISIBILITY_SECONDS = 6 * LAMBDA_TIMEOUT_SECONDS


@dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    """A runtime the front door routes to: its name, type and served checkpoints."""

    name: str
    type: RuntimeType
    models: tuple[str, ...] = ()
    dynamic_model: bool = False


@dataclass(frozen=True, kw_only=True)
class ServerlessIngressProps:
    """Settings of :class:`ServerlessIngress`. Only ``runtimes`` is required.

    Attributes:
        runtimes: The runtimes tasks are routed to (name, type, served checkpoints): one
            queue each.
        name: Prefix of every physical name.
        stage_name: API stage, the first path segment of every URL.
        rate_limit_per_second: Steady requests per second per API key (usage plan).
        burst_limit: Requests per API key allowed at once above the steady rate.
        quota_per_day: Requests per API key per day; ``None``: no quota.
        visibility_timeout_seconds: Visibility timeout of every runtime queue; the agent
            extends it while a task runs.
        max_receive_count: Receives before a message moves to its dead-letter queue.
        webhook_max_attempts: Attempts of one webhook delivery before it moves to the
            webhook dead-letter queue.
        message_retention_seconds: How long a task may wait in its queue.
        dlq_message_retention_seconds: How long a failed task stays in its dead-letter
            queue.
        oldest_message_alarm_seconds: Alarm when a queue's oldest message is older.
        output_expire_after_days: Output objects (images, results) expire after N days.
        task_ttl_days: Task records expire after N days (DynamoDB TTL).
        force_destroy_outputs: Let destroy delete an output bucket that still holds objects.
        lambda_reserved_concurrency: Reserved (and maximum) concurrency of each Lambda.
        lambda_memory_mb: Memory of each Lambda in MB.
        log_retention_days: Days the Lambdas' logs are kept (a CloudWatch Logs period).
        api_log_retention_days: Days the API access logs are kept (a CloudWatch Logs
            period).
        alarm_topic_arn: SNS topic the alarms notify; ``None``: they only change state.
        manage_api_gateway_account: Set the region's API Gateway CloudWatch role (one per
            account and region: turn off when another stack manages it).
        tags: Merged into every taggable resource the construct creates (a mapping or
            pairs).
    """

    runtimes: tuple[RuntimeSpec, ...]
    name: str = "sdaas"
    stage_name: str = "prod"
    rate_limit_per_second: float = 30
    burst_limit: int = 50
    quota_per_day: int | None = None
    visibility_timeout_seconds: int = 300
    max_receive_count: int = 3
    webhook_max_attempts: int = 8
    message_retention_seconds: int = 345_600
    dlq_message_retention_seconds: int = 1_209_600
    oldest_message_alarm_seconds: int = 900
    output_expire_after_days: int = 30
    task_ttl_days: int = 30
    force_destroy_outputs: bool = False
    lambda_reserved_concurrency: int = 20
    lambda_memory_mb: int = 512
    log_retention_days: int = 30
    api_log_retention_days: int = 30
    alarm_topic_arn: str | None = None
    manage_api_gateway_account: bool = True
    tags: Tags = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtimes", tuple(self.runtimes))
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        problems = check_tags(self.tags)
        if not self.runtimes:
            problems.append("runtimes must name at least one runtime")
        names = [r.name for r in self.runtimes]
        if len(set(names)) != len(names):
            problems.append(f"runtime names must be unique (got {', '.join(names)})")
        if self.burst_limit < 1 or self.rate_limit_per_second <= 0:
            problems.append(
                f"rate_limit_per_second must be > 0 and burst_limit >= 1 (got rate="
                f"{self.rate_limit_per_second}, burst={self.burst_limit})"
            )
        if not 1 <= self.max_receive_count <= 1000:
            problems.append(f"max_receive_count must be 1..1000 (got {self.max_receive_count})")
        if not 1 <= self.webhook_max_attempts <= 1000:
            problems.append(
                f"webhook_max_attempts must be 1..1000 (got {self.webhook_max_attempts})")
        if not 0 <= self.visibility_timeout_seconds <= 43_200:
            problems.append(
                "visibility_timeout_seconds must be 0..43200 "
                f"(got {self.visibility_timeout_seconds})"
            )
        for key in ("log_retention_days", "api_log_retention_days"):
            problems.extend(retention_problems(key, getattr(self, key)))
        if problems:
            raise ValueError("ServerlessIngressProps: " + "; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class RuntimeQueueRef:
    """What other constructs need to know about one runtime's queue
    (``ServerlessIngress.queue_for``, or built by hand for a queue owned elsewhere)."""

    runtime: str
    type: RuntimeType
    queue_url: str
    queue_arn: str
    queue_name: str
    dlq_url: str
    dlq_arn: str
    visibility_timeout_seconds: int
    dlq_name: str | None = None

