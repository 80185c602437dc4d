"""The destroy-time scripts of KarpenterGpuPool, run with the AWS CLI against moto's server.

What the emulator cannot show: Karpenter reacting to the deleted NodePools. The tests play
Karpenter's part (terminating instances, leaving profiles and templates behind) by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from constructs_lib.assets import TEARDOWN_SCRIPTS_DIR

pytestmark = pytest.mark.emulator

CLUSTER = "sdaas-teardown"
REGION = "us-west-2"
KARPENTER_TAGS = [
    {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"},
    {"Key": "karpenter.sh/nodepool", "Value": "sdruntime-spot"},
]


def _env(emulator) -> dict[str, str]:
    """The AWS CLI beside this interpreter, pointed at the emulator."""
    return {**os.environ, "AWS_ENDPOINT_URL": emulator.endpoint,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _run(emulator, script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(TEARDOWN_SCRIPTS_DIR / script), *args], env=_env(emulator),
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def ec2(emulator):
    return boto3.client("ec2", endpoint_url=emulator.endpoint, region_name=REGION)


@pytest.fixture
def iam(emulator):
    return boto3.client("iam", endpoint_url=emulator.endpoint, region_name=REGION)


def _launch(ec2, tags) -> str:
    image = ec2.describe_images()["Images"][0]["ImageId"]
    reservation = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="g6.xlarge",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    return reservation["Instances"][0]["InstanceId"]


def _state(ec2, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_wait_returns_once_karpenter_terminated_its_nodes(emulator, ec2):
    node = _launch(ec2, KARPENTER_TAGS)
    bystander = _launch(ec2, [{"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"}])
    # A deadline far beyond the test's: the script must return because the node went.
    script = subprocess.Popen(
        ["bash", str(TEARDOWN_SCRIPTS_DIR / "wait-for-karpenter-nodes.sh"), CLUSTER, REGION, "3600",
         "1"], env=_env(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert script.stdout is not None
        first = script.stdout.readline()  # the script has seen the node and waits
        assert first.strip() == f"karpenter: waiting for nodes to terminate: {node}"
        ec2.terminate_instances(InstanceIds=[node])  # Karpenter's part
        stdout, stderr = script.communicate(timeout=300)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    assert script.returncode == 0, stderr
    assert stdout.splitlines()[-1] == f"karpenter: no nodes left in cluster {CLUSTER}"
    assert "still running" not in stderr
    assert _state(ec2, bystander) == "running", "a node Karpenter does not own was touched"


def test_wait_terminates_what_is_left_after_the_timeout(emulator, ec2):
    node = _launch(ec2, KARPENTER_TAGS)
    proc = _run(emulator, "wait-for-karpenter-nodes.sh", CLUSTER, REGION, "2", "1")
    assert proc.returncode == 0, proc.stderr
    assert "terminating them" in proc.stderr and node in proc.stderr
    assert _state(ec2, node) in ("shutting-down", "terminated")


def test_leftovers_of_this_cluster_are_deleted_and_others_kept(emulator, ec2, iam):
    role = iam.create_role(RoleName="sdaas-teardown-node", AssumeRolePolicyDocument="{}")
    ours = "sdaas-teardown_123"
    theirs = "other-cluster_456"
    for name, cluster in ((ours, CLUSTER), (theirs, "other-cluster")):
        iam.create_instance_profile(InstanceProfileName=name, Tags=[
            {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"},
            {"Key": "karpenter.k8s.aws/ec2nodeclass", "Value": "gpu"}])
        iam.add_role_to_instance_profile(InstanceProfileName=name,
                                         RoleName=role["Role"]["RoleName"])
    for name, cluster in (("karpenter.k8s.aws/ours", CLUSTER), ("karpenter.k8s.aws/theirs",
                                                                 "other-cluster")):
        ec2.create_launch_template(
            LaunchTemplateName=name, LaunchTemplateData={"InstanceType": "g6.xlarge"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [
                {"Key": "karpenter.k8s.aws/cluster", "Value": cluster}]}])
    proc = _run(emulator, "delete-karpenter-leftovers.sh", CLUSTER, REGION)
    assert proc.returncode == 0, proc.stderr
    profiles = {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
    assert ours not in profiles and theirs in profiles
    templates = {t["LaunchTemplateName"]
                 for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    assert "karpenter.k8s.aws/ours" not in templates
    assert "karpenter.k8s.aws/theirs" in templates
    assert f"deleted instance profile {ours}" in proc.stdout
