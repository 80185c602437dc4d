"""checkov on the synthesized stack: no failed check on a resource of KedaSqsScaler,
SdRuntime, ModelBucket or AgentImageRepository (suppressions live in .checkov.yaml, each
with its reason)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
OWN = ("Keda", "Runtime-", "ModelBucket", "AgentRepository")


def run_checkov(cdk_tf_json: Path) -> dict:
    if not CHECKOV.is_file():
        message = "checkov is not installed in .venv-checkov"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run it)")
        pytest.skip(message)
    proc = subprocess.run(
        [str(CHECKOV), "--config-file", str(REPO / ".checkov.yaml"), "-f", str(cdk_tf_json),
         "--framework", "terraform_json", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def report(runtime_stack) -> dict:
    return run_checkov(runtime_stack.stack_dir / "cdk.tf.json")


def _own(check: dict) -> bool:
    return check["resource"].split(".", 1)[-1].startswith(OWN)


def test_no_failed_check_on_our_resources(report):
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}"
              for c in report["results"]["failed_checks"] if _own(c)]
    assert failed == []


def test_our_resources_were_checked(report):
    passed = {c["check_id"] for c in report["results"]["passed_checks"] if _own(c)}
    # encryption, public access, versioning, TLS-only policy, ECR scanning and immutability
    for check in ("CKV_AWS_145", "CKV2_AWS_6", "CKV_AWS_21", "CKV_AWS_163", "CKV_AWS_51",
                  "CKV_AWS_136"):
        assert check in passed, check
