"""A platform team's own CDKTF stack that includes the service, built from the installed
library (``pip install sd-async-eks``), with no checkout of its repository.

The team owns the app, the stack, the backend and the provider blocks, and its own
resources: a VPC with two private subnets and the role of an existing reporting service.
The library's constructs add the task front door, the EKS cluster (into the team's VPC),
Karpenter's GPU pools, KEDA and one runtime; grants give the reporting service's role the
right to submit tasks and read their results.

    python main.py        # writes cdktf.out/stacks/platform/cdk.tf.json (and its assets)
"""

from __future__ import annotations

import os

# isort: off
# The library first: it registers the provider bindings' packages, so each provider import
# below loads its one submodule (about a second) instead of all 2,100 (8-12 s, ~1 GB).
from constructs_lib import (
    AWS_PROVIDER_VERSIONS,
    HELM_PROVIDER_VERSIONS,
    AgentImageRepository,
    AgentImageRepositoryProps,
    ExistingVpcProps,
    GpuEksCluster,
    GpuEksClusterProps,
    GpuPoolRuntime,
    KarpenterGpuPool,
    KarpenterGpuPoolProps,
    KedaSqsScaler,
    KedaSqsScalerProps,
    ModelBucket,
    ModelBucketProps,
    RuntimeScaling,
    RuntimeSpec,
    SdRuntime,
    SdRuntimeProps,
    ServerlessIngress,
    ServerlessIngressProps,
)

# Modules of the bindings the library never uses, imported both ways.
import cdktf_cdktf_provider_aws.cloudwatch_dashboard
from cdktf import App, Fn, LocalBackend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws import ssm_parameter
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_helm.provider import (
    HelmProvider,
    HelmProviderKubernetes,
    HelmProviderKubernetesExec,
)
from constructs import Construct

# isort: on

NAME = "platform"
REGION = "eu-west-1"
RUNTIME = "sdxl"
# Cost allocation: every resource the library creates carries these (no default_tags here).
TAGS = {"team": "platform", "cost-center": "cc-4711"}


class PlatformStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        LocalBackend(self, path="terraform.tfstate")
        AwsProvider(self, "aws", region=REGION)
        self.add_override("terraform.required_providers.aws",
                          {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSIONS})

        # --- the team's own network: the cluster goes into it ----------------------------
        vpc = Vpc(self, "Vpc", cidr_block="10.20.0.0/16", enable_dns_support=True,
                  enable_dns_hostnames=True, tags={"Name": "platform"})
        subnets = [
            Subnet(self, f"Private{zone[-1].upper()}", vpc_id=vpc.id, cidr_block=cidr,
                   availability_zone=zone,
                   # Karpenter finds the subnets for GPU nodes by this tag.
                   tags={"Name": f"platform-private-{zone[-1]}",
                         "karpenter.sh/discovery": NAME})
            for zone, cidr in ((f"{REGION}a", "10.20.0.0/19"), (f"{REGION}b", "10.20.32.0/19"))
        ]

        # --- the service ------------------------------------------------------------------
        ingress = ServerlessIngress(self, "Ingress", props=ServerlessIngressProps(
            name=NAME,
            runtimes=(RuntimeSpec(name=RUNTIME, type="sdwebui",
                                  models=("sd_xl_base_1.0.safetensors",)),),
            rate_limit_per_second=10,
            burst_limit=20,
            # The account's API Gateway logging role is managed elsewhere in this account.
            manage_api_gateway_account=False,
            tags=TAGS,
        ))
        models = ModelBucket(self, "Models", props=ModelBucketProps(name=NAME, tags=TAGS))
        cluster = GpuEksCluster(self, "Cluster", props=GpuEksClusterProps(
            name=NAME,
            vpc=ExistingVpcProps(vpc_id=vpc.id,
                                 private_subnet_ids=tuple(s.id for s in subnets),
                                 tag_subnets_for_discovery=False),
            endpoint_public_access_cidrs=("203.0.113.0/24",),
            model_bucket_arn=models.bucket_arn,
            tags=TAGS,
        ))
        # The Helm provider of this stack reaches the new cluster.
        self.add_override("terraform.required_providers.helm",
                          {"source": "hashicorp/helm", "version": HELM_PROVIDER_VERSIONS})
        connection = cluster.kubernetes_connection
        HelmProvider(self, "helm", kubernetes=HelmProviderKubernetes(
            host=connection.host,
            cluster_ca_certificate=connection.cluster_ca_certificate,
            exec=HelmProviderKubernetesExec(api_version=connection.exec_api_version,
                                            command=connection.exec_command,
                                            args=list(connection.exec_args)),
        ))
        pool = KarpenterGpuPool(self, "Karpenter", cluster=cluster, props=KarpenterGpuPoolProps(
            name=NAME,
            runtimes=(GpuPoolRuntime(name=RUNTIME, task_timeout_seconds=600),),
            tags=TAGS,
        ))
        scaler = KedaSqsScaler(self, "Keda", cluster=cluster,
                               props=KedaSqsScalerProps(name=NAME, tags=TAGS))
        repository = AgentImageRepository(
            self, "AgentRepository", props=AgentImageRepositoryProps(name=NAME, tags=TAGS))
        runtime = SdRuntime(
            self, f"Runtime-{RUNTIME}", cluster=cluster, ingress=ingress, pool=pool,
            scaler=scaler, model_bucket=models, agent_repository=repository,
            props=SdRuntimeProps(runtime=RUNTIME, name=NAME,
                                 models=("sd_xl_base_1.0.safetensors",),
                                 scaling=RuntimeScaling(max_replicas=4), tags=TAGS))

        # --- an existing service of the team submits tasks and reads results -------------
        reporting = IamRole(
            self, "ReportingServiceRole", name="platform-reporting",
            assume_role_policy=Fn.jsonencode({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}),
        )
        submit = ingress.grant_submit_tasks(reporting)
        read = ingress.grant_read_results(reporting)

        # --- the team's own use of the outputs ----------------------------------------------
        ssm_parameter.SsmParameter(self, "ApiEndpoint", name="/platform/sd/api-endpoint",
                                   type="String", value=ingress.api_endpoint)
        cdktf_cdktf_provider_aws.cloudwatch_dashboard.CloudwatchDashboard(
            self, "Dashboard", dashboard_name="platform-sd",
            dashboard_body=Fn.jsonencode({"widgets": [{
                "type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
                "properties": {"region": REGION, "title": "Queued tasks", "metrics": [[
                    "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                    "QueueName", ingress.queue_for(RUNTIME).queue_name]]},
            }]}),
        )
        TerraformOutput(self, "api_endpoint", value=ingress.api_endpoint)
        TerraformOutput(self, "cluster_name", value=cluster.cluster_name)
        TerraformOutput(self, "runtime_namespace", value=runtime.namespace)
        TerraformOutput(self, "reporting_policies",
                        value=[submit.policy_name, read.policy_name])


def build(outdir: str = "cdktf.out") -> App:
    app = App(outdir=outdir)
    PlatformStack(app, NAME)
    return app


if __name__ == "__main__":
    build(os.environ.get("CDKTF_OUTDIR", "cdktf.out")).synth()
