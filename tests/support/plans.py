"""Synthesized plans of whole configurations, built the way ``main.py`` builds them.

The one place the tests of upstream charts import the application layer (the
configuration loader and the app builder): a configuration is a YAML document, validated
by the application's own loader, turned into the stack by its own builder, synthesized
once, and read back as ``cdk.tf.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sdaas.app import build_app
from sdaas.config import EXAMPLE_CONFIG, parse_config


@dataclass(frozen=True)
class Plan:
    """One synthesized configuration: its stack directory and its JSON."""

    name: str
    stack_dir: Path
    doc: dict[str, Any]

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("resource", {}).get(rtype, {})

    def address_of(self, rtype: str, path_suffix: str) -> str:
        """``rtype.<logical id>`` of the one resource whose construct path ends so."""
        hits = [f"{rtype}.{rid}" for rid, body in self.resources(rtype).items()
                if body["//"]["metadata"]["path"].endswith(path_suffix)]
        assert len(hits) == 1, f"{len(hits)} {rtype} with path ending {path_suffix!r}"
        return hits[0]

    @property
    def kubernetes_version(self) -> str:
        """The cluster's Kubernetes version (``"1.35"``), as the plan configures it."""
        (cluster,) = self.resources("aws_eks_cluster").values()
        return str(cluster["version"])


def example_config_data() -> dict[str, Any]:
    """``config.example.yaml`` as a mapping, to derive other configurations from."""
    return yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def synth_config(data: dict[str, Any], outdir: Path) -> Plan:
    """Write ``data`` as a configuration file in ``outdir``, load it with the application's
    loader, build the app with its builder and synthesize it under ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    source = outdir / "config.yaml"
    source.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    config = parse_config(yaml.safe_load(source.read_text(encoding="utf-8")), str(source))
    stack_dir = build_app(config, outdir / "cdktf.out").synth()
    return Plan(name=config.name, stack_dir=stack_dir,
                doc=json.loads((stack_dir / "cdk.tf.json").read_text(encoding="utf-8")))
