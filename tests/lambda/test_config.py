"""Unit tests of the Lambda environment contract (docs/contracts.md, "Lambda environment")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_src import config
from lambda_src.config import ConfigError

BASE = {
    "TASK_TABLE": "tasks",
    "OUTPUT_BUCKET": "out",
    "INPUT_TOPIC_ARN": "arn:aws:sns:us-west-2:123456789012:in",
    "RUNTIMES": json.dumps({"sd": {"type": "sdwebui"}}),
}


def test_ingest_defaults() -> None:
    cfg = config.ingest_config(BASE)
    assert (cfg.table, cfg.bucket, cfg.topic_arn) == ("tasks", "out", BASE["INPUT_TOPIC_ARN"])
    assert cfg.task_ttl_days == 30
    assert cfg.sns_max_bytes == 262_144
    assert cfg.max_body_bytes == 10_485_760
    assert cfg.runtimes == {
        "sd": config.Runtime(name="sd", type="sdwebui", models=(), dynamic_model=False)
    }


def test_ingest_explicit_values() -> None:
    env = {
        **BASE,
        "TASK_TTL_DAYS": "7",
        "SNS_MAX_BYTES": "100000",
        "MAX_BODY_BYTES": "2048",
        "RUNTIMES": json.dumps(
            {
                "c": {"type": "comfyui"},
                "w": {"type": "sdwebui", "models": ["m"], "dynamic_model": True},
            }
        ),
    }
    cfg = config.ingest_config(env)
    assert (cfg.task_ttl_days, cfg.sns_max_bytes, cfg.max_body_bytes) == (7, 100_000, 2048)
    assert cfg.runtimes["w"] == config.Runtime(
        name="w", type="sdwebui", models=("m",), dynamic_model=True
    )
    assert cfg.runtimes["c"].type == "comfyui"


def test_status_defaults_and_values() -> None:
    assert config.status_config(BASE).presign_expires_seconds == 3600
    cfg = config.status_config({**BASE, "PRESIGN_EXPIRES_SECONDS": "60"})
    assert (cfg.table, cfg.bucket, cfg.presign_expires_seconds) == ("tasks", "out", 60)


def test_every_problem_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        config.ingest_config({"TASK_TTL_DAYS": "soon", "SNS_MAX_BYTES": "300000"})
    assert caught.value.problems == [
        "TASK_TABLE is not set",
        "OUTPUT_BUCKET is not set",
        "INPUT_TOPIC_ARN is not set",
        "RUNTIMES is not set",
        "TASK_TTL_DAYS must be an integer (got 'soon')",
        "SNS_MAX_BYTES must be between 1024 and 262144 (got 300000)",
    ]


@pytest.mark.parametrize(
    ("runtimes", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ('{"": {"type": "sdwebui"}}', "empty runtime name"),
        ('{"a": "sdwebui"}', "must be an object"),
        ('{"a": {"type": "invokeai"}}', "type must be one of sdwebui, comfyui"),
        ('{"a": {"type": "sdwebui", "models": "m"}}', "models must be a list of strings"),
        ('{"a": {"type": "sdwebui", "models": [1]}}', "models must be a list of strings"),
        ('{"a": {"type": "sdwebui", "dynamic_model": "yes"}}', "dynamic_model must be true"),
    ],
)
def test_invalid_runtimes(runtimes: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.ingest_config({**BASE, "RUNTIMES": runtimes})
    assert len(caught.value.problems) == 1
    assert fragment in caught.value.problems[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_BODY_BYTES", "0"),
        ("MAX_BODY_BYTES", "20000000"),
        ("TASK_TTL_DAYS", "0"),
        ("SNS_MAX_BYTES", "1.5"),
    ],
)
def test_out_of_range_numbers(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.ingest_config({**BASE, name: value})
    assert caught.value.problems[0].startswith(name)


@pytest.mark.parametrize("value", ["0", "604801", "x"])
def test_presign_bounds(value: str) -> None:
    env: dict[str, Any] = {**BASE, "PRESIGN_EXPIRES_SECONDS": value}
    with pytest.raises(ConfigError):
        config.status_config(env)


def test_status_needs_only_its_variables() -> None:
    assert config.status_config({"TASK_TABLE": "t", "OUTPUT_BUCKET": "b"}).table == "t"
    with pytest.raises(ConfigError) as caught:
        config.status_config({})
    assert caught.value.problems == ["TASK_TABLE is not set", "OUTPUT_BUCKET is not set"]
