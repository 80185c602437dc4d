"""Make real Terraform plans (``terraform show -json``) from the configurations in fixtures/.

Used by the tests (the builtin-provider plans are regenerated live when terraform is on the
PATH) and by ``record_fixtures.py``, which writes the recorded copies in fixtures/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

# An empty state with one output, read by data.terraform_remote_state.network.
NETWORK_STATE = {
    "version": 4,
    "terraform_version": "1.11.4",
    "serial": 1,
    "lineage": "3b1f0c52-network-fixture",
    "outputs": {"vpc_id": {"value": "vpc-0123456789abcdef0", "type": "string"}},
    "resources": [],
    "check_results": None,
}


def terraform_binary() -> str | None:
    return shutil.which("terraform")


def terraform_env(cli_config: Path | None = None) -> dict[str, str]:
    """The environment for terraform: no update check, no prompts, no colour."""
    env = dict(os.environ)
    env.update({"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
    if cli_config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(cli_config)
    return env


def terraform(workdir: Path, *args: str, env: dict[str, str]) -> str:
    binary = terraform_binary()
    if binary is None:
        raise RuntimeError("terraform is not on the PATH")
    result = subprocess.run(
        [binary, *args, "-no-color"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"terraform {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result.stdout


def show_plan(workdir: Path, *plan_args: str, env: dict[str, str]) -> dict[str, Any]:
    terraform(workdir, "plan", "-input=false", "-out=plan.out", *plan_args, env=env)
    binary = terraform_binary()
    assert binary is not None
    shown = subprocess.run(
        [binary, "show", "-json", "plan.out"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(shown.stdout)


def builtin_plans(workdir: Path) -> dict[str, dict[str, Any]]:
    """Plans over terraform_data only (no provider download): a no-change and a mixed plan.

    Applies fixtures/builtin/v1, plans it again (no changes), taints one resource, then
    plans fixtures/builtin/v2 against that state.
    """
    env = terraform_env()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "network.tfstate").write_text(json.dumps(NETWORK_STATE))
    shutil.copy(FIXTURES / "builtin" / "v1" / "main.tf", workdir / "main.tf")
    terraform(workdir, "init", "-input=false", env=env)
    terraform(workdir, "apply", "-input=false", "-auto-approve", env=env)
    plans = {"builtin-nochange": show_plan(workdir, env=env)}
    terraform(workdir, "taint", "terraform_data.tainted", env=env)
    shutil.copy(FIXTURES / "builtin" / "v2" / "main.tf", workdir / "main.tf")
    plans["builtin-mixed"] = show_plan(workdir, env=env)
    return plans


def aws_plans(workdir: Path, plugin_mirror: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    """Plans with the real AWS provider against a moto server at ``endpoint``.

    Applies fixtures/aws with gen=1, plans it again (no changes, only moto's refresh noise
    as drift), then plans gen=2 with ``-replace=aws_ecr_repository.agent``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cli_config = workdir / "cli.tfrc"
    cli_config.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(plugin_mirror))}\n"
        '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
    )
    env = terraform_env(cli_config)
    shutil.copy(FIXTURES / "aws" / "main.tf", workdir / "main.tf")
    endpoint_var = f"-var=endpoint={endpoint}"
    terraform(workdir, "init", "-input=false", env=env)
    terraform(workdir, "apply", "-input=false", "-auto-approve", endpoint_var, env=env)
    return {
        "aws-nochange": show_plan(workdir, endpoint_var, env=env),
        "aws-replace": show_plan(
            workdir, endpoint_var, "-var=gen=2", "-replace=aws_ecr_repository.agent", env=env
        ),
    }
