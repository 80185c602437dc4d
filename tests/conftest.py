"""Session-wide fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sdaas.local.emulator import FAKE_CREDENTIALS, Emulator

# Never let a test reach a real AWS account, whatever the developer's shell holds.
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(_name, None)
os.environ.update(FAKE_CREDENTIALS)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
os.environ.setdefault("AWS_REGION", "us-west-2")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """moto's server on a free loopback port for the whole test session."""
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


class Synthesized:
    """The example app, synthesized once per test session."""

    def __init__(self, stack_dir) -> None:
        import json

        self.stack_dir = stack_dir
        self.doc = json.loads((stack_dir / "cdk.tf.json").read_text())

    def resources(self, rtype: str) -> dict:
        return self.doc.get("resource", {}).get(rtype, {})

    def data(self, dtype: str) -> dict:
        return self.doc.get("data", {}).get(dtype, {})

    def addresses(self) -> list[str]:
        out = []
        for block, prefix in (("resource", ""), ("data", "data.")):
            for rtype, items in self.doc.get(block, {}).items():
                out.extend(f"{prefix}{rtype}.{name}" for name in items)
        return sorted(out)

    def by_path(self, rtype: str, path_suffix: str) -> dict:
        """The one resource of ``rtype`` whose construct path ends with ``path_suffix``."""
        hits = [
            body for body in {**self.resources(rtype), **self.data(rtype)}.values()
            if body["//"]["metadata"]["path"].endswith(path_suffix)
        ]
        assert len(hits) == 1, f"{len(hits)} {rtype} with path ending {path_suffix!r}"
        return hits[0]


@pytest.fixture(scope="session")
def example_config():
    from sdaas.config import EXAMPLE_CONFIG, load_config

    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory, example_config) -> Synthesized:
    """``main.py``'s output for ``config.example.yaml`` (the import is paid once here)."""
    from sdaas.app import synth

    outdir = tmp_path_factory.mktemp("cdktf.out")
    return Synthesized(synth(example_config, outdir))


@pytest.fixture(scope="session")
def consumer_synth(tmp_path_factory) -> Synthesized:
    """The consumer project of ``examples/`` (its own app and stack), synthesized once."""
    from tests.support.consumer import synth_example

    return Synthesized(synth_example(tmp_path_factory.mktemp("consumer")))
