"""The runtime tests' stack, synthesized once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runtime import stack as stack_lib


@dataclass
class RuntimeStack:
    built: stack_lib.Built
    stack_dir: Path
    doc: dict[str, Any]

    def resources(self, rtype: str) -> dict[str, Any]:
        return self.doc.get("resource", {}).get(rtype, {})

    def by_path(self, block: str, rtype: str, path: str) -> tuple[str, dict[str, Any]]:
        """``(logical id, body)`` of the ``rtype`` at construct ``path`` (below the stack)."""
        hits = [
            (rid, body)
            for rid, body in self.doc.get(block, {}).get(rtype, {}).items()
            if body["//"]["metadata"]["path"].split("/", 1)[1] == path
        ]
        assert len(hits) == 1, f"{len(hits)} {rtype} at {path!r}"
        return hits[0]

    def resource(self, rtype: str, path: str) -> dict[str, Any]:
        return self.by_path("resource", rtype, path)[1]

    def data(self, rtype: str, path: str) -> dict[str, Any]:
        return self.by_path("data", rtype, path)[1]

    def address(self, rtype: str, path: str) -> str:
        return f"{rtype}.{self.by_path('resource', rtype, path)[0]}"

    def under(self, block: str, rtype: str, prefix: str) -> dict[str, dict[str, Any]]:
        """``{construct path: body}`` of every ``rtype`` below construct ``prefix``."""
        out = {}
        for body in self.doc.get(block, {}).get(rtype, {}).values():
            path = body["//"]["metadata"]["path"].split("/", 1)[1]
            if path.startswith(prefix + "/"):
                out[path] = body
        return out


@pytest.fixture(scope="session")
def runtime_stack(tmp_path_factory, example_config) -> RuntimeStack:
    built = stack_lib.build(example_config, tmp_path_factory.mktemp("runtime-stack"))
    stack_dir = stack_lib.synth(built)
    return RuntimeStack(built=built, stack_dir=stack_dir, doc=stack_lib.load(stack_dir))
