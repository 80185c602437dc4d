"""The cluster test stack, synthesized once per test session (the provider import and the
jsii start-up are paid here), plus a fast in-memory synth for variants."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.stacks import synth_stack
from tests.support.stackdoc import StackDoc


class ClusterSynth(StackDoc):
    """One synthesized stack: its directory, its JSON and the constructs that made it."""

    def __init__(self, stack_dir: Path, doc: dict[str, Any] | None, cluster: Any,
                 pool: Any) -> None:
        super().__init__(stack_dir, doc)
        self.cluster = cluster  # GpuEksCluster
        self.pool = pool  # KarpenterGpuPool | None

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
    return ClusterSynth(stack_dir, None, cluster, pool)


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
