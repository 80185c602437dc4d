"""GpuEksCluster and the AWS side of KarpenterGpuPool applied with Terraform to a dedicated
moto server, inspected through the AWS APIs, then destroyed.

What moto can hold, and is applied: the VPC (subnets, route tables, internet and NAT
gateways, Elastic IPs, gateway and interface endpoints, flow logs, security groups and
their rules), KMS, CloudWatch log groups, IAM roles and policies, the EKS cluster and its
managed node group (with the launch template), and Karpenter's interruption queue, queue
policy and EventBridge rules and targets.

The boundary, stated and not faked: moto 5.2 implements no EKS access entries, access
policy associations, add-ons or Pod Identity associations, so those resource types are
removed from the configuration before the apply (the test asserts exactly which), and the
Helm releases need a real cluster. Their configuration is checked by the synth tests
(tests/cluster) and ``terraform validate`` (test_cluster_validate.py) instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from sdaas.config import EXAMPLE_CONFIG, Config, parse_config
from sdaas.local.emulator import Emulator, load_aws_managed_policies
from tests.cluster.stacks import synth_stack
from tests.support.terraform import (
    Terraform,
    plugin_dir,
    without_in_cluster,
    without_types,
    write_stack,
)

pytestmark = [pytest.mark.terraform, pytest.mark.emulator, pytest.mark.slow,
              pytest.mark.timeout(540)]

REGION = "us-west-2"
MOTO_LACKS = ("aws_eks_access_entry", "aws_eks_access_policy_association", "aws_eks_addon",
              "aws_eks_pod_identity_association")
APPLY_TIMEOUT = 360  # seconds; SQS create/policy waiters alone take about 25 s each
MANAGED_POLICIES_ENV = "MOTO_IAM_LOAD_MANAGED_POLICIES"


def without_moto_gaps(doc: dict) -> tuple[dict, list[str]]:
    """``doc`` without the resource types moto lacks (and ``depends_on`` entries naming
    them); the copy and the removed addresses."""
    return without_types(doc, MOTO_LACKS.__contains__)


def with_interface_endpoints() -> Config:
    """The example configuration with its (opt-in) interface endpoints, so the apply
    covers them too."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["cluster"]["vpc"]["interface_endpoints"] = True
    return parse_config(data, str(EXAMPLE_CONFIG))


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> Iterator[tuple[Emulator, Terraform, dict]]:
    example_config = with_interface_endpoints()
    plugin_dir()  # skip early, before starting anything, when there is no provider mirror
    previous = os.environ.get(MANAGED_POLICIES_ENV)
    # AWS managed policies (AmazonEKSClusterPolicy, ...) exist in moto only when asked for,
    # also in accounts that earlier tests of this process already used.
    load_aws_managed_policies()
    emu = Emulator(log_requests=False).start()
    outdir = tmp_path_factory.mktemp("cluster-emulated")
    terraform = None
    try:
        stack_dir, _, _ = synth_stack(outdir, example_config.name, config=example_config,
                                      emulator_endpoint=emu.endpoint)
        doc = json.loads((stack_dir / "cdk.tf.json").read_text())
        aws_only, _ = without_in_cluster(doc)
        subset, removed = without_moto_gaps(aws_only)
        # The destroy-time steps' AWS CLI talks to the emulator too.
        terraform = Terraform(write_stack(subset, stack_dir, outdir / "applied"),
                              env={"AWS_ENDPOINT_URL": emu.endpoint, "AWS_REGION": REGION})
        terraform.init(backend=True)
        terraform.run("apply", "-auto-approve", "-input=false", timeout=APPLY_TIMEOUT)
        yield emu, terraform, {"doc": doc, "removed": removed}
    finally:
        try:
            if terraform is not None:
                destroyed = terraform.run("destroy", "-auto-approve", "-input=false",
                                          check=False, timeout=APPLY_TIMEOUT)
                print(destroyed.stdout[-500:])  # shown when a test fails
        finally:
            emu.stop()
            if previous is None:
                os.environ.pop(MANAGED_POLICIES_ENV, None)
            else:
                os.environ[MANAGED_POLICIES_ENV] = previous


def client(emu: Emulator, service: str):
    return boto3.client(service, endpoint_url=emu.endpoint, region_name=REGION)


def test_only_what_moto_lacks_is_left_out(applied):
    _, _, info = applied
    doc = info["doc"]
    expected = sorted(f"{rtype}.{rid}" for rtype in MOTO_LACKS
                      for rid in doc["resource"].get(rtype, {}))
    assert info["removed"] == expected
    kinds = {a.split(".")[0] for a in info["removed"]}
    # This configuration has all four: the boundary is real, not hypothetical.
    assert kinds == set(MOTO_LACKS)


def test_network_is_created_as_configured(applied):
    emu, _, _ = applied
    ec2 = client(emu, "ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]},
                                        {"Name": "tag:Name", "Values": ["sdaas-vpc"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"]
    private = sorted(s["CidrBlock"] for s in subnets
                     if {"Key": "karpenter.sh/discovery", "Value": "sdaas"} in s.get("Tags", []))
    assert private == ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
    assert {s["AvailabilityZone"] for s in subnets} == {"us-west-2a", "us-west-2b",
                                                        "us-west-2c"}
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    nats = ec2.describe_nat_gateways(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["NatGateways"]
    assert len([n for n in nats if n["State"] != "deleted"]) == 1  # nat_gateways: single
    endpoints = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["VpcEndpoints"]
    # com.amazonaws.<region>.<service>
    services = sorted(e["ServiceName"].split(".", 3)[3] for e in endpoints)
    assert services == sorted(["s3", "ecr.api", "ecr.dkr", "sts", "sqs", "sns", "logs"])
    flow_logs = ec2.describe_flow_logs(
        Filters=[{"Name": "resource-id", "Values": [vpc["VpcId"]]}])["FlowLogs"]
    assert [f["TrafficType"] for f in flow_logs] == ["ALL"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["sdaas"]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["sdaas-eks-nodes"]


def test_cluster_and_system_node_group_are_created_as_configured(applied):
    emu, _, _ = applied
    eks = client(emu, "eks")
    cluster = eks.describe_cluster(name="sdaas")["cluster"]
    assert cluster["version"] == "1.35"
    assert cluster["status"] == "ACTIVE"
    (encryption,) = cluster["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"].startswith("arn:aws:kms:us-west-2:")
    logging = cluster["logging"]["clusterLogging"]
    enabled = sorted(t for entry in logging if entry["enabled"] for t in entry["types"])
    disabled = [t for entry in logging if not entry["enabled"] for t in entry.get("types", [])]
    assert enabled == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert disabled == []
    vpc_config = cluster["resourcesVpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["endpointPublicAccess"] is False
    assert len(vpc_config["subnetIds"]) == 3
    group = eks.describe_nodegroup(clusterName="sdaas", nodegroupName="sdaas-system")[
        "nodegroup"]
    assert group["capacityType"] == "ON_DEMAND"
    assert group["instanceTypes"] == ["t4g.medium"]
    assert group["amiType"] == "AL2023_ARM_64_STANDARD"
    assert group["labels"] == {"sd.node-role": "system"}
    assert group["scalingConfig"]["desiredSize"] == 2
    logs = client(emu, "logs").describe_log_groups(logGroupNamePrefix="/aws/eks/sdaas/")
    assert [(g["logGroupName"], g["retentionInDays"]) for g in logs["logGroups"]] == [
        ("/aws/eks/sdaas/cluster", 30)]


def test_container_insights_log_groups_exist_before_the_add_on(applied):
    """Terraform owns their retention and encryption; the add-on only writes to them."""
    emu, _, _ = applied
    groups = client(emu, "logs").describe_log_groups(
        logGroupNamePrefix="/aws/containerinsights/sdaas/")["logGroups"]
    assert sorted((g["logGroupName"], g["retentionInDays"]) for g in groups) == [
        (f"/aws/containerinsights/sdaas/{kind}", 30)
        for kind in ("application", "dataplane", "emf", "host", "performance")]
    assert all(g["kmsKeyId"].startswith("arn:aws:kms:us-west-2:") for g in groups)


def test_karpenter_interruption_path_is_created_as_configured(applied):
    emu, _, _ = applied
    sqs = client(emu, "sqs")
    url = sqs.get_queue_url(QueueName="sdaas-karpenter-interruption")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "300"
    assert attributes["SqsManagedSseEnabled"] == "true"
    policy = json.loads(attributes["Policy"])
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allow] == [{"Service": "events.amazonaws.com"}]
    events = client(emu, "events")
    rules = {r["Name"]: r for r in events.list_rules(NamePrefix="sdaas-karpenter-")["Rules"]}
    assert sorted(rules) == ["sdaas-karpenter-instance-state-change",
                             "sdaas-karpenter-rebalance", "sdaas-karpenter-scheduled-change",
                             "sdaas-karpenter-spot-interruption"]
    for name in rules:
        (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
        assert target["Arn"] == attributes["QueueArn"]
    iam = client(emu, "iam")
    role = iam.get_role(RoleName="sdaas-karpenter-controller")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(iam.list_role_policies(RoleName="sdaas-karpenter-controller")[
        "PolicyNames"]) == ["ControllerDiscovery", "ControllerIamIntegration",
                            "ControllerInterruption", "ControllerNodeLifecycle"]


def test_destroy_removes_everything(applied):
    emu, terraform, _ = applied
    result = terraform.run("destroy", "-auto-approve", "-input=false", timeout=APPLY_TIMEOUT)
    assert "Destroy complete!" in result.stdout
    # The destroy-time steps ran, with the AWS CLI, against the emulator.
    assert "karpenter: no nodes left in cluster sdaas" in result.stdout
    assert client(emu, "eks").list_clusters()["clusters"] == []
    assert not client(emu, "ec2").describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": ["sdaas-vpc"]}])["Vpcs"]
    assert not client(emu, "sqs").list_queues(QueueNamePrefix="sdaas-").get("QueueUrls")
    state = Path(terraform.workdir, "terraform.tfstate")
    assert json.loads(state.read_text())["resources"] == []
