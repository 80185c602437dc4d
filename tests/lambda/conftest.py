"""Fixtures for the Lambda handler tests (helpers live in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Account, emulated_account


@pytest.fixture
def account() -> Iterator[Account]:
    """A fresh emulated account with the handlers' environment set, for one test."""
    with emulated_account() as acct:
        yield acct
