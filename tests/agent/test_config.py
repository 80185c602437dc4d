"""Unit tests: the agent's environment parsing."""

from __future__ import annotations

import ipaddress

import pytest

from agent.config import ConfigError, load_config

BASE = {
    "SQS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123/q",
    "SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123:results",
    "S3_BUCKET": "out",
    "RUNTIME_TYPE": "sdwebui",
    "RUNTIME_NAME": "sdruntime",
}


def test_defaults_follow_the_spec() -> None:
    config = load_config(BASE)
    assert config.api_base_url == "http://127.0.0.1:8080"
    assert config.table is None
    assert config.dynamic_model is False
    assert config.wait_time_seconds == 20
    assert config.max_input_bytes == 20 * 1024 * 1024
    assert config.allow_http is False
    assert config.input_allow_networks == ()
    assert config.runtime_concurrency == 1
    assert config.prefetch == 1
    assert config.pod_annotation is True
    assert config.heartbeat_seconds * 2 <= config.visibility_timeout_seconds


def test_every_problem_is_listed_at_once() -> None:
    env = {"RUNTIME_TYPE": "invokeai", "AGENT_WAIT_TIME_SECONDS": "30",
           "AGENT_ALLOW_HTTP": "maybe", "AGENT_MAX_INPUT_BYTES": "lots"}
    with pytest.raises(ConfigError) as info:
        load_config(env)
    text = "\n".join(info.value.problems)
    for expected in ("SQS_QUEUE_URL is required", "SNS_TOPIC_ARN is required",
                     "S3_BUCKET is required", "RUNTIME_NAME is required",
                     "RUNTIME_TYPE must be one of sdwebui, comfyui (got 'invokeai')",
                     "AGENT_WAIT_TIME_SECONDS must be between 0 and 20 (got 30)",
                     "AGENT_ALLOW_HTTP must be true or false (got 'maybe')",
                     "AGENT_MAX_INPUT_BYTES must be a number"):
        assert expected in text
    assert len(info.value.problems) == 8


def test_heartbeat_must_be_well_inside_the_visibility_timeout() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, "AGENT_VISIBILITY_TIMEOUT_SECONDS": "10",
                     "AGENT_HEARTBEAT_SECONDS": "6"})
    assert "at most half of AGENT_VISIBILITY_TIMEOUT_SECONDS" in info.value.problems[0]


def test_overrides_are_parsed() -> None:
    config = load_config({**BASE, "TASK_TABLE": "tasks", "DYNAMIC_SD_MODEL": "true",
                          "AGENT_ALLOW_HTTP": "on", "AGENT_RUNTIME_CONCURRENCY": "2",
                          "AGENT_INPUT_ALLOW_ADDRESSES": "127.0.0.1, 10.1.0.0/16",
                          "API_BASE_URL": "http://runtime:8080/", "AGENT_POD_ANNOTATION": "off",
                          "KUBERNETES_SERVICE_HOST": "10.100.0.1",
                          "KUBERNETES_SERVICE_PORT": "443"})
    assert config.table == "tasks"
    assert config.dynamic_model and config.allow_http
    assert config.runtime_concurrency == 2 and config.prefetch == 2
    assert config.input_allow_networks == (ipaddress.ip_network("127.0.0.1/32"),
                                           ipaddress.ip_network("10.1.0.0/16"))
    assert config.api_base_url == "http://runtime:8080"
    assert config.pod_annotation is False
    assert config.kube_api_url == "https://10.100.0.1:443"


def test_health_host_defaults_to_every_interface_and_must_be_an_address() -> None:
    assert load_config(BASE).health_host == "0.0.0.0"
    assert load_config({**BASE, "AGENT_HEALTH_HOST": "127.0.0.1"}).health_host == "127.0.0.1"
    with pytest.raises(ConfigError, match="AGENT_HEALTH_HOST must be an IP address"):
        load_config({**BASE, "AGENT_HEALTH_HOST": "localhost"})
