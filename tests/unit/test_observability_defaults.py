"""Observability and idle-floor defaults: the configuration file and the library agree,
``false`` turns log shipping off, and the Fluent Bit pipeline picks exactly the agent's
embedded-metric lines."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout

import pytest

from agent import logs
from constructs_lib.cluster import GpuEksClusterProps, NewVpcProps
from constructs_lib.cluster.addons import (
    EMF_LINE_REGEX,
    EMF_PIPELINE_FILE,
    cloudwatch_observability_configuration,
    container_log_group_name,
)
from sdaas.config import ConfigError, parse_config
from sdaas.props import cluster_props

MINIMAL = {"runtimes": [{"name": "sdruntime", "type": "sdwebui"}]}


def test_configuration_defaults_are_the_library_defaults():
    from_file = cluster_props(parse_config(MINIMAL))
    library = GpuEksClusterProps()
    for field in ("cloudwatch_observability_version", "container_log_retention_days",
                  "system_node_instance_type", "system_node_desired_size",
                  "system_node_volume_gib", "effective_system_node_ami_type"):
        assert getattr(from_file, field) == getattr(library, field), field
    assert from_file.vpc.nat_gateways == NewVpcProps().nat_gateways == "single"
    assert from_file.vpc.interface_endpoints == NewVpcProps().interface_endpoints == ()


def test_false_turns_observability_off():
    config = parse_config({**MINIMAL, "cluster": {"cloudwatch_observability_version": False}})
    assert cluster_props(config).cloudwatch_observability_version is None


@pytest.mark.parametrize("value", ["latest", "6.2.0", True, None])
def test_an_unpinned_observability_version_is_refused_with_its_path(value):
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, "cluster": {"cloudwatch_observability_version": value}})
    assert any(p.startswith("cluster.cloudwatch_observability_version")
               for p in info.value.problems), info.value.problems


def _agent_lines() -> tuple[str, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        logs.setup()
        logs.emit_metrics("SdAsync/QueueAgent", {"Runtime": "sdruntime"},
                          {"TasksCompleted": 1.0}, {"TasksCompleted": "Count"})
        logs.event("task_finished", task_id="t1", note='"_aws" mentioned in a field')
    emf, event = out.getvalue().splitlines()
    return emf, event


def test_the_pipeline_keeps_embedded_metric_lines_only():
    emf, event = _agent_lines()
    assert "_aws" in json.loads(emf) and "_aws" not in json.loads(event)
    assert re.search(EMF_LINE_REGEX, emf)
    assert not re.search(EMF_LINE_REGEX, event)


def test_the_pipeline_ships_lines_unchanged_as_emf_to_its_own_group():
    config = cloudwatch_observability_configuration()
    pipeline = config["containerLogs"]["fluentBit"]["config"]["extraFiles"][EMF_PIPELINE_FILE]
    settings = {}
    for line in pipeline.splitlines():
        if line.startswith("    "):
            key, _, value = line.strip().partition(" ")
            settings.setdefault(key, []).append(value.strip())
    assert settings["Regex"] == [f"log {EMF_LINE_REGEX}"]
    assert settings["log_key"] == ["log"]  # the line itself, not Fluent Bit's record
    assert settings["log_format"] == ["json/emf"]
    assert settings["auto_create_group"] == ["false"]  # Terraform created it
    assert settings["log_group_name"] == [
        container_log_group_name("${CLUSTER_NAME}", "emf")]
