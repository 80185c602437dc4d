"""The cluster test stack, synthesized once per test session (the provider import and the
jsii start-up are paid here), plus a fast in-memory synth for variants."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.stacks import synth_stack


@dataclass
class ClusterSynth:
    """One synthesized stack: its directory, its JSON and the constructs that made it."""

    stack_dir: Path
    doc: dict[str, Any]
    cluster: Any  # GpuEksCluster
    pool: Any  # KarpenterGpuPool | None

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("resource", {}).get(rtype, {})

    def data(self, dtype: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("data", {}).get(dtype, {})

    def addresses(self) -> list[str]:
        out = []
        for block, prefix in (("resource", ""), ("data", "data.")):
            for rtype, items in self.doc.get(block, {}).items():
                out.extend(f"{prefix}{rtype}.{name}" for name in items)
        return sorted(out)

    def by_path(self, rtype: str, path_suffix: str) -> dict[str, Any]:
        """The one resource (or data source) of ``rtype`` whose construct path ends with
        ``path_suffix``."""
        hits = [
            body for body in {**self.resources(rtype), **self.data(rtype)}.values()
            if body["//"]["metadata"]["path"].endswith(path_suffix)
        ]
        assert len(hits) == 1, f"{len(hits)} {rtype} with path ending {path_suffix!r}"
        return hits[0]

    def address_of(self, rtype: str, path_suffix: str) -> str:
        """``rtype.<logical id>`` of the resource whose path ends with ``path_suffix``."""
        hits = [f"{rtype}.{name}" for name, body in self.resources(rtype).items()
                if body["//"]["metadata"]["path"].endswith(path_suffix)]
        assert len(hits) == 1, hits
        return hits[0]

    def ref(self, rtype: str, path_suffix: str, attribute: str) -> str:
        """The interpolation Terraform sees for an attribute of that resource."""
        return "${" + f"{self.address_of(rtype, path_suffix)}.{attribute}" + "}"

    def data_ref(self, dtype: str, path_suffix: str, attribute: str) -> str:
        hits = [name for name, body in self.data(dtype).items()
                if body["//"]["metadata"]["path"].endswith(path_suffix)]
        assert len(hits) == 1, hits
        return "${" + f"data.{dtype}.{hits[0]}.{attribute}" + "}"

    def policy(self, path_suffix: str) -> list[dict[str, Any]]:
        """Statements of the aws_iam_policy_document whose path ends with ``path_suffix``."""
        return self.by_path("aws_iam_policy_document", path_suffix)["statement"]


@pytest.fixture(scope="session")
def example(tmp_path_factory, example_config) -> ClusterSynth:
    """``config.example.yaml``'s cluster and GPU pools, synthesized to disk (assets too)."""
    outdir = tmp_path_factory.mktemp("cluster-out")
    stack_dir, cluster, pool = synth_stack(outdir, example_config.name, config=example_config)
    doc = json.loads((stack_dir / "cdk.tf.json").read_text())
    return ClusterSynth(stack_dir=stack_dir, doc=doc, cluster=cluster, pool=pool)


@pytest.fixture(scope="session")
def synth_variant() -> Callable[..., ClusterSynth]:
    """Synthesize a variant in memory: ``synth_variant(cluster_props=..., pool_props=...)``."""
    from constructs_lib._cdktf import Testing
    from tests.cluster.stacks import build_stack

    counter = iter(range(1_000_000))

    def synth(**kwargs: Any) -> ClusterSynth:
        app = Testing.app()
        stack, cluster, pool = build_stack(app, f"variant{next(counter)}", **kwargs)
        # to_terraform keeps the "//" metadata (construct paths) that Testing.synth drops.
        doc = json.loads(json.dumps(stack.to_terraform()))
        return ClusterSynth(stack_dir=Path(), doc=doc, cluster=cluster, pool=pool)

    return synth
