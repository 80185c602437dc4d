"""constructs_lib.helm_values: loading defaults, deep merge, stable YAML."""

from __future__ import annotations

import pytest
import yaml

from constructs_lib import assets
from constructs_lib.helm_values import deep_merge, dump_values, load_values


def test_load_values_reads_the_committed_defaults():
    values = load_values("karpenter")
    assert values["nodeSelector"]["sd.node-role"] == "system"
    assert values["settings"]["clusterName"] == ""


def test_load_values_names_the_missing_file():
    with pytest.raises(FileNotFoundError, match=r"helm-values/no-such-release\.yaml"):
        load_values("no-such-release")


@pytest.mark.parametrize("release", ["", "../karpenter", "a/b", ".hidden"])
def test_release_must_be_a_plain_name(release):
    with pytest.raises(ValueError, match="plain file stem"):
        load_values(release)


def test_empty_file_is_an_empty_mapping(tmp_path, monkeypatch):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    monkeypatch.setattr(assets, "HELM_VALUES_DIR", tmp_path)
    assert load_values("empty") == {}
    with pytest.raises(ValueError, match=r"helm-values/list\.yaml must be a mapping .*list"):
        load_values("list")


def test_deep_merge_merges_mappings_and_replaces_everything_else():
    base = {
        "settings": {"clusterName": "", "featureGates": {"a": False, "b": True}},
        "tolerations": [{"key": "x"}],
        "replicas": 2,
        "keep": "me",
    }
    override = {
        "settings": {"clusterName": "c1", "featureGates": {"a": True}},
        "tolerations": [{"key": "y"}],
        "replicas": None,
        "new": {"k": 1},
    }
    assert deep_merge(base, override) == {
        "settings": {"clusterName": "c1", "featureGates": {"a": True, "b": True}},
        "tolerations": [{"key": "y"}],
        "replicas": None,
        "keep": "me",
        "new": {"k": 1},
    }


def test_deep_merge_modifies_neither_argument():
    base = {"a": {"b": [1]}}
    override = {"a": {"c": {"d": 1}}}
    merged = deep_merge(base, override)
    merged["a"]["b"].append(2)
    merged["a"]["c"]["d"] = 99
    assert base == {"a": {"b": [1]}}
    assert override == {"a": {"c": {"d": 1}}}


def test_a_mapping_replaces_a_scalar_and_a_scalar_replaces_a_mapping():
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": "x"}) == {"a": "x"}


def test_dump_sorts_keys_at_every_level_and_round_trips():
    values = {"b": {"z": 1, "a": [{"y": 2, "x": 1}]}, "a": "text", "c": (1, 2)}
    text = dump_values(values)
    assert text == "a: text\nb:\n  a:\n  - x: 1\n    y: 2\n  z: 1\nc:\n- 1\n- 2\n"
    assert yaml.safe_load(text) == {"a": "text", "b": {"a": [{"x": 1, "y": 2}], "z": 1},
                                    "c": [1, 2]}


def test_dump_is_independent_of_insertion_order():
    one = {"x": 1, "y": {"b": 2, "a": 1}}
    two = {"y": {"a": 1, "b": 2}, "x": 1}
    assert dump_values(one) == dump_values(two)


def test_dump_writes_no_aliases_for_repeated_objects():
    shared = {"key": "nvidia.com/gpu", "operator": "Exists"}
    text = dump_values({"a": [shared], "b": [shared]})
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == {"a": [shared], "b": [shared]}


def test_strings_holding_references_stay_strings_whatever_they_resolve_to():
    text = dump_values({"settings": {"clusterName": "${TfToken[TOKEN.42]}",
                                     "account": "${data.aws_caller_identity.c.account_id}"}})
    assert "clusterName: '${TfToken[TOKEN.42]}'" in text
    # What Terraform writes after interpolation must still parse as a string, even digits.
    resolved = text.replace("${data.aws_caller_identity.c.account_id}", "012345678901")
    assert yaml.safe_load(resolved)["settings"]["account"] == "012345678901"


def test_multi_line_strings_are_literal_blocks():
    toml = '[settings.kernel]\nlockdown = "integrity"\n'
    text = dump_values({"extraUserData": toml})
    assert text.startswith("extraUserData: |")
    assert yaml.safe_load(text)["extraUserData"] == toml


def test_long_strings_are_not_folded():
    long = "x" * 300 + " " + "y" * 300
    assert dump_values({"a": long}) == f"a: {long}\n"
