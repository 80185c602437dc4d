"""The synthesized configurations accept the AWS provider's 6.x line, and 5.x from 5.99.

Evidence, offline once cached: the 6.x schema comes from the jsii assembly of the published
6.x bindings (``cdktf-cdktf-provider-aws`` 21.22.1, generated from hashicorp/aws 6.25.0),
the 5.x schema from the installed bindings (19.65.1, from 5.99.1), both reduced by
:mod:`tests.support.provider_schema`. For the example configuration and the consumer of
``examples/``:

* every AWS resource and data source type they use exists in 6.x (6.0 removed types);
* every argument and block they set exists in 6.x with the type it has in 5.x (6.0
  removed or renamed arguments);
* every attribute they read exists in 6.x;
* nothing they use is deprecated: neither in the 6.x line (the assembly carries no
  deprecation flags, so the 6.0 deprecations that touch what the library could use are
  listed below with their source) nor in the real 5.100.0 provider's schema
  (``terraform providers schema -json``, when ``TF_PLUGIN_DIR`` provides it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from constructs_lib import AWS_PROVIDER_VERSIONS
from tests.support.provider_schema import (
    assembly_of,
    cache_dir,
    deprecated_in_schema,
    download_bindings,
    referenced,
    schema_of,
    used,
)
from tests.support.terraform import Terraform, plugin_dir

pytestmark = pytest.mark.slow  # the first run downloads and reduces a 60 MB wheel

SIX = "cdktf-cdktf-provider-aws==21.22.1"
# Deprecated by hashicorp/aws 6.0 (its CHANGELOG and the 6.x docs of each type), for the
# types this library creates or reads: (block, type, argument or attribute) -> what to use.
DEPRECATED_IN_6 = {
    ("data", "aws_region", "name"): "region (6.x data source docs: name is Deprecated)",
}


@pytest.fixture(scope="module")
def five() -> dict:
    import cdktf_cdktf_provider_aws._jsii as jsii_module

    return schema_of(assembly_of(Path(jsii_module.__file__).parent.parent))


@pytest.fixture(scope="module")
def six() -> dict:
    try:
        return schema_of(download_bindings(SIX))
    except Exception as exc:  # no package index: say so instead of failing obscurely
        message = f"cannot fetch {SIX} from the package index: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def configurations(synthesized, consumer_synth) -> dict[str, dict]:
    return {"example": synthesized.doc, "consumer": consumer_synth.doc}


def _problems_with_6(doc: dict, five: dict, six: dict) -> list[str]:
    problems = set()
    for block in ("resource", "data"):
        for rtype in doc.get(block, {}):
            if rtype.startswith("aws_") and rtype not in six[block]:
                problems.add(f"{block} {rtype}: not in the 6.x schema")
    for block, rtype, path, _ in used(doc, five):
        if block != "provider" and rtype not in six[block]:
            continue  # reported above
        old = (five["provider"] if block == "provider"
               else five[block].get(rtype, {}).get("arguments", {})).get(path)
        new = (six["provider"] if block == "provider"
               else six[block][rtype]["arguments"]).get(path)
        if old is None:
            problems.add(f"{block} {rtype}.{path}: unknown to the 5.x schema (checker bug?)")
        elif new is None:
            problems.add(f"{block} {rtype}.{path}: not in the 6.x schema")
        elif new != old:
            problems.add(f"{block} {rtype}.{path}: {old} in 5.x, {new} in 6.x")
    for block, rtype, attribute in referenced(json.dumps(doc)):
        known = six[block].get(rtype)
        if known is None:
            problems.add(f"{block} {rtype}: read but not in the 6.x schema")
        elif attribute not in known["attributes"] and attribute not in known["arguments"]:
            problems.add(f"{block} {rtype}.{attribute}: read but not in the 6.x schema")
    return sorted(problems)


def _deprecated_uses(doc: dict, five: dict, deprecated: dict) -> list[str]:
    hits = set()
    for block, rtype, path, _ in used(doc, five):
        for key in ((block, rtype, path), (block, rtype, "")):
            if key in deprecated:
                hits.add(f"{block} {rtype}.{path}: deprecated, use {deprecated[key]}")
    for block, rtype, attribute in referenced(json.dumps(doc)):
        if (block, rtype, attribute) in deprecated:
            hits.add(f"{block} {rtype}.{attribute} (read): deprecated, use "
                     f"{deprecated[(block, rtype, attribute)]}")
    return sorted(hits)


def test_the_schemas_are_the_ones_named(five, six):
    assert (five["bindings"], five["version"]) == ("19.65.1", "5.99.1")
    assert (six["bindings"], six["version"]) == ("21.22.1", "6.25.0")
    # A sanity check of the reduction: what 6.0 changed shows.
    assert "region" not in five["data"]["aws_region"]["attributes"]
    assert "region" in six["data"]["aws_region"]["attributes"]
    assert "aws_opsworks_stack" in five["resource"]
    assert "aws_opsworks_stack" not in six["resource"]


@pytest.mark.parametrize("name", ["example", "consumer"])
def test_every_type_argument_and_attribute_exists_in_6_with_the_same_type(
        name, configurations, five, six):
    doc = configurations[name]
    assert sum(1 for _ in used(doc, five)) > 200  # the walk does see the configuration
    assert _problems_with_6(doc, five, six) == []


@pytest.mark.parametrize("name", ["example", "consumer"])
def test_nothing_used_is_deprecated_in_6(name, configurations, five):
    assert _deprecated_uses(configurations[name], five, DEPRECATED_IN_6) == []


def test_the_checks_catch_removed_renamed_retyped_and_deprecated_uses(five, six):
    doc = {
        "resource": {
            "aws_opsworks_stack": {"s": {"name": "x"}},  # removed by 6.0
            "aws_batch_compute_environment": {  # argument renamed by 6.0
                "b": {"compute_environment_name": "x", "type": "MANAGED"}},
            "aws_sqs_queue": {"q": {"name": "${data.aws_region.r.name}"}},
        },
        "data": {"aws_region": {"r": {}}},
    }
    problems = _problems_with_6(doc, five, six)
    assert "resource aws_opsworks_stack: not in the 6.x schema" in problems
    assert ("resource aws_batch_compute_environment.compute_environment_name: not in the "
            "6.x schema") in problems
    assert _deprecated_uses(doc, five, DEPRECATED_IN_6) == [
        "data aws_region.name (read): deprecated, use region (6.x data source docs: name is "
        "Deprecated)"]
    retyped = json.loads(json.dumps(five))
    retyped["resource"]["aws_sqs_queue"]["arguments"]["name"] = "number"
    assert _problems_with_6(doc, retyped, six) == sorted(
        [*problems, "resource aws_sqs_queue.name: number in 5.x, string in 6.x"])


@pytest.mark.terraform
@pytest.mark.parametrize("name", ["example", "consumer"])
def test_nothing_used_is_deprecated_in_the_real_5_100_provider(name, configurations, five,
                                                                tmp_path):
    deprecated = {key: "(deprecated in 5.100.0)" for key in _real_schema_deprecations(tmp_path)}
    assert ("data", "aws_region", "name") not in deprecated  # 6.0 deprecated it, not 5.x
    assert ("resource", "aws_eip", "vpc") in deprecated  # the schema does carry the flags
    assert _deprecated_uses(configurations[name], five, deprecated) == []


def _real_schema_deprecations(workdir: Path) -> set[tuple[str, str, str]]:
    mirror = plugin_dir() / "registry.terraform.io" / "hashicorp" / "aws"
    (version,) = [p.name for p in mirror.iterdir()]
    cached = cache_dir() / f"terraform-aws-{version}-schema.json"
    if not cached.exists():
        (workdir / "main.tf.json").write_text(json.dumps({"terraform": {"required_providers": {
            "aws": {"source": "hashicorp/aws", "version": version}}}}))
        tf = Terraform(workdir)
        tf.init()
        cached.write_text(tf.run("providers", "schema", "-json").stdout)
    return deprecated_in_schema(json.loads(cached.read_text()))


@pytest.mark.parametrize("name", ["example", "consumer"])
def test_the_configurations_accept_5_99_up_to_but_not_7(name, configurations, six):
    constraint = configurations[name]["terraform"]["required_providers"]["aws"]["version"]
    assert constraint == AWS_PROVIDER_VERSIONS == ">= 5.99, < 7.0"
    lower, upper = re.fullmatch(r">= (\d+\.\d+), < (\d+\.\d+)", constraint).groups()

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split("."))

    for version in ("5.99.1", "5.100.0", six["version"]):
        assert key(lower) <= key(version) < key(upper), version
