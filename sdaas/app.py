"""Build the Terraform configuration from the configuration file: the one builder.

``main.py`` calls :func:`synth`; local mode, the tests and tools call :func:`build_app` or
:func:`build_stack`, which can

* build the whole service from a configuration (the default: what ``main.py`` writes);
* build a subset of its constructs (``parts``): the ingress alone for local mode and the
  emulator tests, the cluster and its GPU pools, ...;
* change or replace any construct's props before it is built (``edits``);
* point the AWS provider at a local emulator (``emulation``).

Providers and the backend are configured here and nowhere else (STYLE 9): constructs only
create resources.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from constructs_lib import cluster as cluster_lib
from constructs_lib import karpenter as karpenter_lib
from constructs_lib import keda as keda_lib
from constructs_lib import runtime as runtime_lib
from constructs_lib._cdktf import App, LocalBackend, S3Backend, TerraformOutput, TerraformStack
from constructs_lib._providers import AWS_PROVIDER_VERSIONS, HELM_PROVIDER_VERSIONS, aws, helm
from constructs_lib.ingress import ServerlessIngress, ServerlessIngressProps
from sdaas import props as props_lib
from sdaas.config import Config, LocalState
from sdaas.dashboard import DashboardSource, RuntimeSource, service_dashboard

# Services whose endpoints point at the emulator in an emulated stack.
EMULATED_SERVICES = (
    "apigateway", "cloudwatch", "dynamodb", "ec2", "eks", "events", "iam", "kms", "lambda",
    "logs", "s3", "secretsmanager", "sns", "sqs", "sts",
)

AWS_PROVIDER_CONSTRAINT = AWS_PROVIDER_VERSIONS
HELM_PROVIDER_CONSTRAINT = HELM_PROVIDER_VERSIONS


class Part(StrEnum):
    """One construct of the service (or, for ``RUNTIMES``, one per configured runtime)."""

    INGRESS = "ingress"
    MODEL_BUCKET = "model_bucket"
    CLUSTER = "cluster"
    KARPENTER = "karpenter"
    KEDA = "keda"
    AGENT_REPOSITORY = "agent_repository"
    RUNTIMES = "runtimes"


# The parts whose constructs a part is given (a construct takes constructs, STYLE 4). The
# cluster takes the model bucket when it is built (the Mountpoint driver may read it) and
# goes without otherwise.
NEEDS: Mapping[Part, frozenset[Part]] = {
    Part.KARPENTER: frozenset({Part.CLUSTER}),
    Part.KEDA: frozenset({Part.CLUSTER}),
    Part.RUNTIMES: frozenset({Part.INGRESS, Part.MODEL_BUCKET, Part.CLUSTER, Part.KARPENTER,
                              Part.KEDA, Part.AGENT_REPOSITORY}),
}
EVERYTHING = frozenset(Part)
INGRESS_ONLY = frozenset({Part.INGRESS})
CLUSTER_AND_POOLS = frozenset({Part.CLUSTER, Part.KARPENTER})


@dataclass(frozen=True, kw_only=True)
class Emulation:
    """Point the AWS provider at a local emulator (tests and ``make local``)."""

    endpoint: str


P = TypeVar("P")
Edit = Callable[[P], P]


@dataclass(frozen=True, kw_only=True)
class Edits:
    """Changes to the props the configuration maps to, applied just before each construct is
    built. An edit receives the mapped props and returns the props to use: a changed copy
    (``dataclasses.replace``) or entirely different props. ``runtime`` is applied to every
    runtime's props (``props.runtime`` names the one at hand)."""

    ingress: Edit[ServerlessIngressProps] | None = None
    model_bucket: Edit[runtime_lib.ModelBucketProps] | None = None
    cluster: Edit[cluster_lib.GpuEksClusterProps] | None = None
    karpenter: Edit[karpenter_lib.KarpenterGpuPoolProps] | None = None
    keda: Edit[keda_lib.KedaSqsScalerProps] | None = None
    agent_repository: Edit[runtime_lib.AgentImageRepositoryProps] | None = None
    runtime: Edit[runtime_lib.SdRuntimeProps] | None = None


def _edited(edit: Edit[P] | None, props: P) -> P:
    return props if edit is None else edit(props)


@dataclass(frozen=True)
class Built:
    """One built stack and the constructs in it (``None`` for a part not built)."""

    app: App
    stack: TerraformStack
    ingress: ServerlessIngress | None = None
    models: runtime_lib.ModelBucket | None = None
    cluster: cluster_lib.GpuEksCluster | None = None
    karpenter: karpenter_lib.KarpenterGpuPool | None = None
    scaler: keda_lib.KedaSqsScaler | None = None
    repository: runtime_lib.AgentImageRepository | None = None
    runtimes: Mapping[str, runtime_lib.SdRuntime] = field(default_factory=dict)

    @property
    def stack_dir(self) -> Path:
        """Where :meth:`synth` writes this stack's ``cdk.tf.json``."""
        return Path(self.app.outdir) / "stacks" / self.stack.node.id

    def synth(self) -> Path:
        """Write the app (this stack's ``cdk.tf.json`` and assets); return the stack's
        directory."""
        self.app.synth()
        return self.stack_dir


def _checked_parts(parts: Iterable[Part]) -> frozenset[Part]:
    chosen = frozenset(Part(p) for p in parts)
    if not chosen:
        raise ValueError("parts: name at least one part to build")
    problems = [
        f"{part.value} needs {', '.join(sorted(n.value for n in NEEDS[part] - chosen))}"
        for part in Part if part in chosen and part in NEEDS and NEEDS[part] - chosen
    ]
    if problems:
        raise ValueError(f"parts: {'; '.join(problems)} (add them to the parts)")
    return chosen


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
    # release the library supports (5.x from 5.99, and 6.x) from the official source.
    stack.add_override("terraform.required_providers.aws",
                       {"source": "hashicorp/aws", "version": AWS_PROVIDER_CONSTRAINT})


def _helm_provider(stack: TerraformStack, cluster: cluster_lib.GpuEksCluster) -> None:
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


# Outputs whose value is a secret: Terraform shows them only on request.
SENSITIVE_OUTPUTS = frozenset({"api_key_value"})


def _outputs(stack: TerraformStack, outputs: Iterable[tuple[str, object, str]]) -> None:
    """``(name, value, description)`` rows as Terraform outputs, in order."""
    for name, value, description in outputs:
        TerraformOutput(stack, name, value=value, description=description,
                        **({"sensitive": True} if name in SENSITIVE_OUTPUTS else {}))


def _ingress_outputs(stack: TerraformStack, ingress: ServerlessIngress, config: Config) -> None:
    queues = {name: ingress.queue_for(name) for name in ingress.runtime_names}
    _outputs(stack, [
        ("api_endpoint", ingress.api_endpoint, "Base URL of the task API (stage included)"),
        ("api_key_id", ingress.api_key_id, "Id of the default API key"),
        ("api_key_command",
         f"aws apigateway get-api-key --region {config.region} --api-key "
         f"{ingress.api_key_id} --include-value --query value --output text",
         "Prints the default API key's value"),
        ("api_key_value", ingress.api_key_value, "The default API key (sensitive)"),
        ("output_bucket", ingress.output_bucket_name,
         "Bucket holding generated images and result documents"),
        ("input_topic_arn", ingress.input_topic_arn, "SNS topic tasks are published to"),
        ("result_topic_arn", ingress.result_topic_arn, "SNS topic results are published to"),
        ("task_table", ingress.task_table_name, "DynamoDB table of task status"),
        ("queue_urls", {n: q.queue_url for n, q in queues.items()},
         "Task queue URL per runtime"),
        ("dead_letter_queue_urls", {n: q.dlq_url for n, q in queues.items()},
         "Dead-letter queue URL per runtime"),
        ("webhook_secret_arn", ingress.webhook_secret_arn,
         "Secrets Manager secret signing webhook deliveries"),
        ("webhook_function", ingress.webhook_function_name, "The webhook deliverer Lambda"),
        ("webhook_dead_letter_queue_url", ingress.webhook_dlq_url,
         "Webhook deliveries that failed every attempt"),
    ])


def _service_outputs(stack: TerraformStack, built: Built) -> None:
    """The outputs of the parts beside the ingress, for those that were built."""
    outputs: list[tuple[str, object, str]] = []
    if built.cluster is not None:
        outputs.append(("cluster_name", built.cluster.cluster_name,
                        "EKS cluster name (aws eks update-kubeconfig --name ...)"))
    if built.models is not None:
        outputs.append(("model_bucket", built.models.bucket_name,
                        "Bucket the runtimes read models from (make upload-model)"))
    if built.runtimes and built.models is not None:
        outputs.append(("model_locations",
                        {n: f"s3://{built.models.bucket_name}/{rt.checkpoint_prefix}"
                         for n, rt in built.runtimes.items()},
                        "Where each runtime reads its checkpoints"))
    if built.repository is not None:
        outputs.append(("agent_repository_url", built.repository.repository_url,
                        "ECR repository of the queue agent image (make agent-image)"))
    if built.runtimes:
        outputs.append(("runtime_namespaces",
                        {n: rt.namespace for n, rt in built.runtimes.items()},
                        "Kubernetes namespace of each runtime"))
    if built.scaler is not None:
        outputs.append(("keda_operator_role_arn", built.scaler.operator_role_arn,
                        "IAM role of the KEDA operator (EKS Pod Identity)"))
    _outputs(stack, outputs)


def _dashboard(stack: TerraformStack, config: Config, built: Built) -> None:
    """The service's dashboard, when the stack holds the service (ingress, cluster and
    runtimes), composed from the constructs' attributes."""
    ingress, cluster = built.ingress, built.cluster
    if ingress is None or cluster is None or not built.runtimes:
        return
    queues = {name: ingress.queue_for(name) for name in built.runtimes}
    dashboard = service_dashboard(stack, "Dashboard", dashboard_name=config.name, source=(
        DashboardSource(
            region=config.region, api_name=ingress.api_name, stage_name=ingress.stage_name,
            function_names={"ingest": ingress.ingest_function_name,
                            "status": ingress.status_function_name,
                            "cancel": ingress.cancel_function_name,
                            "dead letters": ingress.dead_letter_function_name},
            runtimes=[RuntimeSource(name=n, queue_name=queues[n].queue_name,
                                    dlq_name=queues[n].dlq_name or "", namespace=rt.namespace)
                      for n, rt in built.runtimes.items()],
            cluster_name=cluster.cluster_name if cluster.container_insights_enabled else None,
            alarm_arns=ingress.alarm_arns,
            oldest_task_alarm_seconds=config.queue.oldest_message_alarm_seconds)))
    _outputs(stack, [(
        "dashboard_url",
        f"https://{config.region}.console.aws.amazon.com/cloudwatch/home?region="
        f"{config.region}#dashboards/dashboard/{dashboard.dashboard_name}",
        "The service's CloudWatch dashboard")])


def build_stack(app: App, config: Config, *, parts: Iterable[Part] = EVERYTHING,
                edits: Edits | None = None, emulation: Emulation | None = None,
                stack_name: str | None = None) -> Built:
    """One stack (named ``stack_name``, default ``config.name``) in ``app`` holding the
    ``parts`` of the service, their props mapped from ``config`` and then ``edits``.

    Raises ``ValueError`` when a part is asked for without the parts it takes."""
    chosen = _checked_parts(parts)
    edits = edits or Edits()
    stack = TerraformStack(app, stack_name or config.name)
    _backend(stack, config)
    _aws_provider(stack, config, emulation)

    ingress = None
    if Part.INGRESS in chosen:
        props = props_lib.ingress_props(config)
        if emulation is not None:
            # The emulator has no API Gateway account settings to manage.
            props = dataclasses.replace(props, manage_api_gateway_account=False)
        ingress = ServerlessIngress(stack, "Ingress", props=_edited(edits.ingress, props))
        _ingress_outputs(stack, ingress, config)

    models = None
    if Part.MODEL_BUCKET in chosen:
        models = runtime_lib.ModelBucket(stack, "ModelBucket", props=_edited(
            edits.model_bucket, props_lib.model_bucket_props(config)))

    cluster = karpenter = scaler = None
    if Part.CLUSTER in chosen:
        cluster = cluster_lib.GpuEksCluster(stack, "Cluster", props=_edited(
            edits.cluster, props_lib.cluster_props(
                config, model_bucket_arn=models.bucket_arn if models else None,
                model_bucket_kms_key_arn=models.kms_key_arn if models else None)))
        _helm_provider(stack, cluster)
    if Part.KARPENTER in chosen:
        karpenter = karpenter_lib.KarpenterGpuPool(stack, "Karpenter", cluster=cluster, props=(
            _edited(edits.karpenter, props_lib.karpenter_props(config))))
    if Part.KEDA in chosen:
        scaler = keda_lib.KedaSqsScaler(stack, "Keda", cluster=cluster, props=_edited(
            edits.keda, props_lib.keda_props(config)))

    repository = None
    if Part.AGENT_REPOSITORY in chosen:
        repository = runtime_lib.AgentImageRepository(stack, "AgentRepository", props=_edited(
            edits.agent_repository, props_lib.agent_repository_props(config)))

    runtimes = {}
    if Part.RUNTIMES in chosen:
        runtimes = {
            r.name: runtime_lib.SdRuntime(
                stack, f"Runtime-{r.name}", cluster=cluster, ingress=ingress, pool=karpenter,
                scaler=scaler, model_bucket=models, agent_repository=repository,
                props=_edited(edits.runtime, props_lib.runtime_props(config, r.name)))
            for r in config.runtimes
        }

    built = Built(app=app, stack=stack, ingress=ingress, models=models, cluster=cluster,
                  karpenter=karpenter, scaler=scaler, repository=repository, runtimes=runtimes)
    _service_outputs(stack, built)
    _dashboard(stack, config, built)
    return built


def build_app(config: Config, outdir: Path | str = "cdktf.out", *,
              parts: Iterable[Part] = EVERYTHING, edits: Edits | None = None,
              emulation: Emulation | None = None, stack_name: str | None = None) -> Built:
    """A new app writing to ``outdir`` holding one :func:`build_stack` stack; by default
    the whole service, named after ``config.name``."""
    app = App(outdir=str(outdir), skip_validation=False)
    return build_stack(app, config, parts=parts, edits=edits, emulation=emulation,
                       stack_name=stack_name)


def synth(config: Config, outdir: Path | str = "cdktf.out") -> Path:
    """Write ``<outdir>/stacks/<name>/cdk.tf.json``; return the stack directory."""
    return build_app(config, outdir).synth()
