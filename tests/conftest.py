"""Session-wide fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sdaas.local.emulator import FAKE_CREDENTIALS, Emulator
from tests.support.stackdoc import StackDoc

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


@pytest.fixture(scope="session")
def plain_moto() -> Iterator[Emulator]:
    """An emulator without SQS message move tasks: moto as it is, with its fixes."""
    emu = Emulator(message_move_tasks=False, log_requests=False).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def example_config():
    from sdaas.config import EXAMPLE_CONFIG, load_config

    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory, example_config) -> StackDoc:
    """``main.py``'s output for ``config.example.yaml`` (the import is paid once here)."""
    from sdaas.app import synth

    outdir = tmp_path_factory.mktemp("cdktf.out")
    return StackDoc(synth(example_config, outdir))


@pytest.fixture(scope="session")
def upstream_crds(synthesized):
    """The CRDs of the upstream charts the example plan pins (karpenter-crd, keda),
    rendered from the pinned archives: what custom resources are validated against."""
    from tests.support.upstream import plan_crds

    (cluster,) = synthesized.resources("aws_eks_cluster").values()
    return plan_crds(synthesized.doc, cluster["version"])


@pytest.fixture(scope="session")
def consumer_synth(tmp_path_factory) -> StackDoc:
    """The consumer project of ``examples/`` (its own app and stack), synthesized once."""
    from tests.support.consumer import synth_example

    return StackDoc(synth_example(tmp_path_factory.mktemp("consumer")))

