"""docs/reference.md is generated from the code and must be current (`make docs`); every
key and prop has a meaning, defaults read as a user writes them; the README's outputs table
lists what the stack outputs."""

from __future__ import annotations

import re

import pytest

from sdaas.config import REPO_ROOT
from sdaas.docs import REFERENCE, attributes, config_reference, props_reference, reference


def _rows(text: str) -> list[list[str]]:
    """The cells of every table row whose first cell is a code span."""
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in text.splitlines() if line.startswith("| `")]


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


@pytest.mark.parametrize("table", [config_reference, props_reference])
def test_every_key_and_prop_has_a_meaning(table):
    rows = _rows(table())
    assert len(rows) > 80
    empty = [row[0] for row in rows if not row[3]]
    assert empty == [], f"rows without a meaning: {empty}"


@pytest.mark.parametrize("table", [config_reference, props_reference])
def test_defaults_read_as_written_not_as_python_reprs(table):
    for row in _rows(table()):
        default = row[2]
        assert default in ("(required)", "none", "(the keys below)", "a new VPC") or (
            default.startswith("`") and default.endswith("`")), row
        for python in ("None", "('", "Ellipsis", "True", "False", "MappingProxy", "{'"):
            assert python not in default, row
    text = table()
    assert "Ellipsis" not in text and ":class:" not in text


def test_defaults_are_spelled_like_the_file():
    rows = {row[0]: row for row in _rows(config_reference())}
    assert rows["`karpenter.gpu.instance_families`"][2] == "`[g6, g6e, g5]`"
    assert rows["`karpenter.gpu.consolidate_after`"][2] == '`"5m"`'
    assert rows["`karpenter.gpu.disruption_budgets`"][2] == '`[{nodes: "10%"}]`'
    assert rows["`alarms.topic_arn`"][2] == "none"
    assert rows["`cluster.vpc`"][2] == "a new VPC"
    props = {row[0]: row for row in _rows(props_reference())}
    assert props["`disruption_budgets`"][2] == '`[DisruptionBudget(nodes="10%")]`'
    assert props["`scaling`"][2] == "`RuntimeScaling()`"
    assert props["`vpc`"][1] == "NewVpcProps \\| ExistingVpcProps"
    assert "| `runtimes` | tuple[RuntimeSpec, ...] | (required) |" in props_reference()


def test_keys_of_lists_and_per_runtime_maps_are_spelled_as_in_the_file():
    keys = [row[0] for row in _rows(config_reference())]
    assert "`runtimes[].name`" in keys and "`runtimes.name`" not in keys
    assert "`karpenter.pools.<runtime>.instance_families`" in keys
    assert "`karpenter.pools.instance_families`" not in keys
    assert "`karpenter.gpu.disruption_budgets[].nodes`" in keys
    # Every key once, but state's, whose two backends share "backend".
    repeated = {k for k in keys if keys.count(k) > 1}
    assert repeated == {"`state.backend`"}


def test_attributes_blocks_read_continuation_lines():
    class Sample:
        """Something.

        Attributes:
            first: One line.
            second: Two
                lines.

        Example: not an attribute.
        """

    assert attributes(Sample) == {"first": "One line.", "second": "Two lines."}


def test_readme_outputs_table_lists_every_output(synthesized):
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("## Terraform outputs", 1)[1].split("\n## ", 1)[0]
    listed = {name for row in _rows(table) for name in re.findall(r"`([a-z_]+)`", row[0])}
    assert listed == set(synthesized.doc["output"])


def test_readme_configuration_table_names_real_keys():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys = {row[0].strip("`") for row in _rows(config_reference())}
    named = [name for row in _rows(table) for name in re.findall(r"`([^`]+)`", row[0])]
    assert len(named) > 10
    for name in named:
        base = name.removesuffix(".*").removesuffix("[]")
        assert any(key == base or key.startswith((f"{base}.", f"{base}[]")) for key in keys), name
