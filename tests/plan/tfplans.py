"""Make real Terraform plans (``terraform show -json``) from the configurations in fixtures/.

Used by the tests (the builtin-provider plans are regenerated live when terraform is on the
PATH) and by ``record_fixtures.py``, which writes the recorded copies in fixtures/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sdaas.terraform import Terraform

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


def show_plan(tf: Terraform, *plan_args: str) -> dict[str, Any]:
    tf.run("plan", "-input=false", "-out=plan.out", *plan_args)
    return json.loads(tf.run("show", "-json", "plan.out").stdout)


def builtin_plans(workdir: Path) -> dict[str, dict[str, Any]]:
    """Plans over terraform_data only (no provider download): a no-change and a mixed plan.

    Applies fixtures/builtin/v1, plans it again (no changes), taints one resource, then
    plans fixtures/builtin/v2 against that state.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "network.tfstate").write_text(json.dumps(NETWORK_STATE))
    shutil.copy(FIXTURES / "builtin" / "v1" / "main.tf", workdir / "main.tf")
    tf = Terraform(workdir)
    tf.init()
    tf.run("apply", "-input=false", "-auto-approve")
    plans = {"builtin-nochange": show_plan(tf)}
    tf.run("taint", "terraform_data.tainted")
    shutil.copy(FIXTURES / "builtin" / "v2" / "main.tf", workdir / "main.tf")
    plans["builtin-mixed"] = show_plan(tf)
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
    shutil.copy(FIXTURES / "aws" / "main.tf", workdir / "main.tf")
    tf = Terraform(workdir, env={**os.environ, "TF_CLI_CONFIG_FILE": str(cli_config)})
    endpoint_var = f"-var=endpoint={endpoint}"
    tf.init()
    tf.run("apply", "-input=false", "-auto-approve", endpoint_var)
    return {
        "aws-nochange": show_plan(tf, endpoint_var),
        "aws-replace": show_plan(
            tf, endpoint_var, "-var=gen=2", "-replace=aws_ecr_repository.agent"
        ),
    }
