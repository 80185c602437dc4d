"""Cold-start figures: measured from the pod's creation, reported once each, with an
injected clock (no wall-clock dependence)."""

from __future__ import annotations

import json

import pytest

from agent import logs
from agent.coldstart import ColdStart
from agent.config import load_config

ENV = {"SQS_QUEUE_URL": "http://127.0.0.1:1/q", "SNS_TOPIC_ARN": "arn:aws:sns:us-west-2:1:t",
       "S3_BUCKET": "b", "RUNTIME_TYPE": "sdwebui", "RUNTIME_NAME": "sdruntime"}
CREATED = 1_767_254_400.0  # 2026-01-01T08:00:00Z


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _metric(lines: list[dict], name: str) -> list[float]:
    return [line[name] for line in lines if "_aws" in line and name in line]


@pytest.fixture
def config():
    return load_config(ENV)


def test_figures_run_from_the_pod_creation_and_are_reported_once(config, capsys) -> None:
    logs.setup()  # JSON lines on the captured stdout
    clock = Clock(CREATED + 95)  # the agent process starts 95 s after the pod was created
    pod = {"metadata": {"creationTimestamp": "2026-01-01T08:00:00Z"},
           "status": {"startTime": "2026-01-01T08:01:10Z"}}
    reads = []
    cold = ColdStart(config, clock=clock, read_pod=lambda cfg: reads.append(cfg) or pod)
    clock.now = CREATED + 160
    cold.runtime_ready()
    clock.now = CREATED + 172.5
    cold.first_task()
    cold.runtime_ready()  # the runtime came back after a restart: not a cold start
    cold.first_task()
    lines = _lines(capsys)
    assert _metric(lines, "ColdStartToRuntimeReady") == [160.0]
    assert _metric(lines, "ColdStartToFirstTask") == [172.5]
    events = [line for line in lines if line.get("event") == "cold_start"]
    assert [e["milestone"] for e in events] == ["runtime_ready", "first_task"]
    assert events[0]["origin"] == "pod_created"
    assert events[0]["scheduled_after"] == 70.0  # startTime - creationTimestamp
    assert events[0]["agent_started_after"] == 95.0
    assert len(reads) == 1  # the pod is read once
    emf = next(line for line in lines if "ColdStartToFirstTask" in line)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SdAsync/QueueAgent"
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Runtime"]]
    assert emf["Runtime"] == "sdruntime"


@pytest.mark.parametrize("pod", [
    None,  # outside a cluster, or the API did not answer
    {"metadata": {}},
    {"metadata": {"creationTimestamp": "yesterday"}},
])
def test_without_the_pod_the_origin_is_the_agent_start(config, capsys, pod) -> None:
    logs.setup()
    clock = Clock(1000.0)
    cold = ColdStart(config, clock=clock, read_pod=lambda _cfg: pod)
    clock.now = 1042.0
    cold.first_task()
    lines = _lines(capsys)
    assert _metric(lines, "ColdStartToFirstTask") == [42.0]
    event = next(line for line in lines if line.get("event") == "cold_start")
    assert event["origin"] == "agent_started"
    assert "agent_started_after" not in event
