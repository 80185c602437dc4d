"""The :class:`GpuEksCluster` construct (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from constructs_lib._cdktf import Construct, TerraformResource, Token
from constructs_lib._providers import aws
from constructs_lib.cluster.addons import (
    BEFORE_NODES,
    CONTAINER_INSIGHTS_SERVICE_ACCOUNT,
    CONTAINER_LOG_KINDS,
    cloudwatch_agent_statements,
    cloudwatch_observability_configuration,
    container_log_group_name,
    create_addon,
    model_bucket_statements,
)
from constructs_lib.cluster.base import ClusterBase
from constructs_lib.cluster.existing import ExistingCluster
from constructs_lib.cluster.network import Network
from constructs_lib.cluster.props import (
    CLOUDWATCH_ADDON,
    CONTROL_PLANE_TO_NODE_PORTS,
    DISCOVERY_TAG,
    REQUIRED_ADDONS,
    ROLE_ARN_RE,
    SYSTEM_NODE_SELECTOR,
    GpuEksClusterProps,
    NewVpcProps,
)
from constructs_lib.iam import (
    Role,
    Statement,
    key_policy_statements,
    render_statements,
    service_principal,
)
from constructs_lib.tags import apply_tags


class GpuEksCluster(ClusterBase):
    """The VPC, the EKS cluster, its system node group and its managed add-ons."""

    def __init__(self, scope: Construct, id_: str, *,
                 props: GpuEksClusterProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or GpuEksClusterProps()
        self._props = props
        name = props.name
        cluster_name = props.physical_cluster_name
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Caller")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        region = aws.data_aws_region.DataAwsRegion(self, "Region")
        self._account_id = identity.account_id
        self._partition = partition.partition
        self._region = region.id  # the region's name in every AWS provider 5.x and 6.x
        managed = f"arn:{partition.partition}:iam::aws:policy"

        # --- KMS: secrets envelope encryption and log groups ------------------------------
        key_policy = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
            self, "KeyPolicy", statement=render_statements(key_policy_statements(
                partition=partition.partition, region=self._region,
                account_id=identity.account_id)),
        )
        self._key = aws.kms_key.KmsKey(
            self, "Key", description=f"{cluster_name}: EKS secrets and cluster logs",
            enable_key_rotation=True, deletion_window_in_days=30, policy=key_policy.json,
        )
        aws.kms_alias.KmsAlias(self, "KeyAlias", name=f"alias/{name}-eks",
                               target_key_id=self._key.key_id)

        # --- network ----------------------------------------------------------------------
        self._network: Network | None = None
        if isinstance(props.vpc, NewVpcProps):
            self._network = Network(self, "Network", props=props, vpc_props=props.vpc,
                                     region=self._region, key_arn=self._key.arn)
            self._vpc_id = self._network.vpc.id
            self._private_subnet_ids = [s.id for s in self._network.private_subnets]
        else:
            self._vpc_id = props.vpc.vpc_id
            self._private_subnet_ids = list(props.vpc.private_subnet_ids)
            if props.vpc.tag_subnets_for_discovery:
                for subnet in props.vpc.private_subnet_ids:
                    aws.ec2_tag.Ec2Tag(self, f"DiscoveryTag-{subnet}", resource_id=subnet,
                                       key=DISCOVERY_TAG, value=cluster_name)

        # --- security groups --------------------------------------------------------------
        self._cluster_sg = aws.security_group.SecurityGroup(
            self, "ClusterSecurityGroup", name=f"{name}-eks-cluster",
            description="EKS control plane: HTTPS from the nodes", vpc_id=self._vpc_id,
            tags={"Name": f"{name}-eks-cluster"},
        )
        self._node_sg = aws.security_group.SecurityGroup(
            self, "NodeSecurityGroup", name=f"{name}-eks-nodes",
            description="EKS nodes (system and Karpenter GPU nodes)", vpc_id=self._vpc_id,
            tags={"Name": f"{name}-eks-nodes", DISCOVERY_TAG: cluster_name},
        )
        sg_in = aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule
        sg_in(self, "ClusterIngressFromNodes", security_group_id=self._cluster_sg.id,
              ip_protocol="tcp", from_port=443, to_port=443,
              referenced_security_group_id=self._node_sg.id,
              description="Nodes and pods to the Kubernetes API")
        sg_in(self, "NodeIngressFromNodes", security_group_id=self._node_sg.id,
              ip_protocol="-1", referenced_security_group_id=self._node_sg.id,
              description="Node to node and pod to pod (pods share the nodes' group)")
        for port, what in CONTROL_PLANE_TO_NODE_PORTS:
            sg_in(self, f"NodeIngressFromCluster{port}", security_group_id=self._node_sg.id,
                  ip_protocol="tcp", from_port=port, to_port=port,
                  referenced_security_group_id=self._cluster_sg.id,
                  description=f"Control plane to {what}")
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            self, "NodeEgressAll", security_group_id=self._node_sg.id, ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Nodes reach the API, endpoints, registries and model hosts",
        )

        # --- cluster ----------------------------------------------------------------------
        cluster_role = Role(self, "ClusterRole", name=f"{name}-eks-cluster",
                            assumed_by=service_principal("eks.amazonaws.com"),
                            assume_actions=("sts:AssumeRole", "sts:TagSession"),
                            description=f"EKS control plane of {cluster_name}")
        cluster_policy = _attach_managed(cluster_role, "ClusterPolicy",
                                         f"{managed}/AmazonEKSClusterPolicy")
        cluster_role.add_policy("SecretsEncryption", [Statement(
            sid="EnvelopeEncryption",
            actions=("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"),
            resources=(self._key.arn,),
        )])
        self._log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "ControlPlaneLogs", name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=props.log_retention_days, kms_key_id=self._key.arn,
        )
        ekc = aws.eks_cluster
        eks_cluster = ekc.EksCluster(
            self, "Cluster",
            name=cluster_name,
            version=props.kubernetes_version,
            role_arn=cluster_role.role_arn,
            vpc_config=ekc.EksClusterVpcConfig(
                subnet_ids=self._private_subnet_ids,
                security_group_ids=[self._cluster_sg.id],
                endpoint_private_access=True,
                endpoint_public_access=bool(props.endpoint_public_access_cidrs),
                public_access_cidrs=list(props.endpoint_public_access_cidrs) or None,
            ),
            access_config=ekc.EksClusterAccessConfig(
                authentication_mode="API",
                # The creator gets an explicit, removable access entry below instead.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # Only the managed add-ons below; no unmanaged copies to fight with.
            bootstrap_self_managed_addons=False,
            encryption_config=ekc.EksClusterEncryptionConfig(
                resources=["secrets"],
                provider=ekc.EksClusterEncryptionConfigProvider(key_arn=self._key.arn),
            ),
            enabled_cluster_log_types=list(props.enabled_cluster_log_types),
            kubernetes_network_config=ekc.EksClusterKubernetesNetworkConfig(ip_family="ipv4"),
            # The policy outlives the cluster on destroy (EKS needs it to clean up ENIs).
            depends_on=[self._log_group, cluster_policy],
        )
        self._set_cluster(eks_cluster, physical_name=cluster_name,
                          kubernetes_version=props.kubernetes_version)

        # --- access entries ---------------------------------------------------------------
        admins: list[tuple[str, str]] = []
        if props.cluster_creator_admin:
            session = aws.data_aws_iam_session_context.DataAwsIamSessionContext(
                self, "CreatorSession", arn=identity.arn)
            admins.append(("CreatorAdmin", session.issuer_arn))
        for arn in props.admin_role_arns:
            admins.append((f"Admin-{_admin_key(arn)}", arn))
        self._access_entries: list = []
        for key, principal in admins:
            entry = aws.eks_access_entry.EksAccessEntry(
                self, key, cluster_name=self._cluster.name, principal_arn=principal,
                type="STANDARD")
            self._access_entries.append(entry)
            aws.eks_access_policy_association.EksAccessPolicyAssociation(
                self, f"{key}Policy", cluster_name=self._cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=(f"arn:{partition.partition}:eks::aws:cluster-access-policy/"
                            "AmazonEKSClusterAdminPolicy"),
                access_scope=aws.eks_access_policy_association.EksAccessPolicyAssociationAccessScope(
                    type="cluster"),
            )

        # --- add-ons needed before nodes ----------------------------------------------------
        versions = props.addon_versions
        self._addons: dict[str, TerraformResource] = {}
        cni_role = self._pod_identity_role(
            "VpcCniRole", f"{name}-vpc-cni", "VPC CNI (aws-node) manages pod networking")
        cni_role.attach_managed("CniPolicy", f"{managed}/AmazonEKS_CNI_Policy")
        self._addon("eks-pod-identity-agent", versions)
        self._addon("kube-proxy", versions)
        self._addon("vpc-cni", versions, role=cni_role, service_account="aws-node")

        # --- system node group --------------------------------------------------------------
        node_role = Role(self, "SystemNodeRole", name=f"{name}-system-nodes",
                         assumed_by=service_principal("ec2.amazonaws.com"),
                         description=f"System nodes of {cluster_name}")
        attachments = [
            _attach_managed(node_role, key, f"{managed}/{policy}")
            for key, policy in (("WorkerNodePolicy", "AmazonEKSWorkerNodePolicy"),
                                ("RegistryPullOnly", "AmazonEC2ContainerRegistryPullOnly"),
                                ("SsmManagedInstance", "AmazonSSMManagedInstanceCore"))
        ]
        lt = aws.launch_template
        tags = {"Name": f"{name}-system", "sd.node-role": "system", **dict(props.tags)}
        template = lt.LaunchTemplate(
            self, "SystemNodeLaunchTemplate", name=f"{name}-system-nodes",
            description="System nodes: IMDSv2 only, encrypted root volume",
            update_default_version=True,
            vpc_security_group_ids=[self._node_sg.id],
            metadata_options=lt.LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required",
                http_put_response_hop_limit=1, instance_metadata_tags="disabled"),
            block_device_mappings=[lt.LaunchTemplateBlockDeviceMappings(
                device_name="/dev/xvda",
                ebs=lt.LaunchTemplateBlockDeviceMappingsEbs(
                    volume_size=props.system_node_volume_gib, volume_type="gp3",
                    encrypted="true", delete_on_termination="true"),
            )],
            monitoring=lt.LaunchTemplateMonitoring(enabled=True),
            tag_specifications=[
                lt.LaunchTemplateTagSpecifications(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
        )
        ng = aws.eks_node_group
        self._node_group = ng.EksNodeGroup(
            self, "SystemNodeGroup",
            cluster_name=self._cluster.name,
            node_group_name=f"{name}-system",
            node_role_arn=node_role.role_arn,
            subnet_ids=self._private_subnet_ids,
            ami_type=props.effective_system_node_ami_type,
            capacity_type="ON_DEMAND",
            instance_types=[props.system_node_instance_type],
            labels=dict(SYSTEM_NODE_SELECTOR),
            scaling_config=ng.EksNodeGroupScalingConfig(
                desired_size=props.system_node_desired_size,
                min_size=props.system_node_desired_size,
                max_size=props.system_node_desired_size + 1),
            update_config=ng.EksNodeGroupUpdateConfig(max_unavailable=1),
            launch_template=ng.EksNodeGroupLaunchTemplate(
                id=template.id, version=Token.as_string(template.latest_version)),
            depends_on=[*attachments, *self._addons.values()],
        )

        # --- add-ons needing nodes ----------------------------------------------------------
        self._addon("coredns", versions,
                    configuration={"nodeSelector": dict(SYSTEM_NODE_SELECTOR)})
        s3_role = None
        if props.model_bucket_arn is not None:
            s3_role = self._pod_identity_role(
                "MountpointS3Role", f"{name}-s3-csi",
                "Mountpoint for Amazon S3 CSI driver: read-only on the model bucket")
            statements = model_bucket_statements(props.model_bucket_arn,
                                                 props.model_bucket_kms_key_arn)
            s3_role.add_policy("ReadModelBucket", statements)
        # GPU nodes carry NoSchedule taints; the driver's node pods must run there anyway.
        self._addon("aws-mountpoint-s3-csi-driver", versions, role=s3_role,
                    service_account="s3-csi-driver-sa",
                    configuration={"node": {"tolerateAllTaints": True}})
        self._container_log_groups: dict[str, str] = {}
        if props.cloudwatch_observability_version is not None:
            self._observability(props, partition.partition, self._region,
                                identity.account_id)
        # Add-ons beyond the required ones (pinned in addon_versions), after the nodes.
        for addon in sorted(set(versions) - set(REQUIRED_ADDONS)):
            self._addon(addon, versions)

        apply_tags(self, dict(props.tags))

    @staticmethod
    def from_attributes(scope: Construct, id_: str, *, cluster_name: str,
                        kubernetes_version: str,
                        system_node_selector: Mapping[str, str] = SYSTEM_NODE_SELECTOR,
                        system_node_count: int = 2,
                        ready: Sequence[TerraformResource] = ()) -> ExistingCluster:
        """A cluster created elsewhere, for the constructs that run on a cluster
        (:class:`ExistingCluster` says what it must provide)."""
        return ExistingCluster(scope, id_, cluster_name=cluster_name,
                               kubernetes_version=kubernetes_version,
                               system_node_selector=system_node_selector,
                               system_node_count=system_node_count, ready=ready)

    # --- helpers ---------------------------------------------------------------------------
    def _observability(self, props: GpuEksClusterProps, partition: str, region: str,
                       account_id: str) -> None:
        """Container Insights: its log groups (retention, KMS) first, then the add-on with a
        Pod Identity role that may write to those groups only."""
        groups = [
            aws.cloudwatch_log_group.CloudwatchLogGroup(
                self, f"ContainerLogs-{kind}",
                name=container_log_group_name(props.physical_cluster_name, kind),
                retention_in_days=props.container_log_retention_days,
                kms_key_id=self._key.arn,
            )
            for kind in CONTAINER_LOG_KINDS
        ]
        self._container_log_groups = {
            kind: container_log_group_name(props.physical_cluster_name, kind)
            for kind in CONTAINER_LOG_KINDS}
        role = self._pod_identity_role(
            "CloudWatchAgentRole", f"{props.name}-cloudwatch-agent",
            "CloudWatch agent and Fluent Bit of amazon-cloudwatch-observability")
        policy = role.add_policy("ContainerInsights", cloudwatch_agent_statements(
            log_group_arns=[group.arn for group in groups],
            logs_account_arn=f"arn:{partition}:logs:{region}:{account_id}:log-group:*"))
        self._addon(CLOUDWATCH_ADDON, {CLOUDWATCH_ADDON: props.cloudwatch_observability_version},
                    role=role, service_account=CONTAINER_INSIGHTS_SERVICE_ACCOUNT,
                    configuration=cloudwatch_observability_configuration(),
                    after=[*groups, policy.policy])

    def _pod_identity_role(self, id_: str, role_name: str, description: str) -> Role:
        return self.pod_identity_role(self, id_, name=role_name, description=description)

    def _addon(self, addon: str, versions: Mapping[str, str], *, role: Role | None = None,
               service_account: str | None = None,
               configuration: dict | None = None,
               after: list[TerraformResource] | None = None) -> None:
        self._addons[addon] = create_addon(
            self, addon, versions[addon], cluster_name=self._cluster.name,
            node_group=None if addon in BEFORE_NODES else self._node_group, role=role,
            service_account=service_account, configuration=configuration,
            after=after or ())

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> GpuEksClusterProps:
        return self._props

    @property
    def vpc_id(self) -> str:
        return self._vpc_id

    @property
    def private_subnet_ids(self) -> list[str]:
        return list(self._private_subnet_ids)

    @property
    def node_security_group_id(self) -> str:
        """Security group of every node; tagged ``karpenter.sh/discovery: <cluster>``."""
        return self._node_sg.id

    @property
    def cluster_security_group_id(self) -> str:
        return self._cluster_sg.id

    @property
    def kms_key_arn(self) -> str:
        return self._key.arn

    @property
    def system_node_selector(self) -> dict[str, str]:
        return dict(SYSTEM_NODE_SELECTOR)

    @property
    def container_insights_enabled(self) -> bool:
        """Whether amazon-cloudwatch-observability ships container logs and metrics."""
        return bool(self._container_log_groups)

    @property
    def container_log_group_names(self) -> dict[str, str]:
        """Container Insights log groups by kind (application, dataplane, host, performance,
        emf); empty when the add-on is off."""
        return dict(self._container_log_groups)

    @property
    def system_node_count(self) -> int:
        """How many system nodes run (where Karpenter, KEDA and CoreDNS run)."""
        return self._props.system_node_desired_size

    @property
    def ready(self) -> list[TerraformResource]:
        """What an in-cluster ``helm_release`` must depend on: nodes and add-ons. Not the
        observability add-on: nothing in the cluster needs it, and a release must not wait
        for (or fail with) the log shipping."""
        return [self._node_group, *(addon for name, addon in self._addons.items()
                                    if name != CLOUDWATCH_ADDON)]



def _attach_managed(role: Role, key: str, policy_arn: str) -> TerraformResource:
    """``role.attach_managed`` and the attachment it created (for ``depends_on``)."""
    role.attach_managed(key, policy_arn)
    return role.node.find_child(key)


def _admin_key(arn: str) -> str:
    """Stable construct-ID key of an admin role: ``<account>-<role name>`` (the props have
    checked that every entry is a literal role ARN)."""
    match = ROLE_ARN_RE.match(arn)
    assert match is not None, arn
    return f"{match.group(1)}-{match.group(2)}"


