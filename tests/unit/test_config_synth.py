"""Whatever the configuration file holds, ``main.py`` synthesizes or lists the problems and
exits 2, never a traceback, each problem at a place of the file; and ``python -m
sdaas.config`` accepts exactly what synth accepts.

Hypothesis starts from the example configuration and mutates it: keys set to values of the
wrong type, out of range or contradicting other keys, keys removed, unknown keys added, chart
values passed through. Both entry points run in this process (the provider import is paid
once, by the ``synthesized`` fixture).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import main as synth_entry
from sdaas import config as config_module
from sdaas.config import EXAMPLE_CONFIG, Config

EXAMPLE = yaml.safe_load(EXAMPLE_CONFIG.read_text())
RUNTIME_NAMES = [r["name"] for r in EXAMPLE["runtimes"]]
# "  - <path> (line N): <message>"; a path is names, [index] and ["quoted key"].
PROBLEM_LINE = re.compile(r'^  - (\(top level\)|[\w-]+(\.[\w-]+|\[\d+\]|\["([^"\\]|\\.)*"\])*)'
                          r"( \(line \d+\))?: \S")


def _key_paths(model: type[BaseModel], prefix: tuple) -> Iterator[tuple]:
    """Every key the file may have, with list indexes and map keys the example uses."""
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        yield path
        annotation = field.annotation
        for arg in (annotation, *typing.get_args(annotation)):
            origin = typing.get_origin(arg)
            inner = typing.get_args(arg)[-1] if origin in (list, dict) else arg
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                continue
            if origin is list:
                for index in (0, 1):
                    yield from _key_paths(inner, (*path, index))
            elif origin is dict:
                for key in RUNTIME_NAMES:
                    yield from _key_paths(inner, (*path, key))
            else:
                yield from _key_paths(inner, path)


KEY_PATHS = sorted(set(_key_paths(Config, ())), key=str)

# Values near the rules: valid ones, ones just off, and ones of other types.
PLAUSIBLE = st.sampled_from([
    "1.35", "1.30", "1.99", "1.3", "5m", "0s", "720h", "Never", "g6", "m5", "p5", "g4ad",
    "us-west-2a", "eu-west-1", "eu-west-1a", "bottlerocket@latest", "bottlerocket@v1.54.0",
    "shared", "dedicated", "sdwebui", "comfyui", "nginx", "nginx:1.27", "repo@sha256:abc",
    "snap-0123456789abcdef0", "vpc-0abc12345", "10.0.0.0/16", "0.0.0.0/0", "../etc/passwd",
    "latest", "s3", "local", "arn:aws:sns:eu-west-1:123456789012:ops", "v1.20.4-eksbuild.2",
    "", " ", "sdruntime", "comfyui",
])
SCALARS = st.one_of(
    PLAUSIBLE,
    st.none(), st.booleans(),
    st.integers(min_value=-5, max_value=100_000),
    st.sampled_from([0, 1, 2, 29, 30, 31, 151, 299, 300, 301, 900, 43200, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(max_size=8),
    st.dates(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.one_of(PLAUSIBLE, st.text(max_size=6)), SCALARS, max_size=3),
)
CHART_VALUES = st.one_of(
    st.just({"terminationGracePeriodSeconds": 5000}),
    st.just({"agent": {"env": {"AGENT_HEARTBEAT_SECONDS": 400}}}),
    st.just({"serviceAccount": {"name": "other"}}),
    st.just({"runtme": {"image": {}}}),
    st.just({"runtime": {"resources": {"limits": {"memory": "20Gi"}}}}),
    st.just({"maxTaskSeconds": "ten"}),
    st.dictionaries(st.sampled_from(["replicas", "podLabels", "runtime", "agent", "x"]),
                    VALUES, max_size=2),
)


def _set(data: Any, path: tuple, value: Any) -> None:
    node = data
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return
            node = node[part]
        else:
            if not isinstance(node, dict):
                return
            node = node.setdefault(part, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node[path[-1]] = value


def _delete(data: Any, path: tuple) -> None:
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(KEY_PATHS))
        action = draw(st.sampled_from(["set", "set", "set", "delete", "unknown", "chart"]))
        if action == "set":
            _set(data, path, draw(VALUES))
        elif action == "delete":
            _delete(data, path)
        elif action == "unknown":
            _set(data, (*path[:-1], draw(st.sampled_from(["surprise", "max_replica"]))), 1)
        else:
            _set(data, ("runtimes", draw(st.integers(0, 1)), "chart_values"),
                 draw(CHART_VALUES))
    return data


def _is_a_place_in_the_file(path: tuple, data: Any) -> bool:
    """Every step of ``path`` is a list index, a key the file has there, a key the file may
    have there, or a key of a mapping whose keys are the user's (runtime names), anything
    below a mapping of free values (chart values)."""
    node: Any = data
    for end, part in enumerate(path):
        prefix = path[:end]
        kinds = [k for a in config_module._annotations_at(Config, prefix)[0]
                 for k in config_module._concrete(a)]
        if any(k is Any for k in kinds):
            return True
        own = isinstance(node, dict | list) and (part in node if isinstance(node, dict)
                                                  else isinstance(part, int))
        free = any(typing.get_origin(k) is dict for k in kinds)
        if not (own or free or part in config_module.keys_at(Config, prefix)):
            return False
        node = node[part] if own else None
    return True


def _run(entry: typing.Callable[[], int], file: Path, outdir: Path) -> tuple[int, str]:
    saved = {k: os.environ.get(k) for k in ("SD_CONFIG", "CDKTF_OUTDIR")}
    os.environ.update(SD_CONFIG=str(file), CDKTF_OUTDIR=str(outdir))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = entry()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return code, err.getvalue()


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("SD_CONFIG_EXAMPLES", "100")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(data=configurations())
def test_synth_succeeds_or_lists_problems_and_the_checker_agrees(synthesized, tmp_path, data):
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    synth_code, synth_err = _run(synth_entry.main, file, tmp_path / "out")
    check_code, check_err = _run(lambda: config_module.main([]), file, tmp_path / "out")
    event("synthesized" if synth_code == 0 else "problems listed")
    assert synth_code in (0, 2), synth_err
    assert check_code == synth_code, (synth_err, check_err)
    if synth_code == 2:
        assert synth_err == check_err
        document = config_module.read_yaml(file.read_text())
        for problem in config_module.problems_of(document):
            assert _is_a_place_in_the_file(problem.path, document.data), problem
        head, *problems = synth_err.rstrip("\n").split("\n")
        assert head == f"{file}: {len(problems)} problem(s) in the configuration:"
        for line in problems:
            assert PROBLEM_LINE.match(line), line
    else:
        assert (tmp_path / "out" / "stacks" / Config.model_validate(data).name /
                "cdk.tf.json").is_file()


def test_an_s3_state_backend_synthesizes_with_native_locking(synthesized, tmp_path):
    data = copy.deepcopy(EXAMPLE)
    data["state"] = {"backend": "s3", "bucket": "my-state", "use_lockfile": False}
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(data))
    code, err = _run(synth_entry.main, file, tmp_path / "out")
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "stacks" / "sdaas" / "cdk.tf.json").read_text())
    assert doc["terraform"]["backend"]["s3"] == {
        "bucket": "my-state", "key": "sd-async/terraform.tfstate", "region": "us-west-2",
        "encrypt": True, "use_lockfile": False}
