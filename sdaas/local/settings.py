"""What local mode is given (:class:`LocalSettings`) and what it hands to clients
(:class:`Connection`, written to ``<workdir>/connection.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_WORKDIR = Path(".local")


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    """How the local stack runs (the configuration file says what it deploys)."""

    workdir: Path = DEFAULT_WORKDIR
    config_file: Path | None = None  # None: SD_CONFIG, config.yaml or the example
    seconds_per_image: float = 1.0  # the preview runtimes' fixed time per image
    api_port: int = 0  # 0: a free port
    tf_plugin_dir: Path | None = None  # None: TF_PLUGIN_DIR from the environment, if set
    terraform: str = "terraform"
    agent_env: Mapping[str, str] = field(default_factory=dict)  # extra agent variables
    log_level: str = "INFO"


@dataclass(frozen=True)
class Connection:
    """What a client needs, written to ``connection.json``."""

    endpoint: str
    api_key: str
    aws_endpoint_url: str
    region: str
    output_bucket: str
    pid: int
    # What ``sdctl dlq`` reads: the task table and each runtime's queue and dead-letter queue.
    task_table: str = ""
    queue_urls: Mapping[str, str] = field(default_factory=dict)
    dead_letter_queue_urls: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {key: dict(value) if isinstance(value, Mapping) else value
                for key, value in asdict(self).items()}

