"""The only module that imports the CDKTF framework (STYLE 10).

Everything else imports these names from here, so moving to a fork of CDKTF is a one-file
change. jsii's Node.js version banner is silenced here, before the runtime starts.
"""

from __future__ import annotations

import os

# jsii reads these as comma-separated lists of Node.js major versions to stay quiet about.
_NODE_MAJORS = ",".join(str(v) for v in range(14, 40))
for _kind in ("END_OF_LIFE", "DEPRECATED", "UNTESTED"):
    os.environ.setdefault(f"JSII_SILENCE_WARNING_{_kind}_NODE_VERSION", _NODE_MAJORS)

from cdktf import (  # noqa: E402
    Annotations,
    App,
    AssetType,
    Fn,
    LocalBackend,
    LocalExecProvisioner,
    S3Backend,
    TerraformAsset,
    TerraformElement,
    TerraformLocal,
    TerraformOutput,
    TerraformResource,
    TerraformResourceLifecycle,
    TerraformStack,
    TerraformVariable,
    Testing,
    Token,
)
from constructs import Construct, IConstruct  # noqa: E402

__all__ = [
    "Annotations",
    "App",
    "AssetType",
    "Construct",
    "Fn",
    "IConstruct",
    "LocalBackend",
    "LocalExecProvisioner",
    "S3Backend",
    "TerraformAsset",
    "TerraformElement",
    "TerraformLocal",
    "TerraformOutput",
    "TerraformResource",
    "TerraformResourceLifecycle",
    "TerraformStack",
    "TerraformVariable",
    "Testing",
    "Token",
]
