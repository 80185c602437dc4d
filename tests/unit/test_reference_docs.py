"""docs/reference.md is generated from the code and must be current (`make docs`)."""

from __future__ import annotations

from sdaas.docs import REFERENCE, reference


def test_reference_is_current(synthesized):
    expected = reference(synthesized.doc)
    assert REFERENCE.read_text() == expected, (
        "docs/reference.md is out of date: run `make docs` and commit the result")


def test_reference_lists_every_config_section_construct_and_output(synthesized):
    text = reference(synthesized.doc)
    for key in ("`runtimes[].type`", "`queue.max_receive_count`", "`cluster.kubernetes_version`",
                "`karpenter.chart_version`", "`keda.chart_version`"):
        assert key in text
    for construct in ("ServerlessIngress", "GpuEksCluster", "KarpenterGpuPool",
                      "KedaSqsScaler", "SdRuntime"):
        assert f"### `{construct}`" in text
    for output in synthesized.doc["output"]:
        assert f"| `{output}` |" in text
