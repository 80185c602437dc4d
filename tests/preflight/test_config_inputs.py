"""`make preflight` derives its inputs from the configuration file."""

from __future__ import annotations

from sdaas.config import parse_config
from sdaas.preflight import inputs_from_config, main


def _config(**karpenter):
    return parse_config({
        "region": "eu-west-1",
        "karpenter": karpenter,
        "runtimes": [{"name": "sdruntime", "type": "sdwebui"},
                     {"name": "comfyui", "type": "comfyui"}],
    })


def test_dedicated_pools_add_up_and_families_are_the_union():
    inputs = inputs_from_config(_config(
        gpu={"instance_families": ["g6"], "spot_gpu_limit": 4, "on_demand_gpu_limit": 2},
        pools={"comfyui": {"instance_families": ["g6e", "g6"], "spot_gpu_limit": 1,
                           "on_demand_gpu_limit": 3}},
    ))
    assert inputs.region == "eu-west-1"
    assert inputs.instance_families == ("g6", "g6e")
    assert inputs.gpu_limit == 4 + 3
    assert inputs.spot and inputs.on_demand


def test_a_shared_pool_counts_once_and_spot_only_ignores_on_demand_limits():
    inputs = inputs_from_config(_config(
        pool_model="shared",
        gpu={"spot_gpu_limit": 5, "on_demand_gpu_limit": 9, "on_demand_fallback": False},
    ))
    assert inputs.gpu_limit == 5
    assert inputs.on_demand is False


def test_a_bad_config_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text("runtimes: []\nregion: nowhere\n")
    assert main(["--config", str(bad)]) == 2
    assert "runtimes" in capsys.readouterr().err
