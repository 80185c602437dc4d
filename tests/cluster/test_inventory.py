"""Address inventory and determinism of the cluster and Karpenter part of the stack."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster.stacks import synth_stack

# The constructs these tests cover, by their construct path below the stack.
OWN_PREFIXES = ("Cluster/", "Karpenter/")


def own_addresses(doc: dict) -> list[str]:
    own = []
    for block, prefix in (("resource", ""), ("data", "data.")):
        for rtype, items in doc.get(block, {}).items():
            for rid, body in items.items():
                path = body["//"]["metadata"]["path"].split("/", 1)[1]
                if path.startswith(OWN_PREFIXES):
                    own.append(f"{prefix}{rtype}.{rid}")
    return sorted(own)


def test_every_kind_the_issue_asks_for_is_created(example):
    """The address snapshot itself is tests/synth/address_inventory.txt (the whole app)."""
    own = own_addresses(example.doc)
    kinds = {address.split(".")[0] if not address.startswith("data.")
             else ".".join(address.split(".")[:2]) for address in own}
    for kind in ("aws_vpc", "aws_nat_gateway", "aws_vpc_endpoint", "aws_eks_cluster",
                 "aws_eks_node_group", "aws_eks_addon", "aws_eks_access_entry",
                 "aws_eks_pod_identity_association", "aws_sqs_queue",
                 "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target", "helm_release",
                 "aws_kms_key", "aws_flow_log"):
        assert kind in kinds, kind


def test_synthesis_is_byte_stable_and_free_of_machine_paths(example, example_config, tmp_path):
    again_dir, _, _ = synth_stack(tmp_path, example_config.name, config=example_config)
    first = (example.stack_dir / "cdk.tf.json").read_bytes()
    assert (again_dir / "cdk.tf.json").read_bytes() == first
    text = first.decode()
    for marker in (str(Path.home()), str(Path(__file__).resolve().parents[2]),
                   str(example.stack_dir.parent), str(tmp_path)):
        assert marker not in text, marker
    charts = {b["chart"] for b in json.loads(text)["resource"]["helm_release"].values()
              if b["name"].startswith("gpu-")}
    assert all(not c.startswith("/") for c in charts)
    # The packaged chart is byte-identical too.
    for chart in charts:
        for path in sorted((example.stack_dir / chart).rglob("*")):
            if path.is_file():
                twin = again_dir / chart / path.relative_to(example.stack_dir / chart)
                assert twin.read_bytes() == path.read_bytes()
