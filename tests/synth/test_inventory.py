"""Address inventory: the sorted Terraform addresses of the example app, committed.

A construct ID is API (STYLE 7): renaming one changes a Terraform address, which destroys
and re-creates the resource unless a ``moved`` block says otherwise. This test fails on any
change to the set of addresses, so every change is deliberate:

    UPDATE_INVENTORY=1 make test PYTEST_ARGS=tests/synth/test_inventory.py

rewrites the snapshot; review its diff like any other code. An address that disappears
while another appears needs a ``moved`` block (or a major version bump).
"""

from __future__ import annotations

import os
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("address_inventory.txt")


def _moved_targets(doc: dict) -> set[str]:
    return {m["from"] for m in doc.get("moved", [])}


def test_address_inventory_matches_the_snapshot(synthesized):
    current = synthesized.addresses()
    text = "".join(f"{a}\n" for a in current)
    if os.environ.get("UPDATE_INVENTORY") == "1":
        SNAPSHOT.write_text(text)
    expected = SNAPSHOT.read_text().splitlines() if SNAPSHOT.exists() else []
    added = sorted(set(current) - set(expected))
    removed = sorted(set(expected) - set(current) - _moved_targets(synthesized.doc))
    assert not added and not removed, (
        "the example app's Terraform addresses changed.\n"
        f"added: {added}\nremoved: {removed}\n"
        "If this is deliberate, rewrite the snapshot (UPDATE_INVENTORY=1) and, for a "
        "rename, add a moved block so existing deployments keep their resources."
    )


def test_inventory_addresses_are_stable_ids():
    lines = SNAPSHOT.read_text().splitlines()
    assert lines == sorted(lines), "the snapshot must stay sorted"
    assert len(lines) == len(set(lines))
    assert all("." in line for line in lines)
