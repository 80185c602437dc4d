"""The Karpenter v1 controller's IAM policy, scoped to one cluster."""

from __future__ import annotations

from constructs_lib.iam import (
    Condition,
    Statement,
)


def controller_statements(*, cluster_name: str, cluster_arn: str, region: str,
                          account_id: str, partition: str, node_role_arn: str,
                          queue_arn: str) -> dict[str, list[Statement]]:
    """The Karpenter v1 controller policy, as inline policies keyed by name.

    Follows the upstream ``cloudformation.yaml`` of Karpenter v1: writes only on resources
    tagged for this cluster, ``iam:PassRole`` only on the node role, reads bound to the
    region. ``*`` resources only where the action has no resource-level permission.
    """
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    created = tuple(f"{ec2}:{account_id}:{kind}/*" for kind in (
        "fleet", "instance", "volume", "network-interface", "launch-template",
        "spot-instances-request"))
    profiles = (f"arn:{partition}:iam::{account_id}:instance-profile/*",)

    def eq(variable: str, *values: str) -> Condition:
        return Condition(test="StringEquals", variable=variable, values=values)

    def like(variable: str) -> Condition:
        return Condition(test="StringLike", variable=variable, values=("*",))

    request_tagged = (eq(f"aws:RequestTag/{owned}", "owned"),
                      eq("aws:RequestTag/eks:eks-cluster-name", cluster_name),
                      like("aws:RequestTag/karpenter.sh/nodepool"))
    resource_tagged = (eq(f"aws:ResourceTag/{owned}", "owned"),
                       like("aws:ResourceTag/karpenter.sh/nodepool"))
    return {
        "ControllerNodeLifecycle": [
            Statement(sid="AllowScopedEC2InstanceAccessActions",
                      actions=("ec2:RunInstances", "ec2:CreateFleet"),
                      resources=(f"{ec2}::image/*", f"{ec2}::snapshot/*",
                                 f"{ec2}:{account_id}:security-group/*",
                                 f"{ec2}:{account_id}:subnet/*",
                                 f"{ec2}:{account_id}:capacity-reservation/*")),
            Statement(sid="AllowScopedEC2LaunchTemplateAccessActions",
                      actions=("ec2:RunInstances", "ec2:CreateFleet"),
                      resources=(f"{ec2}:{account_id}:launch-template/*",),
                      conditions=resource_tagged),
            Statement(sid="AllowScopedEC2InstanceActionsWithTags",
                      actions=("ec2:RunInstances", "ec2:CreateFleet",
                               "ec2:CreateLaunchTemplate"),
                      resources=created, conditions=request_tagged),
            Statement(sid="AllowScopedResourceCreationTagging", actions=("ec2:CreateTags",),
                      resources=created,
                      conditions=(*request_tagged,
                                  eq("ec2:CreateAction", "RunInstances", "CreateFleet",
                                     "CreateLaunchTemplate"))),
            Statement(sid="AllowScopedResourceTagging", actions=("ec2:CreateTags",),
                      resources=(f"{ec2}:{account_id}:instance/*",),
                      conditions=(*resource_tagged,
                                  Condition(test="StringEqualsIfExists",
                                            variable="aws:RequestTag/eks:eks-cluster-name",
                                            values=(cluster_name,)),
                                  Condition(test="ForAllValues:StringEquals",
                                            variable="aws:TagKeys",
                                            values=("eks:eks-cluster-name",
                                                    "karpenter.sh/nodeclaim", "Name")))),
            Statement(sid="AllowScopedDeletion",
                      actions=("ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"),
                      resources=(f"{ec2}:{account_id}:instance/*",
                                 f"{ec2}:{account_id}:launch-template/*"),
                      conditions=resource_tagged),
        ],
        "ControllerIamIntegration": [
            Statement(sid="AllowPassingInstanceRole", actions=("iam:PassRole",),
                      resources=(node_role_arn,),
                      conditions=(eq("iam:PassedToService", "ec2.amazonaws.com"),)),
            Statement(sid="AllowScopedInstanceProfileCreationActions",
                      actions=("iam:CreateInstanceProfile",), resources=profiles,
                      conditions=(eq(f"aws:RequestTag/{owned}", "owned"),
                                  eq("aws:RequestTag/eks:eks-cluster-name", cluster_name),
                                  eq("aws:RequestTag/topology.kubernetes.io/region", region),
                                  like("aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"))),
            Statement(sid="AllowScopedInstanceProfileTagActions",
                      actions=("iam:TagInstanceProfile",), resources=profiles,
                      conditions=(eq(f"aws:ResourceTag/{owned}", "owned"),
                                  eq("aws:ResourceTag/topology.kubernetes.io/region", region),
                                  eq(f"aws:RequestTag/{owned}", "owned"),
                                  eq("aws:RequestTag/eks:eks-cluster-name", cluster_name),
                                  eq("aws:RequestTag/topology.kubernetes.io/region", region),
                                  like("aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass"),
                                  like("aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"))),
            Statement(sid="AllowScopedInstanceProfileActions",
                      actions=("iam:AddRoleToInstanceProfile",
                               "iam:RemoveRoleFromInstanceProfile",
                               "iam:DeleteInstanceProfile"),
                      resources=profiles,
                      conditions=(eq(f"aws:ResourceTag/{owned}", "owned"),
                                  eq("aws:ResourceTag/topology.kubernetes.io/region", region),
                                  like("aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass"))),
            Statement(sid="AllowInstanceProfileReadActions", actions=("iam:GetInstanceProfile",),
                      resources=profiles),
            Statement(sid="AllowUnscopedInstanceProfileListAction",
                      actions=("iam:ListInstanceProfiles",), resources=("*",),
                      star_reason="iam:ListInstanceProfiles lists the account: Karpenter's "
                                  "instance-profile garbage collection needs it"),
        ],
        "ControllerDiscovery": [
            Statement(sid="AllowRegionalReadActions",
                      actions=("ec2:DescribeAvailabilityZones",
                               "ec2:DescribeCapacityReservations", "ec2:DescribeImages",
                               "ec2:DescribeInstances", "ec2:DescribeInstanceTypeOfferings",
                               "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                               "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory",
                               "ec2:DescribeSubnets"),
                      resources=("*",),
                      conditions=(eq("aws:RequestedRegion", region),),
                      star_reason="EC2 Describe* actions have no resource-level permissions"),
            Statement(sid="AllowSSMReadActions", actions=("ssm:GetParameter",),
                      resources=(f"arn:{partition}:ssm:{region}::parameter/aws/service/*",)),
            Statement(sid="AllowPricingReadActions", actions=("pricing:GetProducts",),
                      resources=("*",),
                      star_reason="pricing:GetProducts has no resource-level permissions"),
            Statement(sid="AllowAPIServerEndpointDiscovery", actions=("eks:DescribeCluster",),
                      resources=(cluster_arn,)),
        ],
        "ControllerInterruption": [
            Statement(sid="AllowInterruptionQueueActions",
                      actions=("sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"),
                      resources=(queue_arn,)),
        ],
    }

