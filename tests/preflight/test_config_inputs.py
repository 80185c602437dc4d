"""`make preflight` derives its inputs from the configuration file."""

from __future__ import annotations

import pytest
import yaml

from sdaas import preflight
from sdaas.config import EXAMPLE_CONFIG, parse_config
from sdaas.preflight import CheckResult, Status, inputs_from_config, main, render_report


def _config(**karpenter):
    return parse_config({
        "region": "eu-west-1",
        "karpenter": karpenter,
        "runtimes": [{"name": "sdruntime", "type": "sdwebui"},
                     {"name": "comfyui", "type": "comfyui"}],
    })


def test_dedicated_pools_add_up_per_capacity_type_and_families_are_the_union():
    inputs = inputs_from_config(_config(
        gpu={"instance_families": ["g6"], "spot_gpu_limit": 4, "on_demand_gpu_limit": 2},
        pools={"comfyui": {"instance_families": ["g6e", "g6"], "spot_gpu_limit": 1,
                           "on_demand_gpu_limit": 3}},
    ))
    assert inputs.region == "eu-west-1"
    assert inputs.instance_families == ("g6", "g6e")
    assert (inputs.gpus(spot=True), inputs.gpus(spot=False)) == (4 + 1, 2 + 3)
    assert inputs.total_gpus == 10  # each pool runs its spot and on-demand NodePools at once
    assert inputs.spot and inputs.on_demand


def test_a_shared_pool_counts_once_and_spot_only_ignores_on_demand_limits():
    inputs = inputs_from_config(_config(
        pool_model="shared",
        gpu={"spot_gpu_limit": 5, "on_demand_gpu_limit": 9, "on_demand_fallback": False},
    ))
    assert inputs.gpus(spot=True) == 5
    assert inputs.total_gpus == 5
    assert inputs.on_demand is False


def test_the_report_states_the_total_and_each_capacity_type():
    inputs = inputs_from_config(_config(gpu={"spot_gpu_limit": 8, "on_demand_gpu_limit": 4}))
    first = render_report(inputs, [CheckResult("credentials", Status.OK, "ok")]).splitlines()[0]
    assert first == ("Pre-flight checks for eu-west-1: GPU pool g6, g6e, g5 up to 24 GPUs "
                     "(16 spot, 8 on-demand) in every AZ")


def test_a_bad_config_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text("runtimes: []\nregion: nowhere\n")
    assert main(["--config", str(bad)]) == 2
    assert "runtimes" in capsys.readouterr().err


def test_help_names_the_config_option(capsys):
    assert main(["--help"]) == 0
    assert "--config [FILE]" in capsys.readouterr().out


@pytest.fixture
def checked(monkeypatch):
    """The inputs main() would check, without calling AWS."""
    seen = []

    def run_checks(inputs, clients=None):
        seen.append(inputs)
        return [CheckResult("credentials", Status.OK, "stand-in")]

    monkeypatch.setattr(preflight, "run_checks", run_checks)
    return seen


def test_config_without_a_file_name_then_other_options(tmp_path, monkeypatch, checked):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    del data["cluster"]["vpc"]["availability_zones"]
    data["cluster"]["vpc"]["az_count"] = 3
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("SD_CONFIG", str(mine))
    assert main(["--config", "--region", "eu-west-1", "--capacity-types", "spot"]) == 0
    assert main(["--config"]) == 0
    assert main(["--region", "us-east-1", "--config", str(mine), "--gpu-limit", "2"]) == 0
    overridden, plain, limited = checked
    assert (overridden.region, overridden.spot, overridden.on_demand) == ("eu-west-1", True,
                                                                          False)
    assert (plain.region, plain.total_gpus) == ("us-west-2", 2 * (8 + 4))
    assert (limited.region, limited.total_gpus) == ("us-east-1", 2 + 2)


def test_without_config_the_pool_options_are_required(capsys, checked):
    assert main(["--region", "us-west-2", "--instance-families", "g6"]) == 2
    assert "--gpu-limit required without --config" in capsys.readouterr().err
    assert checked == []
