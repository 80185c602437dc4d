"""The cluster's managed add-ons: which are required, their pinned versions, and how each
is created (before or after the system nodes, with its Pod Identity role); what the
CloudWatch Observability add-on is configured with and what its agents may do."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from constructs_lib._cdktf import Construct, TerraformResource, Token
from constructs_lib._providers import aws
from constructs_lib.iam import Role, Statement

REQUIRED_ADDONS = (
    "vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-mountpoint-s3-csi-driver",
)
CLOUDWATCH_ADDON = "amazon-cloudwatch-observability"
# EKS add-ons that need nothing beyond a pinned version (no IAM role, no configuration):
# what addon_versions may add to the required ones.
OPTIONAL_ADDONS = (
    "cert-manager", "eks-node-monitoring-agent", "kube-state-metrics", "metrics-server",
    "prometheus-node-exporter", "snapshot-controller",
)
# Pinned CloudWatch Observability version (Container Insights with enhanced observability,
# Fluent Bit log shipping, NVIDIA DCGM metrics on GPU nodes); `aws eks
# describe-addon-versions --addon-name amazon-cloudwatch-observability`.
DEFAULT_CLOUDWATCH_OBSERVABILITY_VERSION = "v6.2.0-eksbuild.1"
# Pinned add-on versions for Kubernetes 1.35 (`aws eks describe-addon-versions
# --kubernetes-version 1.35 --addon-name <name>`).
DEFAULT_ADDON_VERSIONS: Mapping[str, str] = MappingProxyType({
    "vpc-cni": "v1.20.4-eksbuild.2",
    "coredns": "v1.12.4-eksbuild.1",
    "kube-proxy": "v1.35.0-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    "aws-mountpoint-s3-csi-driver": "v2.1.0-eksbuild.1",
})
# Created before the system node group: nodes need the CNI (and its credentials, from the
# Pod Identity agent) and kube-proxy to become Ready. The rest need running nodes.
BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")


def create_addon(scope: Construct, addon: str, version: str, *, cluster_name: str,
                 node_group: TerraformResource | None, role: Role | None = None,
                 service_account: str | None = None,
                 configuration: dict | None = None,
                 after: Sequence[TerraformResource] = ()) -> TerraformResource:
    """One ``aws_eks_addon`` (construct ID ``Addon-<name>``); add-ons outside
    :data:`BEFORE_NODES` wait for ``node_group``, every add-on for ``after``."""
    ea = aws.eks_addon
    return ea.EksAddon(
        scope, f"Addon-{addon}",
        cluster_name=cluster_name,
        addon_name=addon,
        addon_version=version,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        configuration_values=(terraform_literal(json.dumps(configuration, sort_keys=True))
                              if configuration else None),
        pod_identity_association=(
            [ea.EksAddonPodIdentityAssociation(role_arn=role.role_arn,
                                               service_account=service_account)]
            if role is not None else None),
        depends_on=([] if addon in BEFORE_NODES else [node_group]) + list(after) or None,
    )


def terraform_literal(text: str) -> str:
    """``text`` as a Terraform string literal: ``${`` and ``%{`` (interpolation and template
    directives, e.g. Fluent Bit's ``${AWS_REGION}``) escaped as ``$${`` and ``%%{``."""
    if Token.is_unresolved(text):
        raise ValueError("an add-on configuration must be literal (it holds a reference)")
    return text.replace("${", "$${").replace("%{", "%%{")


def model_bucket_statements(bucket_arn: str, kms_key_arn: str | None) -> list[Statement]:
    """What the Mountpoint S3 CSI driver may do: list and read the model bucket, and decrypt
    with its key when it has one."""
    statements = [Statement(sid="ListModelBucket", actions=("s3:ListBucket",),
                            resources=(bucket_arn,)),
                  Statement(sid="ReadModels", actions=("s3:GetObject",),
                            resources=(f"{bucket_arn}/*",))]
    if kms_key_arn is not None:
        statements.append(Statement(sid="DecryptModels", actions=("kms:Decrypt",),
                                    resources=(kms_key_arn,)))
    return statements


# --- amazon-cloudwatch-observability -------------------------------------------------------
# The log groups the add-on writes (Fluent Bit: application, dataplane, host; the CloudWatch
# agent: performance) plus "emf", where embedded-metric lines of every container go (below).
# GpuEksCluster creates them before the add-on, with retention and KMS, so Terraform owns
# their retention and the agents never need logs:PutRetentionPolicy.
CONTAINER_LOG_KINDS = ("application", "dataplane", "host", "performance", "emf")
CONTAINER_INSIGHTS_SERVICE_ACCOUNT = "cloudwatch-agent"  # Fluent Bit runs under it too
# Fluent Bit keeps container lines that are CloudWatch embedded-metric documents (they start
# with the "_aws" key, as agent/logs.py writes them).
EMF_LINE_REGEX = r'^\{"_aws":'
_EMF_PIPELINE = """\
[INPUT]
    Name                tail
    Tag                 emf.*
    Path                /var/log/containers/*.log
    Exclude_Path        /var/log/containers/cloudwatch-agent*, /var/log/containers/fluent-bit*
    multiline.parser    docker, cri
    DB                  /var/fluent-bit/state/flb_emf.db
    Mem_Buf_Limit       5MB
    Skip_Long_Lines     On
    Refresh_Interval    10
    Read_from_Head      ${READ_FROM_HEAD}

[FILTER]
    Name                grep
    Match               emf.*
    Regex               log @EMF_LINE_REGEX@

[OUTPUT]
    Name                cloudwatch_logs
    Match               emf.*
    region              ${AWS_REGION}
    log_group_name      /aws/containerinsights/${CLUSTER_NAME}/emf
    log_stream_prefix   ${HOST_NAME}-
    log_key             log
    log_format          json/emf
    auto_create_group   false
    extra_user_agent    container-insights
""".replace("@EMF_LINE_REGEX@", EMF_LINE_REGEX)
EMF_PIPELINE_FILE = "emf-metrics.conf"


def container_log_group_name(cluster_name: str, kind: str) -> str:
    """``/aws/containerinsights/<cluster>/<kind>``: where Container Insights writes."""
    return f"/aws/containerinsights/{cluster_name}/{kind}"


def cloudwatch_observability_configuration() -> dict:
    """The add-on's configuration values (its Helm chart's values, `aws eks
    describe-addon-configuration` shows the schema).

    * Every pod of the add-on tolerates every taint, so Fluent Bit, the CloudWatch agent and
      the NVIDIA DCGM exporter also run on the GPU nodes (tainted ``nvidia.com/gpu`` and
      ``sd.runtime``); it is the chart's default, made explicit here.
    * The agent runs Container Insights with enhanced observability and accelerated
      compute (GPU) metrics only: Application Signals and traces stay off, so the agent
      needs no X-Ray or Application Signals permission.
    * A Fluent Bit pipeline of its own ships container lines that are embedded-metric
      documents, unchanged (``log_key log``) and marked ``json/emf``, to the ``emf`` log
      group, where CloudWatch extracts their metrics. The default application pipeline
      wraps each line in a record with Kubernetes metadata, which hides the ``_aws`` key
      from metric extraction.
    """
    return {
        "tolerations": [{"operator": "Exists"}],
        "agent": {"config": {"logs": {"metrics_collected": {"kubernetes": {
            "enhanced_container_insights": True,
            "accelerated_compute_metrics": True,
        }}}}},
        "containerLogs": {"fluentBit": {"config": {"extraFiles": {
            EMF_PIPELINE_FILE: _EMF_PIPELINE,
        }}}},
    }


def cloudwatch_agent_statements(*, log_group_arns: Sequence[str],
                                logs_account_arn: str) -> list[Statement]:
    """What the CloudWatch agent and Fluent Bit may do: write to the cluster's Container
    Insights log groups, and read the EC2 facts the agent tags metrics with.

    ``logs:CreateLogGroup`` is granted on those groups only: they exist before the add-on,
    but Fluent Bit (``auto_create_group true`` in the add-on's default pipelines) may call
    it anyway and retries forever when it is denied. No ``PutRetentionPolicy`` (Terraform
    owns retention), no ``PutMetricData`` (metrics arrive as embedded-metric logs), no
    X-Ray (Application Signals and traces are off).
    """
    return [
        Statement(
            sid="WriteContainerLogs",
            actions=("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                     "logs:DescribeLogStreams"),
            resources=tuple(log_group_arns) + tuple(f"{arn}:*" for arn in log_group_arns),
        ),
        Statement(
            sid="FindLogGroups", actions=("logs:DescribeLogGroups",),
            resources=(logs_account_arn,),
        ),
        Statement(
            sid="DescribeNodes", actions=("ec2:DescribeTags", "ec2:DescribeVolumes"),
            resources=("*",),
            star_reason="EC2 Describe* actions have no resource-level permission",
        ),
    ]
