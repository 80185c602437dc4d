"""GpuEksCluster: the synthesized network, cluster, access, nodes and add-ons."""

from __future__ import annotations

import base64
import json

import pytest

from constructs_lib.cluster import (
    CLUSTER_LOG_TYPES,
    CONTAINER_LOG_KINDS,
    DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION,
    DEFAULT_INTERFACE_ENDPOINTS,
    ExistingVpcProps,
    GpuEksClusterProps,
    NewVpcProps,
    instance_architecture,
)
from constructs_lib.cluster.props import CONTROL_PLANE_TO_NODE_PORTS
from sdaas.props import cluster_props
from tests.cluster.stacks import MODEL_BUCKET_ARN

ADMIN = "arn:aws:iam::123456789012:role/platform/admin"


def cluster_body(synth):
    (body,) = synth.resources("aws_eks_cluster").values()
    return body


# --- EKS cluster -------------------------------------------------------------------------


def test_cluster_version_name_and_private_endpoint(example):
    body = cluster_body(example)
    assert body["name"] == "sdaas"
    assert body["version"] == "1.35"
    vpc = body["vpc_config"]
    assert vpc["endpoint_private_access"] is True
    assert vpc["endpoint_public_access"] is False
    assert "public_access_cidrs" not in vpc
    assert vpc["subnet_ids"] == [
        example.ref("aws_subnet", f"Network/PrivateSubnet{k}", "id") for k in "ABC"]
    assert vpc["security_group_ids"] == [
        example.ref("aws_security_group", "Cluster/ClusterSecurityGroup", "id")]


def test_public_endpoint_only_with_an_allowlist(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(
        endpoint_public_access_cidrs=("203.0.113.0/24", "198.51.100.7/32")))
    vpc = cluster_body(synth)["vpc_config"]
    assert vpc["endpoint_public_access"] is True
    assert vpc["public_access_cidrs"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert vpc["endpoint_private_access"] is True


def test_secrets_are_envelope_encrypted_with_a_rotating_customer_key(example):
    body = cluster_body(example)
    key_ref = example.ref("aws_kms_key", "Cluster/Key", "arn")
    assert body["encryption_config"] == {"provider": {"key_arn": key_ref},
                                         "resources": ["secrets"]}
    key = example.by_path("aws_kms_key", "Cluster/Key")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 30
    # The control plane role may use exactly that key for envelope encryption.
    (statement,) = example.policy("ClusterRole/SecretsEncryption/Document")
    assert statement["resources"] == [key_ref]
    assert sorted(statement["actions"]) == [
        "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"]


def test_all_control_plane_log_types_go_to_an_encrypted_log_group_with_retention(example):
    body = cluster_body(example)
    assert body["enabled_cluster_log_types"] == list(CLUSTER_LOG_TYPES)
    assert set(CLUSTER_LOG_TYPES) == {"api", "audit", "authenticator", "controllerManager",
                                      "scheduler"}
    logs = example.by_path("aws_cloudwatch_log_group", "Cluster/ControlPlaneLogs")
    assert logs["name"] == "/aws/eks/sdaas/cluster"  # the name EKS writes to
    assert logs["retention_in_days"] == 30
    assert logs["kms_key_id"] == example.ref("aws_kms_key", "Cluster/Key", "arn")
    # Created first, so EKS does not create an unmanaged one without retention.
    assert example.address_of("aws_cloudwatch_log_group", "Cluster/ControlPlaneLogs") in body[
        "depends_on"]


def test_logs_may_use_the_key_only_for_this_accounts_log_groups(example):
    statements = {s["sid"]: s for s in example.policy("Cluster/KeyPolicy")}
    logs = statements["LogsUseKey"]
    (condition,) = logs["condition"]
    assert condition["test"] == "ArnLike"
    assert condition["variable"] == "kms:EncryptionContext:aws:logs:arn"
    assert condition["values"][0].endswith(":log-group:*")
    assert "kms:CreateGrant" not in logs["actions"]


def test_authentication_is_api_with_explicit_access_entries(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(admin_role_arns=(ADMIN,)))
    access = cluster_body(synth)["access_config"]
    assert access == {"authentication_mode": "API",
                      "bootstrap_cluster_creator_admin_permissions": False}
    entries = {body["//"]["metadata"]["path"].rsplit("/", 1)[1]: body
               for body in synth.resources("aws_eks_access_entry").values()}
    assert sorted(entries) == ["Admin-123456789012-admin", "CreatorAdmin"]
    assert entries["Admin-123456789012-admin"]["principal_arn"] == ADMIN
    # The creator is the IAM role behind the session running Terraform, not its STS ARN.
    assert entries["CreatorAdmin"]["principal_arn"] == synth.data_ref(
        "aws_iam_session_context", "Cluster/CreatorSession", "issuer_arn")
    assert {e["type"] for e in entries.values()} == {"STANDARD"}
    associations = list(synth.resources("aws_eks_access_policy_association").values())
    assert len(associations) == 2
    for association in associations:
        assert association["policy_arn"].endswith(
            ":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        assert association["access_scope"] == {"type": "cluster"}


def test_without_creator_admin_only_the_listed_roles_get_entries(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(
        cluster_creator_admin=False, admin_role_arns=(ADMIN,)))
    assert [e["principal_arn"] for e in synth.resources("aws_eks_access_entry").values()] == [
        ADMIN]
    assert not synth.data("aws_iam_session_context")


def test_cluster_role_is_for_eks_only(example):
    (trust,) = example.policy("Cluster/ClusterRole/Trust")
    assert trust["principals"] == [{"type": "Service", "identifiers": ["eks.amazonaws.com"]}]
    attachments = [a["policy_arn"] for a in
                   example.resources("aws_iam_role_policy_attachment").values()
                   if a["//"]["metadata"]["path"].startswith("sdaas/Cluster/ClusterRole/")]
    assert [a.rsplit("/", 1)[1] for a in attachments] == ["AmazonEKSClusterPolicy"]


# --- system node group ------------------------------------------------------------------


def test_system_node_group_is_two_on_demand_nodes_labelled_for_controllers(example):
    group = example.by_path("aws_eks_node_group", "Cluster/SystemNodeGroup")
    assert group["capacity_type"] == "ON_DEMAND"
    assert group["instance_types"] == ["t4g.medium"]
    assert group["ami_type"] == "AL2023_ARM_64_STANDARD"  # Graviton: the arm64 AMI
    assert group["scaling_config"]["desired_size"] == 2
    assert group["scaling_config"]["min_size"] == 2
    assert group["labels"] == {"sd.node-role": "system"}
    assert example.cluster.system_node_selector == {"sd.node-role": "system"}
    assert group["subnet_ids"] == cluster_body(example)["vpc_config"]["subnet_ids"]


def test_system_nodes_use_imdsv2_hop_limit_one_and_an_encrypted_root(example):
    template = example.by_path("aws_launch_template", "Cluster/SystemNodeLaunchTemplate")
    assert template["metadata_options"]["http_tokens"] == "required"
    assert template["metadata_options"]["http_put_response_hop_limit"] == 1
    (device,) = template["block_device_mappings"]
    assert device["device_name"] == "/dev/xvda"
    assert device["ebs"]["encrypted"] == "true"
    assert device["ebs"]["volume_type"] == "gp3"
    assert template["vpc_security_group_ids"] == [
        example.ref("aws_security_group", "Cluster/NodeSecurityGroup", "id")]
    group = example.by_path("aws_eks_node_group", "Cluster/SystemNodeGroup")
    assert group["launch_template"]["id"] == example.ref(
        "aws_launch_template", "Cluster/SystemNodeLaunchTemplate", "id")


def test_system_node_role_has_no_cni_permissions(example):
    """The VPC CNI has its own Pod Identity role; nodes keep only what kubelet needs."""
    attachments = sorted(
        a["policy_arn"].rsplit("/", 1)[1]
        for a in example.resources("aws_iam_role_policy_attachment").values()
        if "/Cluster/SystemNodeRole/" in a["//"]["metadata"]["path"])
    assert attachments == ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy",
                           "AmazonSSMManagedInstanceCore"]


# --- add-ons ------------------------------------------------------------------------------


def addons(synth):
    return {b["addon_name"]: b for b in synth.resources("aws_eks_addon").values()}


def test_addons_are_the_pinned_versions_from_the_configuration(example, example_config):
    found = {name: body["addon_version"] for name, body in addons(example).items()}
    assert found == {**example_config.cluster.addons, "amazon-cloudwatch-observability":
                     example_config.cluster.cloudwatch_observability_version}
    assert cluster_body(example)["bootstrap_self_managed_addons"] is False
    for body in addons(example).values():
        assert body["resolve_conflicts_on_create"] == "OVERWRITE"


def test_networking_addons_come_before_the_nodes_and_the_rest_after(example):
    group_address = example.address_of("aws_eks_node_group", "Cluster/SystemNodeGroup")
    group = example.by_path("aws_eks_node_group", "Cluster/SystemNodeGroup")
    for name, body in addons(example).items():
        address = example.address_of("aws_eks_addon", f"Cluster/Addon-{name}")
        if name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
            assert address in group["depends_on"], name
            assert group_address not in body.get("depends_on", []), name
        elif name == "amazon-cloudwatch-observability":
            # ... and after its log groups and its permissions.
            assert body["depends_on"][0] == group_address
            assert sorted(body["depends_on"][1:]) == sorted([
                *(example.address_of("aws_cloudwatch_log_group", f"Cluster/ContainerLogs-{k}")
                  for k in CONTAINER_LOG_KINDS),
                example.address_of("aws_iam_role_policy",
                                   "CloudWatchAgentRole/ContainerInsights/Policy")])
        else:
            assert body["depends_on"] == [group_address], name


def test_vpc_cni_has_its_own_pod_identity_role(example):
    cni = addons(example)["vpc-cni"]
    (association,) = cni["pod_identity_association"]
    assert association["service_account"] == "aws-node"
    assert association["role_arn"] == example.ref("aws_iam_role", "Cluster/VpcCniRole/Role", "arn")
    (trust,) = example.policy("Cluster/VpcCniRole/Trust")
    assert trust["principals"] == [{"type": "Service",
                                    "identifiers": ["pods.eks.amazonaws.com"]}]
    assert sorted(trust["actions"]) == ["sts:AssumeRole", "sts:TagSession"]


def test_mountpoint_driver_may_only_read_the_model_bucket(example):
    driver = addons(example)["aws-mountpoint-s3-csi-driver"]
    (association,) = driver["pod_identity_association"]
    assert association["service_account"] == "s3-csi-driver-sa"
    assert association["role_arn"] == example.ref(
        "aws_iam_role", "Cluster/MountpointS3Role/Role", "arn")
    statements = example.policy("Cluster/MountpointS3Role/ReadModelBucket/Document")
    assert [(s["actions"], s["resources"]) for s in statements] == [
        (["s3:ListBucket"], [MODEL_BUCKET_ARN]),
        (["s3:GetObject"], [f"{MODEL_BUCKET_ARN}/*"]),
    ]
    # Its node pods must run on the tainted GPU nodes too.
    assert json.loads(driver["configuration_values"]) == {"node": {"tolerateAllTaints": True}}


def test_mountpoint_role_decrypts_with_the_model_bucket_key_when_given(synth_variant):
    key = "arn:aws:kms:us-west-2:123456789012:key/1111-2222"
    synth = synth_variant(cluster_props=GpuEksClusterProps(
        model_bucket_arn=MODEL_BUCKET_ARN, model_bucket_kms_key_arn=key))
    statements = synth.policy("Cluster/MountpointS3Role/ReadModelBucket/Document")
    assert statements[-1]["actions"] == ["kms:Decrypt"]
    assert statements[-1]["resources"] == [key]


def test_without_a_model_bucket_the_driver_has_no_identity(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps())
    assert "pod_identity_association" not in addons(synth)["aws-mountpoint-s3-csi-driver"]
    assert not any("MountpointS3Role" in b["//"]["metadata"]["path"]
                   for b in synth.resources("aws_iam_role").values())


def test_coredns_runs_on_the_system_nodes(example):
    coredns = addons(example)["coredns"]
    assert json.loads(coredns["configuration_values"]) == {
        "nodeSelector": {"sd.node-role": "system"}}


def test_cloudwatch_observability_is_on_by_default_and_none_turns_it_off(example,
                                                                         synth_variant):
    addon = addons(example)["amazon-cloudwatch-observability"]
    assert addon["addon_version"] == DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION
    assert addon["pod_identity_association"] == [{
        "role_arn": example.ref("aws_iam_role", "Cluster/CloudWatchAgentRole/Role", "arn"),
        "service_account": "cloudwatch-agent"}]
    assert example.cluster.container_insights_enabled
    off = synth_variant(cluster_props=GpuEksClusterProps(cloudwatch_observability_version=None))
    assert "amazon-cloudwatch-observability" not in addons(off)
    assert not any("ContainerLogs" in b["//"]["metadata"]["path"]
                   for b in off.resources("aws_cloudwatch_log_group").values())
    assert not off.cluster.container_insights_enabled
    assert off.cluster.container_log_group_names == {}


def test_container_log_groups_exist_first_with_retention_and_the_cluster_key(example):
    names = {}
    for kind in CONTAINER_LOG_KINDS:
        group = example.by_path("aws_cloudwatch_log_group", f"Cluster/ContainerLogs-{kind}")
        assert group["retention_in_days"] == 30
        assert group["kms_key_id"] == example.ref("aws_kms_key", "Cluster/Key", "arn")
        names[kind] = group["name"]
    assert names == {kind: f"/aws/containerinsights/sdaas/{kind}"
                     for kind in ("application", "dataplane", "host", "performance", "emf")}
    assert example.cluster.container_log_group_names == names


def test_container_log_retention_is_its_own_setting(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(container_log_retention_days=7))
    group = synth.by_path("aws_cloudwatch_log_group", "Cluster/ContainerLogs-application")
    assert group["retention_in_days"] == 7
    with pytest.raises(ValueError, match="container_log_retention_days must be one of"):
        GpuEksClusterProps(container_log_retention_days=10)


def test_cloudwatch_agent_may_write_its_log_groups_only(example):
    """No managed policy: an inline policy scoped to the cluster's Container Insights log
    groups, no retention changes, no PutMetricData, no X-Ray."""
    attached = [a for a in example.resources("aws_iam_role_policy_attachment").values()
                if "/CloudWatchAgentRole/" in a["//"]["metadata"]["path"]]
    assert attached == []
    statements = {s["sid"]: s for s in example.policy(
        "CloudWatchAgentRole/ContainerInsights/Document")}
    assert set(statements) == {"WriteContainerLogs", "FindLogGroups", "DescribeNodes"}
    write = statements["WriteContainerLogs"]
    assert sorted(write["actions"]) == ["logs:CreateLogGroup", "logs:CreateLogStream",
                                        "logs:DescribeLogStreams", "logs:PutLogEvents"]
    groups = [example.ref("aws_cloudwatch_log_group", f"Cluster/ContainerLogs-{k}", "arn")
              for k in CONTAINER_LOG_KINDS]
    assert sorted(write["resources"]) == sorted(groups + [f"{g}:*" for g in groups])
    assert statements["FindLogGroups"]["actions"] == ["logs:DescribeLogGroups"]
    assert statements["FindLogGroups"]["resources"][0].endswith(":log-group:*")
    assert sorted(statements["DescribeNodes"]["actions"]) == ["ec2:DescribeTags",
                                                              "ec2:DescribeVolumes"]
    every_action = {a for s in statements.values() for a in s["actions"]}
    assert not every_action & {"logs:PutRetentionPolicy", "cloudwatch:PutMetricData",
                               "xray:PutTraceSegments"}


def test_observability_configuration_tolerates_gpu_taints_and_ships_emf(example):
    config = json.loads(addons(example)["amazon-cloudwatch-observability"]
                        ["configuration_values"].replace("$${", "${"))
    assert config["tolerations"] == [{"operator": "Exists"}]  # GPU nodes are tainted
    kubernetes = config["agent"]["config"]["logs"]["metrics_collected"]["kubernetes"]
    assert kubernetes == {"enhanced_container_insights": True,
                          "accelerated_compute_metrics": True}
    assert "traces" not in config["agent"]["config"]  # Application Signals off
    (name, pipeline), = config["containerLogs"]["fluentBit"]["config"]["extraFiles"].items()
    assert name == "emf-metrics.conf"
    assert "log_group_name      /aws/containerinsights/${CLUSTER_NAME}/emf" in pipeline
    assert "log_format          json/emf" in pipeline and "log_key             log" in pipeline


def test_fluent_bit_variables_are_escaped_from_terraform(example):
    """Terraform reads ${...} as interpolation: the add-on must receive them literally."""
    raw = addons(example)["amazon-cloudwatch-observability"]["configuration_values"]
    assert "$${CLUSTER_NAME}" in raw and "$${AWS_REGION}" in raw
    assert "${" not in raw.replace("$${", "")


# --- network --------------------------------------------------------------------------------


def subnets(synth, kind):
    return {b["//"]["metadata"]["path"].rsplit(kind, 1)[1]: b
            for b in synth.resources("aws_subnet").values()
            if f"/{kind}" in b["//"]["metadata"]["path"]}


def test_three_pinned_zones_with_private_and_public_subnets(example):
    private = subnets(example, "PrivateSubnet")
    public = subnets(example, "PublicSubnet")
    assert {k: s["cidr_block"] for k, s in private.items()} == {
        "A": "10.0.0.0/19", "B": "10.0.32.0/19", "C": "10.0.64.0/19"}
    assert {k: s["cidr_block"] for k, s in public.items()} == {
        "A": "10.0.224.0/24", "B": "10.0.225.0/24", "C": "10.0.226.0/24"}
    assert [private[k]["availability_zone"] for k in "ABC"] == [
        "us-west-2a", "us-west-2b", "us-west-2c"]
    assert not example.data("aws_availability_zones")  # pinned: no lookup that could shift
    for subnet in (*private.values(), *public.values()):
        assert subnet["map_public_ip_on_launch"] is False


def test_unpinned_zones_come_from_the_available_zones(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(vpc=NewVpcProps(az_count=2)))
    (zones,) = synth.data("aws_availability_zones").values()
    assert zones["state"] == "available"
    assert len(subnets(synth, "PrivateSubnet")) == 2


def test_private_subnets_and_node_group_are_tagged_for_karpenter_discovery(example):
    for subnet in subnets(example, "PrivateSubnet").values():
        assert subnet["tags"]["karpenter.sh/discovery"] == "sdaas"
    for subnet in subnets(example, "PublicSubnet").values():
        assert "karpenter.sh/discovery" not in subnet["tags"]
    node_sg = example.by_path("aws_security_group", "Cluster/NodeSecurityGroup")
    assert node_sg["tags"]["karpenter.sh/discovery"] == "sdaas"
    cluster_sg = example.by_path("aws_security_group", "Cluster/ClusterSecurityGroup")
    assert "karpenter.sh/discovery" not in cluster_sg["tags"]


def test_single_nat_gateway_by_default_and_one_per_zone_when_configured(example,
                                                                        synth_variant):
    assert len(example.resources("aws_nat_gateway")) == 1  # config.example.yaml: single
    routes = [r for r in example.resources("aws_route").values()
              if "PrivateDefaultRoute" in r["//"]["metadata"]["path"]]
    assert {r["nat_gateway_id"] for r in routes} == {
        example.ref("aws_nat_gateway", "Network/NatGatewayA", "id")}
    assert NewVpcProps().nat_gateways == "single"
    per_zone = synth_variant(cluster_props=GpuEksClusterProps(
        vpc=NewVpcProps(nat_gateways="one_per_az")))
    assert len(per_zone.resources("aws_nat_gateway")) == 3
    zone_routes = {r["//"]["metadata"]["path"][-1]: r["nat_gateway_id"]
                   for r in per_zone.resources("aws_route").values()
                   if "PrivateDefaultRoute" in r["//"]["metadata"]["path"]}
    assert zone_routes == {k: per_zone.ref("aws_nat_gateway", f"Network/NatGateway{k}", "id")
                           for k in "ABC"}


def test_s3_gateway_endpoint_always_and_interface_endpoints_opt_in(example, synth_variant):
    (gateway,) = example.resources("aws_vpc_endpoint").values()  # the example: S3 only
    assert gateway["vpc_endpoint_type"] == "Gateway"
    assert NewVpcProps().interface_endpoints == ()
    example = synth_variant(cluster_props=GpuEksClusterProps(
        vpc=NewVpcProps(interface_endpoints=DEFAULT_INTERFACE_ENDPOINTS)))
    endpoints = {b["service_name"].split("}.", 1)[1]: b
                 for b in example.resources("aws_vpc_endpoint").values()}
    assert sorted(endpoints) == sorted(("s3", *DEFAULT_INTERFACE_ENDPOINTS))
    assert set(DEFAULT_INTERFACE_ENDPOINTS) == {"ecr.api", "ecr.dkr", "sts", "sqs", "sns", "logs"}
    s3 = endpoints.pop("s3")
    assert s3["vpc_endpoint_type"] == "Gateway"
    assert s3["route_table_ids"] == [
        example.ref("aws_route_table", f"Network/PrivateRouteTable{k}", "id") for k in "ABC"]
    for service, endpoint in endpoints.items():
        assert endpoint["vpc_endpoint_type"] == "Interface", service
        assert endpoint["private_dns_enabled"] is True, service
        assert len(endpoint["subnet_ids"]) == 3
    rule = example.by_path("aws_vpc_security_group_ingress_rule", "Network/EndpointIngressHttps")
    assert (rule["from_port"], rule["to_port"], rule["cidr_ipv4"]) == (443, 443, "10.0.0.0/16")


def test_interface_endpoints_can_be_turned_off(synth_variant):
    synth = synth_variant(cluster_props=GpuEksClusterProps(
        vpc=NewVpcProps(interface_endpoints=())))
    assert [b["vpc_endpoint_type"] for b in synth.resources("aws_vpc_endpoint").values()] == [
        "Gateway"]


def test_flow_logs_and_a_default_security_group_that_admits_nothing(example):
    flow = example.by_path("aws_flow_log", "Network/FlowLog")
    assert flow["traffic_type"] == "ALL"
    assert flow["log_destination"] == example.ref(
        "aws_cloudwatch_log_group", "Network/FlowLogGroup", "arn")
    group = example.by_path("aws_cloudwatch_log_group", "Network/FlowLogGroup")
    assert group["kms_key_id"] == example.ref("aws_kms_key", "Cluster/Key", "arn")
    default = example.by_path("aws_default_security_group", "Network/DefaultSecurityGroup")
    assert default["ingress"] == [] and default["egress"] == []


def test_security_group_rules_admit_only_nodes_and_the_control_plane(example):
    node_sg = example.ref("aws_security_group", "Cluster/NodeSecurityGroup", "id")
    cluster_sg = example.ref("aws_security_group", "Cluster/ClusterSecurityGroup", "id")
    rules = [r for r in example.resources("aws_vpc_security_group_ingress_rule").values()
             if "/Network/" not in r["//"]["metadata"]["path"]]
    into_cluster = [r for r in rules if r["security_group_id"] == cluster_sg]
    assert [(r["from_port"], r["referenced_security_group_id"]) for r in into_cluster] == [
        (443, node_sg)]
    into_nodes = [r for r in rules if r["security_group_id"] == node_sg]
    assert all("cidr_ipv4" not in r for r in into_nodes)  # never from an address range
    from_cluster = sorted(r["from_port"] for r in into_nodes
                          if r["referenced_security_group_id"] == cluster_sg)
    assert from_cluster == sorted(p for p, _ in CONTROL_PLANE_TO_NODE_PORTS)
    assert 10250 in from_cluster and 3389 not in from_cluster and 22 not in from_cluster
    for rule in into_nodes:
        if rule["referenced_security_group_id"] == cluster_sg:
            assert rule["from_port"] == rule["to_port"]


def test_existing_vpc_subnets_get_the_discovery_tag_and_nothing_else(synth_variant):
    subnet_ids = ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2")
    synth = synth_variant(cluster_props=GpuEksClusterProps(vpc=ExistingVpcProps(
        vpc_id="vpc-0123456789abcdef0", private_subnet_ids=subnet_ids)))
    assert not synth.resources("aws_vpc") and not synth.resources("aws_subnet")
    assert not synth.resources("aws_nat_gateway") and not synth.resources("aws_vpc_endpoint")
    tags = sorted((t["resource_id"], t["key"], t["value"])
                  for t in synth.resources("aws_ec2_tag").values())
    assert tags == [(s, "karpenter.sh/discovery", "sdaas") for s in subnet_ids]
    assert cluster_body(synth)["vpc_config"]["subnet_ids"] == list(subnet_ids)
    node_sg = synth.by_path("aws_security_group", "Cluster/NodeSecurityGroup")
    assert node_sg["vpc_id"] == "vpc-0123456789abcdef0"


# --- attributes -------------------------------------------------------------------------------


def test_kubernetes_connection_uses_an_exec_token_and_the_decoded_ca(example):
    conn = example.cluster.kubernetes_connection
    assert conn.exec_command == "aws"
    assert conn.exec_api_version == "client.authentication.k8s.io/v1beta1"
    assert conn.exec_args[:3] == ("eks", "get-token", "--cluster-name")
    assert conn.exec_args[4] == "--region"
    provider = example.doc["provider"]["helm"][0]["kubernetes"]
    cluster_address = example.address_of("aws_eks_cluster", "Cluster/Cluster")
    assert provider["host"] == "${" + cluster_address + ".endpoint}"
    assert provider["cluster_ca_certificate"] == (
        "${base64decode(" + cluster_address + ".certificate_authority[0].data)}")
    assert provider["exec"]["args"] == [
        "eks", "get-token", "--cluster-name", "${" + cluster_address + ".name}",
        "--region", example.data_ref("aws_region", "Cluster/Region", "id")]


def test_plain_attributes(example):
    assert example.cluster.kubernetes_version == "1.35"
    assert example.cluster.physical_cluster_name == "sdaas"
    assert len(example.cluster.private_subnet_ids) == 3
    # node group + the five required add-ons; releases do not wait for log shipping
    assert len(example.cluster.ready) == 6


def test_pod_identity_helper_creates_an_association_under_the_given_scope(synth_variant):
    from constructs_lib._cdktf import Construct, Testing
    from tests.cluster.stacks import build_stack

    app = Testing.app()
    stack, cluster, _ = build_stack(app, "podidentity", cluster_props=GpuEksClusterProps())
    owner = Construct(stack, "Owner")
    cluster.add_pod_identity(owner, "Association", namespace="sd", service_account="runner",
                             role_arn="arn:aws:iam::123456789012:role/runner")
    doc = stack.to_terraform()
    (body,) = doc["resource"]["aws_eks_pod_identity_association"].values()
    assert body["//"]["metadata"]["path"] == "podidentity/Owner/Association"
    assert (body["namespace"], body["service_account"]) == ("sd", "runner")
    assert body["cluster_name"].endswith(".name}")


# --- props validation -----------------------------------------------------------------------


def test_props_list_every_problem_in_the_users_words():
    with pytest.raises(ValueError) as info:
        GpuEksClusterProps(
            name="Bad_Name",
            kubernetes_version="1.35.1",
            vpc=NewVpcProps(cidr="10.0.0.0/8", az_count=1),
            endpoint_public_access_cidrs=("0.0.0.0/0", "not-a-cidr"),
            admin_role_arns=("arn:aws:iam::123456789012:user/bob",),
            log_retention_days=10,
            addon_versions={"vpc-cni": "latest"},
        )
    text = str(info.value)
    for expected in (
        'name must be 2-20 characters', 'kubernetes_version must look like "1.35"',
        "vpc.cidr must be an IPv4 block from /16 to /20 (got 10.0.0.0/8)",
        "vpc.az_count must be 2..6", "0.0.0.0/0 opens the API endpoint to the whole internet",
        '"not-a-cidr" is not a CIDR block', "is not an IAM role ARN",
        "log_retention_days must be one of CloudWatch's periods",
        "addon_versions: pin a version for kube-proxy, eks-pod-identity-agent, coredns",
        'addon_versions.vpc-cni: "latest" is not a pinned add-on version',
    ):
        assert expected in text, expected


def test_kube_proxy_must_match_the_kubernetes_version():
    versions = {"vpc-cni": "v1.20.4-eksbuild.2", "coredns": "v1.12.4-eksbuild.1",
                "kube-proxy": "v1.34.1-eksbuild.1", "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
                "aws-mountpoint-s3-csi-driver": "v2.1.0-eksbuild.1"}
    with pytest.raises(ValueError, match=r"kube-proxy v1\.34\.1-eksbuild\.1 does not match "
                                         r"kubernetes_version 1\.35"):
        GpuEksClusterProps(addon_versions=versions)
    assert GpuEksClusterProps(kubernetes_version="1.34", addon_versions=versions)


def test_existing_vpc_needs_two_subnets_and_real_ids():
    with pytest.raises(ValueError) as info:
        GpuEksClusterProps(vpc=ExistingVpcProps(vpc_id="vpc-1", private_subnet_ids=("s-1",)))
    assert "existing_vpc.vpc_id must look like vpc-" in str(info.value)
    assert "needs subnets in at least two zones (got 1)" in str(info.value)
    assert '"s-1" is not a subnet id' in str(info.value)


def test_pinned_zones_must_match_the_zone_count():
    with pytest.raises(ValueError, match=r"lists 2 zones but vpc\.az_count is 3"):
        GpuEksClusterProps(vpc=NewVpcProps(availability_zones=("us-west-2a", "us-west-2b")))


def test_subnet_plan_fits_a_small_vpc():
    private, public = NewVpcProps(cidr="10.1.0.0/20", az_count=6).subnet_cidrs()
    assert private[0] == "10.1.0.0/23" and len(private) == 6
    assert public == tuple(f"10.1.14.{16 * i}/28" for i in range(6))


def test_props_from_config_maps_the_cluster_section(example_config):
    props = cluster_props(example_config, model_bucket_arn=MODEL_BUCKET_ARN)
    assert props.name == example_config.name
    assert props.vpc == NewVpcProps(cidr="10.0.0.0/16", az_count=3, nat_gateways="single",
                                    availability_zones=("us-west-2a", "us-west-2b",
                                                        "us-west-2c"))
    assert props.model_bucket_arn == MODEL_BUCKET_ARN
    assert dict(props.addon_versions) == example_config.cluster.addons
    assert props.tags == tuple(sorted(example_config.tags.items()))


def test_ca_decoding_is_a_terraform_function_not_python():
    """The CA is a token until apply: decoding must happen in Terraform (base64decode)."""
    with pytest.raises(ValueError):
        base64.b64decode("${TfToken[TOKEN.1]}", validate=True)


def test_admin_roles_must_be_literal_arns():
    from constructs_lib._cdktf import Token

    reference = Token.as_string(Token.as_any("${aws_iam_role.x.arn}"))
    with pytest.raises(ValueError, match="admin_role_arns must be literal role ARNs"):
        GpuEksClusterProps(admin_role_arns=(reference,))


@pytest.mark.parametrize(("instance_type", "arch", "ami"), [
    ("t4g.medium", "arm64", "AL2023_ARM_64_STANDARD"),
    ("m7g.large", "arm64", "AL2023_ARM_64_STANDARD"),
    ("c6gn.large", "arm64", "AL2023_ARM_64_STANDARD"),
    ("a1.large", "arm64", "AL2023_ARM_64_STANDARD"),
    ("m7i.large", "x86_64", "AL2023_x86_64_STANDARD"),
    ("t3.medium", "x86_64", "AL2023_x86_64_STANDARD"),
    ("g6.xlarge", "x86_64", "AL2023_x86_64_STANDARD"),
])
def test_system_node_ami_follows_the_instance_architecture(instance_type, arch, ami):
    assert instance_architecture(instance_type) == arch
    props = GpuEksClusterProps(system_node_instance_type=instance_type)
    assert props.effective_system_node_ami_type == ami


def test_a_system_node_ami_for_the_wrong_architecture_is_refused():
    with pytest.raises(ValueError, match="AL2023_x86_64_STANDARD does not boot t4g.medium "
                                         r"\(arm64\): use AL2023_ARM_64_STANDARD"):
        GpuEksClusterProps(system_node_instance_type="t4g.medium",
                           system_node_ami_type="AL2023_x86_64_STANDARD")
