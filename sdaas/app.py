"""Build the Terraform configuration from the configuration file.

``main.py`` calls :func:`synth`; tests call :func:`build_app` to get the stacks without
writing files twice. Providers and the backend are configured here and nowhere else
(STYLE 9): constructs only create resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from constructs_lib import cluster as cluster_lib
from constructs_lib import karpenter as karpenter_lib
from constructs_lib import keda as keda_lib
from constructs_lib import runtime as runtime_lib
from constructs_lib._cdktf import App, LocalBackend, S3Backend, TerraformOutput, TerraformStack
from constructs_lib._providers import aws, helm
from constructs_lib.cluster import GpuEksCluster
from constructs_lib.ingress import ServerlessIngress, ServerlessIngressProps
from sdaas import props as props_lib
from sdaas.config import Config, LocalState

# Services whose endpoints point at the emulator in an emulated stack.
EMULATED_SERVICES = (
    "apigateway", "cloudwatch", "dynamodb", "ec2", "eks", "events", "iam", "kms", "lambda",
    "logs", "s3", "sns", "sqs", "sts",
)


AWS_PROVIDER_CONSTRAINT = "~> 5.99"
# The Helm bindings are generated from hashicorp/helm 2.17.0.
HELM_PROVIDER_CONSTRAINT = "~> 2.17"


@dataclass(frozen=True, kw_only=True)
class Emulation:
    """Point the AWS provider at a local emulator (tests and ``make local``)."""

    endpoint: str




def _backend(stack: TerraformStack, config: Config) -> None:
    state = config.state
    if isinstance(state, LocalState):
        LocalBackend(stack, path=state.path)
    else:
        S3Backend(stack, bucket=state.bucket, key=state.key,
                  region=state.region or config.region, encrypt=True)
        # The S3Backend of CDKTF 0.20 predates S3 native locking (Terraform >= 1.10).
        stack.add_override("terraform.backend.s3.use_lockfile", state.use_lockfile)


def _aws_provider(stack: TerraformStack, config: Config, emulation: Emulation | None) -> None:
    tags = {"sd-async/stack": config.name, **config.tags}
    prov = aws.provider
    kwargs: dict = {"region": config.region,
                    "default_tags": [prov.AwsProviderDefaultTags(tags=tags)]}
    if emulation is not None:
        kwargs.update(
            access_key="testing",
            secret_key="testing",  # noqa: S106 - the emulator's dummy credentials
            skip_credentials_validation=True,
            skip_metadata_api_check="true",
            skip_requesting_account_id=False,
            skip_region_validation=True,
            s3_use_path_style=True,
            endpoints=[prov.AwsProviderEndpoints(
                # Python bindings spell the "lambda" endpoint "lambda_" (a keyword).
                **{("lambda_" if service == "lambda" else service): emulation.endpoint
                   for service in EMULATED_SERVICES})],
        )
    prov.AwsProvider(stack, "aws", **kwargs)
    # The bindings pin the exact provider they were generated from (5.99.1); users get any
    # compatible 5.x release from the official source.
    stack.add_override("terraform.required_providers.aws",
                       {"source": "hashicorp/aws", "version": AWS_PROVIDER_CONSTRAINT})


def _ingress_outputs(stack: TerraformStack, ingress: ServerlessIngress, config: Config) -> None:
    TerraformOutput(stack, "api_endpoint", value=ingress.api_endpoint,
                    description="Base URL of the task API (stage included)")
    TerraformOutput(stack, "api_key_id", value=ingress.api_key_id,
                    description="Id of the default API key")
    TerraformOutput(
        stack, "api_key_command",
        value=(f"aws apigateway get-api-key --region {config.region} --api-key "
               f"{ingress.api_key_id} --include-value --query value --output text"),
        description="Prints the default API key's value",
    )
    TerraformOutput(stack, "api_key_value", value=ingress.api_key_value, sensitive=True,
                    description="The default API key (sensitive)")
    TerraformOutput(stack, "output_bucket", value=ingress.output_bucket_name,
                    description="Bucket holding generated images and result documents")
    TerraformOutput(stack, "input_topic_arn", value=ingress.input_topic_arn,
                    description="SNS topic tasks are published to")
    TerraformOutput(stack, "result_topic_arn", value=ingress.result_topic_arn,
                    description="SNS topic results are published to")
    TerraformOutput(stack, "task_table", value=ingress.task_table_name,
                    description="DynamoDB table of task status")
    TerraformOutput(
        stack, "queue_urls",
        value={name: ingress.queue_for(name).queue_url for name in ingress.runtime_names},
        description="Task queue URL per runtime",
    )
    TerraformOutput(
        stack, "dead_letter_queue_urls",
        value={name: ingress.queue_for(name).dlq_url for name in ingress.runtime_names},
        description="Dead-letter queue URL per runtime",
    )


def build_ingress_stack(app: App, config: Config, *, stack_name: str | None = None,
                        emulation: Emulation | None = None) -> TerraformStack:
    """A stack holding only ``ServerlessIngress`` (local mode and emulator tests)."""
    stack = TerraformStack(app, stack_name or f"{config.name}-ingress")
    _backend(stack, config)
    _aws_provider(stack, config, emulation)
    props = props_lib.ingress_props(config)
    if emulation is not None:
        # The emulator has no API Gateway account settings to manage.
        props = ServerlessIngressProps(**{**props.__dict__, "manage_api_gateway_account": False})
    ingress = ServerlessIngress(stack, "Ingress", props=props)
    _ingress_outputs(stack, ingress, config)
    return stack


def _helm_provider(stack: TerraformStack, cluster: GpuEksCluster) -> None:
    """The Helm provider reaches the cluster with a short-lived ``aws eks`` token.

    It is configured from attributes of the cluster, so nothing needs the cluster to exist
    at plan time (no ``kubernetes_manifest``); every release depends on ``cluster.ready``.
    All in-cluster objects, namespaces included, go through Helm: one provider to reach
    the cluster, and no Kubernetes provider bindings to load at synth.
    """
    conn = cluster.kubernetes_connection
    stack.add_override("terraform.required_providers.helm",
                       {"source": "hashicorp/helm", "version": HELM_PROVIDER_CONSTRAINT})
    hp = helm.provider
    hp.HelmProvider(stack, "helm", kubernetes=hp.HelmProviderKubernetes(
        host=conn.host,
        cluster_ca_certificate=conn.cluster_ca_certificate,
        exec=hp.HelmProviderKubernetesExec(api_version=conn.exec_api_version,
                                           command=conn.exec_command,
                                           args=list(conn.exec_args)),
    ))


def build_app(config: Config, outdir: Path | str = "cdktf.out") -> tuple[App, TerraformStack]:
    """The whole service as one stack named after ``config.name``."""
    app = App(outdir=str(outdir), skip_validation=False)
    stack = TerraformStack(app, config.name)
    _backend(stack, config)
    _aws_provider(stack, config, None)
    ingress = ServerlessIngress(stack, "Ingress", props=props_lib.ingress_props(config))
    _ingress_outputs(stack, ingress, config)

    models = runtime_lib.ModelBucket(
        stack, "ModelBucket", props=props_lib.model_bucket_props(config))
    cluster = cluster_lib.GpuEksCluster(stack, "Cluster", props=props_lib.cluster_props(
        config, model_bucket_arn=models.bucket_arn, model_bucket_kms_key_arn=models.kms_key_arn))
    _helm_provider(stack, cluster)
    karpenter = karpenter_lib.KarpenterGpuPool(
        stack, "Karpenter", cluster=cluster, props=props_lib.karpenter_props(config))
    scaler = keda_lib.KedaSqsScaler(stack, "Keda", cluster=cluster,
                                    props=props_lib.keda_props(config))
    repository = runtime_lib.AgentImageRepository(
        stack, "AgentRepository", props=props_lib.agent_repository_props(config))
    runtimes = {
        r.name: runtime_lib.SdRuntime(
            stack, f"Runtime-{r.name}", cluster=cluster, ingress=ingress, pool=karpenter,
            scaler=scaler, model_bucket=models, agent_repository=repository,
            props=props_lib.runtime_props(config, r.name))
        for r in config.runtimes
    }
    TerraformOutput(stack, "cluster_name", value=cluster.cluster_name,
                    description="EKS cluster name (aws eks update-kubeconfig --name ...)")
    TerraformOutput(stack, "model_bucket", value=models.bucket_name,
                    description="Bucket the runtimes read models from (make upload-model)")
    TerraformOutput(
        stack, "model_locations",
        value={n: f"s3://{models.bucket_name}/{rt.checkpoint_prefix}"
               for n, rt in runtimes.items()},
        description="Where each runtime reads its checkpoints")
    TerraformOutput(stack, "agent_repository_url", value=repository.repository_url,
                    description="ECR repository of the queue agent image (make agent-image)")
    TerraformOutput(stack, "runtime_namespaces",
                    value={n: rt.namespace for n, rt in runtimes.items()},
                    description="Kubernetes namespace of each runtime")
    TerraformOutput(stack, "keda_operator_role_arn", value=scaler.operator_role_arn,
                    description="IAM role of the KEDA operator (EKS Pod Identity)")
    return app, stack


def synth(config: Config, outdir: Path | str = "cdktf.out") -> Path:
    """Write ``<outdir>/stacks/<name>/cdk.tf.json``; return the stack directory."""
    app, stack = build_app(config, outdir)
    app.synth()
    return Path(outdir) / "stacks" / stack.node.id
