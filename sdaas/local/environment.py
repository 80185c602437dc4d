"""The environment of every process local mode starts: the AWS emulator's dummy
credentials instead of the user's, the stack's instance id (how ``down`` proves a process is
one of ours), and for each queue agent its variables (ARCHITECTURE §6)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdaas.config import Config, RuntimeConfig
from sdaas.local.emulator import FAKE_CREDENTIALS

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds constructs_lib/, agent/, lambda_src/
INSTANCE_ENV = "SD_LOCAL_INSTANCE"
# Variables of the user's shell that must never reach a local-mode process: they would point
# the AWS SDKs and Terraform at a real account or another endpoint.
_SCRUBBED_PREFIXES = ("AWS_",)


def scrubbed(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without the user's AWS variables."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}


def process_environment(*, region: str, instance: str,
                        emulator_endpoint: str | None) -> dict[str, str]:
    """What a child of the local stack sees: AWS clients aimed at the emulator with dummy
    credentials, this checkout importable, the stack's instance id."""
    env = scrubbed()
    env.update(FAKE_CREDENTIALS)
    python_path = [str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env.update({
        "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true", "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(python_path), INSTANCE_ENV: instance,
    })
    if emulator_endpoint:
        env["AWS_ENDPOINT_URL"] = emulator_endpoint
    return env


def agent_environment(runtime: RuntimeConfig, config: Config, outputs: Mapping[str, Any],
                      runtime_url: str) -> dict[str, str]:
    """The queue agent's variables (ARCHITECTURE §6) for one runtime of the local stack."""
    return {
        "SQS_QUEUE_URL": outputs["queue_urls"][runtime.name],
        "SNS_TOPIC_ARN": outputs["result_topic_arn"],
        "S3_BUCKET": outputs["output_bucket"],
        "TASK_TABLE": outputs["task_table"],
        "RUNTIME_TYPE": runtime.type,
        "RUNTIME_NAME": runtime.name,
        "API_BASE_URL": runtime_url,
        "DYNAMIC_SD_MODEL": "true" if runtime.dynamic_model else "false",
        "TASK_TTL_DAYS": str(config.outputs.task_ttl_days),
        "AGENT_TASK_TIMEOUT_SECONDS": str(runtime.task_timeout_seconds),
        # Short waits so Ctrl-C is quick and retries show up while someone watches: a task
        # whose agent died comes back 20 s later (heartbeats every 5 s keep a running one).
        "AGENT_WAIT_TIME_SECONDS": "2",
        "AGENT_VISIBILITY_TIMEOUT_SECONDS": "20",
        "AGENT_SHUTDOWN_GRACE_SECONDS": "5",
        "AGENT_RETRY_DELAY_SECONDS": "1",
        "AGENT_RETRY_DELAY_MAX_SECONDS": "4",
        "AGENT_COMFYUI_POLL_SECONDS": "0.05",
        # Its health server binds every interface (for the kubelet): off on a workstation.
        "AGENT_HEALTH_PORT": "0",
        "AGENT_POD_ANNOTATION": "false",
    }

