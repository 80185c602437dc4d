"""The project's local Helm charts as Terraform assets of the stack."""

from __future__ import annotations

from constructs_lib._cdktf import (
    AssetType,
    Construct,
    TerraformAsset,
    TerraformStack,
)
from constructs_lib.assets import chart_dir


def local_chart(scope: Construct, chart: str) -> str:
    """Relative path (``assets/...``) of ``charts/<chart>`` in the synthesized stack.

    One asset per chart and stack, whatever the number of releases using it. The asset's
    path depends only on the chart's contents, so the synthesized JSON is byte-stable and
    a chart change rolls out to every release of it.
    """
    stack = TerraformStack.of(scope)
    asset_id = "Chart-" + "".join(part.capitalize() for part in chart.split("-"))
    asset = stack.node.try_find_child(asset_id)
    if asset is None:
        asset = TerraformAsset(stack, asset_id, path=str(chart_dir(chart)),
                               type=AssetType.DIRECTORY)
    return asset.path
