"""What the docs tell a new user, checked against what the code does."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from lambda_src.ingest import status_url
from sdaas.config import REPO_ROOT
from sdaas.local import api_adapter
from sdaas.local.api_adapter import ApiAdapter, Route, resource_pattern

LOCAL_MODE = (REPO_ROOT / "docs" / "local-mode.md").read_text()
KEY = "k" * 40


class _Keys:
    def valid(self, value: str | None) -> bool:
        return value == KEY


def test_the_local_status_url_is_http_as_documented(monkeypatch):
    """The ingest handler's status_url for an event of the local adapter."""

    def ingest(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"statusCode": 202, "body": json.dumps({"status_url": status_url(event, "t1")})}

    monkeypatch.setattr(api_adapter, "load_handler", lambda _name: ingest)
    route = Route(method="POST", resource="/v1alpha2", api_key_required=True,
                  function_name="ingest", handler="lambda_src.ingest.handler",
                  timeout_seconds=5, pattern=resource_pattern("/v1alpha2"))
    adapter = ApiAdapter(routes=[route], stage="prod", api_id="abc", keys=_Keys()).start()
    try:
        answer = requests.post(f"{adapter.endpoint}/v1alpha2", data=b"{}",
                               headers={"x-api-key": KEY}, timeout=10).json()
    finally:
        adapter.stop()
    assert answer["status_url"] == f"http://127.0.0.1:{adapter.port}/prod/v1alpha2/tasks/t1"
    assert ("| `status_url` in the 202 answer | `https://<api>/<stage>/v1alpha2/tasks/<id>` | "
            "`http://127.0.0.1:<port>/<stage>/v1alpha2/tasks/<id>`") in LOCAL_MODE


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_second_make_local_exits_as_documented(tmp_path: Path):
    """A held lock (a running stack): the command exits 3, and make with 2."""
    with (tmp_path / "local.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        env = {**os.environ, "SD_LOCAL_DIR": str(tmp_path)}
        direct = subprocess.run([sys.executable, "-m", "sdaas.local", "up"], cwd=REPO_ROOT,
                                env=env, capture_output=True, text=True, timeout=120,
                                check=False)
        made = subprocess.run(["make", "--no-print-directory", "local",
                               f"PY={sys.executable}"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    assert direct.returncode == 3, direct.stderr
    assert "a local stack is already running" in direct.stderr
    assert made.returncode == 2, made.stderr
    assert "Error 3" in made.stderr
    assert ("`python -m sdaas.local up` exits with status 3, which `make` reports as\n"
            "`Error 3` before exiting with its own status, 2.") in LOCAL_MODE


def test_the_example_configuration_points_at_the_reference_that_exists():
    example = (REPO_ROOT / "config.example.yaml").read_text()
    pointers = re.findall(r'documented in (\S+) \("([^"]+)"\)', example)
    assert pointers, "config.example.yaml no longer says where its keys are documented"
    for document, section in pointers:
        assert f"\n## {section}\n" in (REPO_ROOT / document).read_text(), (document, section)
