"""boto3 clients with explicit timeouts and bounded retries.

``AWS_ENDPOINT_URL`` (a local emulator) and credentials come from the standard SDK
environment; the region from ``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the queue URL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from agent.config import AgentConfig

_QUEUE_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


@dataclass(frozen=True)
class AwsClients:
    sqs: Any
    s3: Any
    sns: Any
    dynamodb: Any | None


def region_for(config: AgentConfig) -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    match = _QUEUE_REGION.search(config.queue_url)
    return match.group(1) if match else "us-east-1"


def make_clients(config: AgentConfig) -> AwsClients:
    session = boto3.session.Session(region_name=region_for(config))
    pool = max(16, config.upload_workers * 2 + config.runtime_concurrency + 4)
    # Standard retry mode: 3 attempts in all, with backoff, for throttling, 5xx and
    # connection errors; beyond that the agent's own retries (finish attempts, then SQS
    # redelivery) take over.
    base = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5,
                  read_timeout=30, max_pool_connections=pool)
    sqs_config = base.merge(Config(read_timeout=config.wait_time_seconds + 15))
    return AwsClients(
        sqs=session.client("sqs", config=sqs_config),
        s3=session.client("s3", config=base),
        sns=session.client("sns", config=base),
        dynamodb=session.client("dynamodb", config=base) if config.table else None,
    )
