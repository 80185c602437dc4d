"""Destroy-time steps: ordered work Terraform runs while it tears the stack down.

Each step is a ``terraform_data`` resource with a ``when = destroy`` local-exec
provisioner that runs one script of ``scripts/`` (shipped as a stack asset). A step is
placed in the dependency graph like any resource: what depends on the step is destroyed
before the step runs, what the step depends on is destroyed after. Scripts use only bash
and the AWS CLI (which the Helm provider's token command needs anyway).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from constructs_lib._cdktf import (
    AssetType,
    Construct,
    LocalExecProvisioner,
    TerraformAsset,
    TerraformResource,
    TerraformStack,
)
from constructs_lib.assets import TEARDOWN_SCRIPTS_DIR, teardown_script

_ASSET_ID = "TeardownScripts"


def _scripts_path(scope: Construct) -> str:
    stack = TerraformStack.of(scope)
    asset = stack.node.try_find_child(_ASSET_ID)
    if asset is None:
        asset = TerraformAsset(stack, _ASSET_ID, path=str(TEARDOWN_SCRIPTS_DIR),
                               type=AssetType.DIRECTORY)
    return asset.path


def destroy_step(scope: Construct, id_: str, *, script: str, args: Mapping[str, str],
                 depends_on: Sequence[TerraformResource] = ()) -> TerraformResource:
    """A resource that runs ``scripts/<script> <args...>`` when Terraform destroys it.

    ``args`` (name → value, tokens allowed) are stored in the resource's ``input`` and read
    back from state at destroy time (a destroy provisioner may only refer to ``self``); the
    script path comes from the current configuration, so a re-synthesized stack with a
    changed script still runs the current one.
    """
    teardown_script(script)  # fails early, naming the script, when it does not exist
    step = TerraformResource(
        scope, id_,
        terraform_resource_type="terraform_data",
        depends_on=list(depends_on) or None,
        provisioners=[LocalExecProvisioner(
            type="local-exec",
            when="destroy",
            command=" ".join(
                ["bash", f"{_scripts_path(scope)}/{script}"]
                + [f'"${{self.input.{name}}}"' for name in args]
            ),
        )],
    )
    step.add_override("input", dict(args))
    return step
