"""The configuration file: where it comes from, typed parsing, errors in the user's words.

Every wrong configuration below once ended in a Python traceback at synth or synthesized
silently; each must now be refused when the file is loaded, at its path and line.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sdaas.config import (
    EXAMPLE_CONFIG,
    REPO_ROOT,
    Config,
    ConfigError,
    config_path,
    json_schema,
    keys_at,
    load_config,
    parse_config,
    read_yaml,
)

MINIMAL = {"runtimes": [{"name": "sdruntime", "type": "sdwebui"}]}
EXAMPLE = yaml.safe_load(EXAMPLE_CONFIG.read_text())


def _problems(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config.yaml")
    return info.value.problems


def _load_problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "config.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert info.value.source == str(file)
    return info.value.problems


def _example(edit: Callable[[dict[str, Any]], object]) -> str:
    data = copy.deepcopy(EXAMPLE)
    edit(data)
    return yaml.safe_dump(data, sort_keys=False)


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
    assert ("queue.visibility_timout_seconds: unknown key (did you mean "
            "visibility_timeout_seconds?)") in problems
    assert any(p.startswith("queue.max_receive_count: ") for p in problems)
    assert any(p.startswith("name: must be 2-20 characters") for p in problems)
    assert len(problems) == 4


def test_unknown_keys_suggest_the_nearest_key_of_their_section():
    problems = _problems({**MINIMAL, "karpenter": {"pools": {"sdruntime": {
        "instance_familes": ["g6"]}}, "gpu": {"disruption_budgets": [{"node": "1"}]}},
        "lambda": {"memory": 512}, "surprise": 1})
    assert ("karpenter.pools.sdruntime.instance_familes: unknown key (did you mean "
            "instance_families?)") in problems
    assert ("karpenter.gpu.disruption_budgets[0].node: unknown key (did you mean nodes?)"
            in problems)
    assert "lambda.memory: unknown key (did you mean memory_mb?)" in problems
    assert "surprise: unknown key" in problems


def test_keys_that_are_not_plain_names_are_quoted_in_paths():
    problems = _problems({**MINIMAL, "alarms": {"nginx:1.27": None},
                          "tags": {"aws:team": "x"}, "cluster": {"addons": {"a.b": "1"}}})
    assert 'alarms["nginx:1.27"]: unknown key' in problems
    assert any(p.startswith("tags: ") for p in problems)


def test_missing_and_duplicate_runtimes():
    assert _problems({}) == ["runtimes: is required"]
    dup = _problems({"runtimes": [{"name": "aa", "type": "sdwebui"},
                                  {"name": "aa", "type": "comfyui"}]})
    assert dup == ['runtimes[1].name: "aa" is already the name of runtimes[0]: every runtime '
                   "needs its own name"]


def test_a_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(listed)
    broken = tmp_path / "broken.yaml"
    broken.write_text("region: us-west-2\nname: [unclosed\n")
    with pytest.raises(ConfigError) as error:
        load_config(broken)
    assert error.value.problems == [
        "not valid YAML at line 3, column 1: while parsing a flow sequence: expected ',' or "
        "']', but got '<stream end>'"]
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("name: !!python/object:os.system x\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 1, column 7: could not "
                                          "determine a constructor for the tag"):
        load_config(tagged)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(binary)


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


def test_main_prints_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runtimes:\n  - name: x1\n    type: sdweb\n")
    proc = subprocess.run([sys.executable, "-m", "sdaas.config"], cwd=REPO_ROOT,
                          env={"SD_CONFIG": str(bad), "PATH": ""}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert ('runtimes[0].type (line 3): must be one of sdwebui, comfyui (got "sdweb")'
            in proc.stderr)
    assert "Traceback" not in proc.stderr


def test_defaults_give_a_working_config():
    config = Config.model_validate(MINIMAL)
    assert config.queue.max_receive_count >= 1
    assert config.api.rate_limit_per_second == 30 and config.api.burst_limit == 50
    assert parse_config(MINIMAL).runtimes[0].name == "sdruntime"


# --- the file as written: lines, duplicate keys, numbers YAML made of text -----------------


def test_problems_carry_the_line_of_their_key(tmp_path):
    problems = _load_problems(tmp_path, (
        "name: sdaas\n"
        "queue:\n"
        "  max_receive_count: 0\n"
        "runtimes:\n"
        "  - name: sdruntime\n"
        "    type: sdwebui\n"
        "  - name: comfy\n"
        "    type: sdweb\n"))
    assert problems[0].startswith("queue.max_receive_count (line 3): ")
    assert problems[1] == ('runtimes[1].type (line 8): must be one of sdwebui, comfyui '
                           '(got "sdweb")')


def test_a_key_given_twice_is_refused_at_both_lines(tmp_path):
    problems = _load_problems(tmp_path, (
        "name: sdaas\n"
        "runtimes:\n"
        "  - name: sdruntime\n"
        "    type: sdwebui\n"
        "    max_replicas: 2\n"
        "    max_replicas: 3\n"
        "name: other\n"))
    assert problems == [
        "runtimes[0].max_replicas (line 6): duplicate key (first on line 5): YAML would keep "
        "only the last value; remove one",
        "name (line 7): duplicate key (first on line 1): YAML would keep only the last value; "
        "remove one",
    ]


def test_aliases_and_merge_keys_are_not_duplicates():
    document = read_yaml("base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\nagain: *b\n")
    assert document.problems == ()
    assert document.data["merged"] == {"x": 1, "y": 2}
    assert document.lines[("merged", "y")] == 4


def test_an_unquoted_kubernetes_version_gets_a_hint_to_quote_it(tmp_path):
    text = EXAMPLE_CONFIG.read_text().replace('kubernetes_version: "1.35"',
                                              "kubernetes_version: 1.30")
    problems = _load_problems(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith("cluster.kubernetes_version (line ")
    assert problems[0].endswith('must be text: YAML read the unquoted 1.30 as 1.3; quote it: '
                                '"1.30"')


def test_a_date_where_text_belongs_and_an_alias_cycle_are_problems_not_crashes(tmp_path):
    problems = _load_problems(tmp_path, "name: 2024-01-01\nruntimes: &r [{name: sdruntime, "
                                        "type: sdwebui, models: *r}]\n")
    assert problems == [
        'name (line 1): must be text: YAML read the unquoted 2024-01-01 as "2024-01-01"; '
        'quote it: "2024-01-01"',
        "runtimes[0].models[0] (line 2): input should be a valid string (got <a value that "
        "contains itself>)",
    ]


def test_other_text_keys_given_as_numbers_get_the_quoted_spelling(tmp_path):
    text = EXAMPLE_CONFIG.read_text().replace('agent_image_tag: "0.1.0"', "agent_image_tag: 1.10",
                                              1)
    problems = _load_problems(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].endswith('must be text: YAML read the unquoted 1.10 as 1.1; quote it: '
                                '"1.10"')


# --- mistakes that once reached synth --------------------------------------------------------

CASES: dict[str, tuple[Callable[[dict[str, Any]], object], str, list[str]]] = {
    # name: (edit of the example, path of the problem, words its message must hold)
    "unknown kubernetes version": (
        lambda d: d["cluster"].update(kubernetes_version="1.99"),
        "cluster.kubernetes_version",
        ["Kubernetes 1.99", "use one of 1.29, 1.30", "1.36"]),
    "pools naming no runtime": (
        lambda d: d["karpenter"].update(pools={"sdruntme": {"spot_gpu_limit": 2}}),
        "karpenter.pools.sdruntme",
        ["names no runtime", "did you mean sdruntime?", "runtimes: sdruntime, comfyui"]),
    "max_replicas above the pool's GPUs": (
        lambda d: d["runtimes"][0].update(max_replicas=13),
        "runtimes[0].max_replicas",
        ["max_replicas (13)", "GPU limit of pool 'sdruntime' (12)", "spot_gpu_limit"]),
    "heartbeat longer than half the visibility timeout": (
        lambda d: d["runtimes"][1].update(heartbeat_seconds=151),
        "runtimes[1].heartbeat_seconds",
        ["at most half the visibility timeout", "queue.visibility_timeout_seconds"]),
    "unknown add-on name": (
        lambda d: d["cluster"]["addons"].update({"vpc-cin": "v1.20.4-eksbuild.2"}),
        "cluster.addons.vpc-cin",
        ["no such add-on", "did you mean vpc-cni?", "metrics-server"]),
    "invalid runtime image reference": (
        lambda d: d["runtimes"][1].update(image="nginx"),
        "runtimes[1].image",
        ["'nginx' needs a tag or digest"]),
    "shared pool with per-runtime pools": (
        lambda d: d["karpenter"].update(pool_model="shared",
                                        pools={"comfyui": {"spot_gpu_limit": 2}}),
        "karpenter.pools.comfyui",
        ["pool_model: dedicated"]),
    "zones of another region": (
        lambda d: d.update(region="eu-west-1"),
        "cluster.vpc.availability_zones[0]",
        ['"us-west-2a" is not a zone of region eu-west-1', "eu-west-1a"]),
    "a non-GPU instance family": (
        lambda d: d["karpenter"]["gpu"].update(instance_families=["g6", "m5"]),
        "karpenter.gpu.instance_families",
        ['"m5" instances have no NVIDIA GPU', "g6e"]),
    "a non-GPU family in one runtime's pool": (
        lambda d: d["karpenter"].update(pools={"comfyui": {"instance_families": ["c7i"]}}),
        "karpenter.pools.comfyui.instance_families",
        ['"c7i" instances have no NVIDIA GPU']),
    "a model name with a path": (
        lambda d: d["runtimes"][0].update(models=["ok.safetensors", "../etc/passwd"]),
        "runtimes[0].models[1]",
        ['"../etc/passwd" is not a checkpoint file name']),
    "a typo inside chart values": (
        lambda d: d["runtimes"][0].update(chart_values={"runtime": {"extraArg": "--x"}}),
        "runtimes[0].chart_values.runtime.extraArg",
        ["no such value", "did you mean extraArgs?"]),
    "a chart value of the wrong type": (
        lambda d: d["runtimes"][0].update(chart_values={"replicas": "two"}),
        "runtimes[0].chart_values.replicas",
        ["'two' is not of type 'integer'"]),
    "a pod grace period beyond the pool's drain": (
        lambda d: d["runtimes"][0].update(termination_grace_period_seconds=901),
        "runtimes[0].termination_grace_period_seconds",
        ["(901 s) must be <= the terminationGracePeriod of pool 'sdruntime' (900 s)",
         "karpenter.gpu.termination_grace_period"]),
    "a drain bound shorter than a runtime's tasks": (
        lambda d: d["karpenter"]["gpu"].update(termination_grace_period="10m"),
        "karpenter.gpu.termination_grace_period",
        ["shorter than runtime sdruntime's longest task", "use at least 15m"]),
    "chart values overriding the grace period": (
        lambda d: d["runtimes"][1].update(chart_values={"terminationGracePeriodSeconds": 5000}),
        "runtimes[1].chart_values.terminationGracePeriodSeconds",
        ["(5000 s) must be <= the terminationGracePeriod"]),
    "Karpenter replicas without system nodes for them": (
        lambda d: d["cluster"]["system_node_group"].update(desired_size=1),
        "cluster.system_node_group.desired_size",
        ["2 Karpenter replicas", "system node group has 1",
         "raise cluster.system_node_group.desired_size to 2"]),
    "a Karpenter chart too old for the Kubernetes version": (
        lambda d: d["karpenter"].update(chart_version="1.8.0"),
        "karpenter.chart_version",
        ["1.8.0 does not support Kubernetes 1.35", "1.9.0 or later"]),
    "a log retention CloudWatch does not offer": (
        lambda d: d.update({"lambda": {"log_retention_days": 31}}),
        "lambda.log_retention_days",
        ["CloudWatch's periods", "got 31"]),
    "an alarm topic in another region": (
        lambda d: d.update(alarms={"topic_arn": "arn:aws:sns:eu-west-1:123456789012:ops"}),
        "alarms.topic_arn",
        ["in eu-west-1 but the stack in us-west-2"]),
    "an image repository with a space": (
        lambda d: d["runtimes"][0].update(agent_image="my repo:1.0"),
        "runtimes[0].agent_image",
        ["'my repo' is not a repository"]),
    "a disruption budget schedule that is not cron": (
        lambda d: d["karpenter"]["gpu"].update(
            disruption_budgets=[{"nodes": "1", "schedule": "weekdays", "duration": "8h"}]),
        "karpenter.gpu.disruption_budgets[0].schedule",
        ['must be a cron schedule like "0 9 * * 1-5"']),
    "an S3 state bucket name S3 refuses": (
        lambda d: d.update(state={"backend": "s3", "bucket": "My State"}),
        "state.bucket",
        ['must look like "my-terraform-state" (got "My State"; the pattern is ^[a-z0-9]']),
    "a region spelled wrong": (
        lambda d: d.update(region="mars-1"),
        "region",
        ['must look like "us-west-2" (got "mars-1"']),
    "a subnet id of an existing VPC spelled wrong": (
        lambda d: d["cluster"].update(vpc=None, existing_vpc={
            "vpc_id": "vpc-0123456789abcdef0",
            "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-12"]}),
        "cluster.existing_vpc.private_subnet_ids[1]",
        ['must look like "subnet-0123456789abcdef0" (got "subnet-12"']),
    "an agent visibility timeout in chart values below twice the heartbeat": (
        lambda d: d["runtimes"][0].update(
            chart_values={"agent": {"env": {"AGENT_VISIBILITY_TIMEOUT_SECONDS": 40}}}),
        "runtimes[0].chart_values.agent.env.AGENT_VISIBILITY_TIMEOUT_SECONDS",
        ["at most half the visibility timeout the agent sets (40 s)"]),
    "a heartbeat given as text in chart values": (
        lambda d: d["runtimes"][0].update(
            chart_values={"agent": {"env": {"AGENT_HEARTBEAT_SECONDS": "soon"}}}),
        "runtimes[0].chart_values.agent.env",
        ["must be numbers (got 'soon' and 300)"]),
    "a scaling target of millions of messages per replica": (
        lambda d: d["runtimes"][0].update(seconds_per_image=0.00001),
        "runtimes[0]",
        ["makes more than 100000 messages per replica"]),
    "observability turned on with true": (
        lambda d: d["cluster"].update(cloudwatch_observability_version=True),
        "cluster.cloudwatch_observability_version",
        ["a pinned add-on version like v6.2.0-eksbuild.1, or false (got true)"]),
    "tags AWS refuses": (
        lambda d: d.update(tags={"aws:team": "x", "team": "x" * 257}),
        "tags",
        ['"aws:team" uses the reserved prefix aws:',
         '"team" is longer than AWS allows (key 128, value 256 characters)']),
    "an add-on version for another Kubernetes": (
        lambda d: d["cluster"].update(kubernetes_version="1.34"),
        "cluster.addons.kube-proxy",
        ["does not match kubernetes_version 1.34"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_is_refused_at_its_key(tmp_path, case):
    edit, path, words = CASES[case]
    problems = _load_problems(tmp_path, _example(edit))
    found = [p for p in problems if p.startswith(f"{path} (line ")]
    assert found, f"no problem at {path}: {problems}"
    for word in words:
        assert word in found[0], found[0]


def test_every_cross_construct_problem_is_reported_in_one_run(tmp_path):
    def edit(data):
        data["region"] = "eu-west-1"
        data["cluster"]["kubernetes_version"] = "1.99"
        data["cluster"]["addons"]["vpc-cin"] = "v1.0.0-eksbuild.1"
        data["lambda"] = {"log_retention_days": 2}
        data["runtimes"][0].update(max_replicas=40, heartbeat_seconds=200, image="nginx")
        data["runtimes"][1].update(max_replicas=30, chart_values={"runtme": {}})

    problems = _load_problems(tmp_path, _example(edit))
    paths = [p.split(" (line")[0] for p in problems]
    for expected in ("cluster.vpc.availability_zones[0]", "cluster.kubernetes_version",
                     "cluster.addons.vpc-cin", "cluster.addons.kube-proxy",
                     "lambda.log_retention_days", "runtimes[0].image",
                     "runtimes[1].max_replicas", "runtimes[1].chart_values.runtme"):
        assert expected in paths, problems


def test_stack_name_reads_the_name_without_the_cross_checks(tmp_path):
    text = _example(lambda d: d["runtimes"][0].update(max_replicas=50))
    file = tmp_path / "config.yaml"
    file.write_text(text)
    assert load_config(file, cross_checks=False).runtimes[0].max_replicas == 50
    with pytest.raises(ConfigError, match="max_replicas"):
        load_config(file)


def test_the_readme_shows_what_the_checker_prints(tmp_path):
    readme = (REPO_ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    shown = [[line[4:] for line in block.splitlines() if line.startswith("  - ")]
             for block in readme.split("```")[1:4:2]]
    example = EXAMPLE_CONFIG.read_text()
    each_key = (example.replace("  max_receive_count: 3", "  max_receive_count: 0")
                .replace('kubernetes_version: "1.35"', "kubernetes_version: 1.30"))
    between = (example.replace("    max_replicas: 4", "    max_replicas: 20", 1)
               .replace("[us-west-2a, us-west-2b, us-west-2c]",
                        "[us-west-2a, us-west-2b, us-east-1c]"))
    assert shown == [_load_problems(tmp_path, each_key), _load_problems(tmp_path, between)]


def test_every_props_field_the_file_sets_has_a_key_for_its_problems():
    """A props field added later must be placed (or said not to come from the file)."""
    import dataclasses

    from constructs_lib.cluster import GpuEksClusterProps
    from constructs_lib.ingress import ServerlessIngressProps
    from constructs_lib.karpenter import KarpenterGpuPoolProps
    from constructs_lib.keda import KedaSqsScalerProps, RuntimeScaling
    from constructs_lib.runtime import ModelBucketProps, SdRuntimeProps
    from sdaas import checks

    runtime = checks._runtime_fields(0)
    for props, fields, not_from_the_file in (
        (ServerlessIngressProps, checks._INGRESS_FIELDS, {"manage_api_gateway_account",
                                                          "webhook_max_attempts"}),
        (GpuEksClusterProps, checks._CLUSTER_FIELDS,
         {"enabled_cluster_log_types", "system_node_ami_type"}),
        (KarpenterGpuPoolProps, checks._KARPENTER_FIELDS, {"runtimes", "soci_parallel_pull"}),
        (KedaSqsScalerProps, checks._KEDA_FIELDS, {"namespace", "helm_timeout_seconds",
                                                   "values", "tags"}),
        (ModelBucketProps, checks._MODEL_BUCKET_FIELDS,
         {"bucket_name", "noncurrent_version_expiration_days", "tags"}),
        (SdRuntimeProps, runtime, {"namespace", "service_account", "shutdown_margin_seconds",
                                   "scaling", "scaler_values", "helm_timeout_seconds",
                                   "tags"}),
        (RuntimeScaling, runtime, {"activation_queue_length", "polling_interval_seconds"}),
    ):
        names = {f.name for f in dataclasses.fields(props)}
        assert names - set(fields) == not_from_the_file, props.__name__
        for path in (fields[name] for name in names & set(fields)):
            assert path[-1] in keys_at(Config, path[:-1]), path  # a key the file has
