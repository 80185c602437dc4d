"""The configuration file: where it comes from, typed parsing, errors in the user's words."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sdaas.config import (
    EXAMPLE_CONFIG,
    REPO_ROOT,
    Config,
    ConfigError,
    config_path,
    json_schema,
    load_config,
    parse_config,
)

MINIMAL = {"runtimes": [{"name": "sdruntime", "type": "sdwebui"}]}


def _problems(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config.yaml")
    return info.value.problems


def test_the_example_is_a_working_two_runtime_config():
    config = load_config(EXAMPLE_CONFIG)
    assert [(r.name, r.type) for r in config.runtimes] == [("sdruntime", "sdwebui"),
                                                          ("comfyui", "comfyui")]


def test_parsed_objects_are_frozen():
    config = parse_config(MINIMAL)
    with pytest.raises(Exception, match="frozen"):
        config.name = "other"  # type: ignore[misc]
    with pytest.raises(Exception, match="frozen"):
        config.runtimes[0].type = "comfyui"  # type: ignore[misc]


def test_every_problem_is_reported_with_its_path():
    problems = _problems({
        "name": "Bad_Name",
        "queue": {"max_receive_count": 0, "visibility_timout_seconds": 30},
        "runtimes": [{"name": "ok", "type": "sdwebui"}, {"name": "two", "type": "sdweb"}],
    })
    assert 'runtimes[1].type: must be one of sdwebui, comfyui (got "sdweb")' in problems
    assert "queue.visibility_timout_seconds: unknown key" in problems
    assert any(p.startswith("queue.max_receive_count: ") for p in problems)
    assert any(p.startswith("name: must be 2-20 characters") for p in problems)
    assert len(problems) == 4


def test_missing_and_duplicate_runtimes():
    assert _problems({}) == ["runtimes: is required"]
    dup = _problems({"runtimes": [{"name": "aa", "type": "sdwebui"},
                                  {"name": "aa", "type": "comfyui"}]})
    assert any('runtime name "aa" is used twice' in p for p in dup)


def test_a_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(listed)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml")


def test_sd_config_then_config_yaml_then_the_example(tmp_path, monkeypatch):
    monkeypatch.delenv("SD_CONFIG", raising=False)
    assert config_path(tmp_path) == EXAMPLE_CONFIG
    (tmp_path / "config.yaml").write_text("runtimes: []\n")
    assert config_path(tmp_path) == tmp_path / "config.yaml"
    monkeypatch.setenv("SD_CONFIG", str(tmp_path / "mine.yaml"))
    assert config_path(tmp_path) == tmp_path / "mine.yaml"


def test_state_path_must_stay_inside_the_stack_directory():
    problems = _problems({**MINIMAL, "state": {"backend": "local", "path": "/abs/state"}})
    assert problems == ['state.path: must be a relative path inside the stack directory '
                        '(got "/abs/state")']


def test_json_schema_rejects_unknown_keys_like_the_loader():
    import jsonschema

    schema = json_schema()
    jsonschema.validate(json.loads(json.dumps(MINIMAL)), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**MINIMAL, "surprise": 1}, schema)
    assert schema["properties"]["lambda"]  # the file's own spelling, not the field name


def test_main_prints_every_problem_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runtimes:\n  - name: x1\n    type: sdweb\n")
    proc = subprocess.run([sys.executable, "-m", "sdaas.config"], cwd=REPO_ROOT,
                          env={"SD_CONFIG": str(bad), "PATH": ""}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert 'runtimes[0].type: must be one of sdwebui, comfyui (got "sdweb")' in proc.stderr


def test_defaults_give_a_working_config():
    config = Config.model_validate(MINIMAL)
    assert config.queue.max_receive_count >= 1
    assert config.api.rate_limit_per_second == 30 and config.api.burst_limit == 50
