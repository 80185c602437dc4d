"""A synthesized stack's ``cdk.tf.json`` with lookups by Terraform address and by construct
path, shared by the synth tests of every tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class StackDoc:
    """``doc`` (read from ``<stack_dir>/cdk.tf.json`` when not given) and where it lives."""

    def __init__(self, stack_dir: Path, doc: dict[str, Any] | None = None) -> None:
        self.stack_dir = stack_dir
        self.doc: dict[str, Any] = (doc if doc is not None else
                                    json.loads((stack_dir / "cdk.tf.json").read_text()))

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("resource", {}).get(rtype, {})

    def data(self, dtype: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("data", {}).get(dtype, {})

    def addresses(self) -> list[str]:
        """Every resource and data source address, sorted."""
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
