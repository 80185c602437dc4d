"""checkov over the synthesized configuration: no failed check, and every suppression in
``.checkov.yaml`` carries its reason.

checkov pins an old boto3, so it lives in its own virtualenv (``.venv-checkov``, or the
binary named by ``CHECKOV_BIN``); without it these tests are skipped with that reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / ".checkov.yaml"


def checkov_binary() -> str:
    candidate = os.environ.get("CHECKOV_BIN") or str(REPO_ROOT / ".venv-checkov/bin/checkov")
    if not Path(candidate).is_file() and not shutil.which(candidate):
        pytest.skip("checkov is not installed: python3 -m venv .venv-checkov && "
                    ".venv-checkov/bin/pip install checkov==3.3.30")
    return candidate


def run_checkov(tf_json: Path) -> dict:
    proc = subprocess.run(
        [checkov_binary(), "--config-file", str(CONFIG), "-f", str(tf_json), "-o", "json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=480, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one report per framework
        (report,) = [r for r in report if r.get("check_type") == "terraform_json"]
    return report


def failed(report: dict) -> list[str]:
    return [f"{c['check_id']} {c['resource']}: {c['check_name']}"
            for c in report.get("results", {}).get("failed_checks", [])]


def test_every_suppression_carries_a_reason():
    config = yaml.safe_load(CONFIG.read_text())
    skipped = config["skip-check"]
    assert skipped, "no suppressions: remove this test's premise rather than the file"
    lines = CONFIG.read_text().splitlines()
    for check in skipped:
        (line,) = [text for text in lines if re.match(rf"\s*-\s*{check}\b", text)]
        reason = line.split("#", 1)[1].strip() if "#" in line else ""
        assert len(reason) >= 20, f"{check} needs a written reason"


def test_the_app_configuration_passes(synthesized):
    """``main.py``'s output for config.example.yaml: the whole service."""
    report = run_checkov(synthesized.stack_dir / "cdk.tf.json")
    assert failed(report) == []
    assert report["summary"]["passed"] > 300


def test_the_cluster_variants_pass(synth_variant, tmp_path):
    """Branches the example does not take: existing VPC, shared pool with instance store,
    CloudWatch add-on, admin roles."""
    from constructs_lib.cluster import ExistingVpcProps, GpuEksClusterProps, NewVpcProps
    from constructs_lib.karpenter import GpuPoolRuntime, KarpenterGpuPoolProps

    pools = KarpenterGpuPoolProps(runtimes=(GpuPoolRuntime(name="a", task_timeout_seconds=60),),
                                  pool_model="shared", instance_store_raid0=True)
    variants = {
        "existing": GpuEksClusterProps(
            vpc=ExistingVpcProps(vpc_id="vpc-0123456789abcdef0",
                                 private_subnet_ids=("subnet-0aaaaaaaaaaaaaaa1",
                                                     "subnet-0bbbbbbbbbbbbbbb2")),
            admin_role_arns=("arn:aws:iam::123456789012:role/admin",),
            cloudwatch_observability_version="v4.1.0-eksbuild.1"),
        "new": GpuEksClusterProps(vpc=NewVpcProps(
            availability_zones=("us-west-2a", "us-west-2b", "us-west-2c"))),
    }
    for name, props in variants.items():
        synth = synth_variant(cluster_props=props, pool_props=pools)
        path = tmp_path / f"{name}.tf.json"
        path.write_text(json.dumps(synth.doc))
        assert failed(run_checkov(path)) == [], name


def test_unpinned_zones_are_reported(synth_variant, tmp_path):
    """Taking the first available zones is a finding (a zone leaving "available" would move
    the subnets): pin availability_zones, as config.example.yaml does."""
    from constructs_lib.cluster import GpuEksClusterProps

    synth = synth_variant(cluster_props=GpuEksClusterProps())
    path = tmp_path / "unpinned.tf.json"
    path.write_text(json.dumps(synth.doc))
    assert [f.split()[0] for f in failed(run_checkov(path))] == ["CKV_AWS_394"]


def test_a_public_endpoint_is_reported_but_its_allowlist_passes(synth_variant, tmp_path):
    """A public endpoint is the user's explicit choice (endpoint_public_access_cidrs), so
    CKV_AWS_39 reports it rather than being suppressed for everyone; CKV_AWS_38 (not open
    to 0.0.0.0/0) passes because the props refuse /0."""
    from constructs_lib.cluster import GpuEksClusterProps, NewVpcProps

    synth = synth_variant(cluster_props=GpuEksClusterProps(
        vpc=NewVpcProps(availability_zones=("us-west-2a", "us-west-2b", "us-west-2c")),
        endpoint_public_access_cidrs=("203.0.113.0/24",)))
    path = tmp_path / "public.tf.json"
    path.write_text(json.dumps(synth.doc))
    report = run_checkov(path)
    assert [f.split()[0] for f in failed(report)] == ["CKV_AWS_39"]
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert "CKV_AWS_38" in passed
