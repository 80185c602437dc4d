"""Build the Terraform configuration from the configuration file.

``main.py`` calls :func:`synth`; tests call :func:`build_app` to get the stacks without
writing files twice. Providers and the backend are configured here and nowhere else
(STYLE 9): constructs only create resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from constructs_lib._cdktf import App, LocalBackend, S3Backend, TerraformOutput, TerraformStack
from constructs_lib._providers import aws
from constructs_lib.config import Config, LocalState
from constructs_lib.ingress import RuntimeSpec, ServerlessIngress, ServerlessIngressProps

# Services whose endpoints point at the emulator in an emulated stack.
EMULATED_SERVICES = (
    "apigateway", "cloudwatch", "dynamodb", "ec2", "eks", "events", "iam", "kms", "lambda",
    "logs", "s3", "sns", "sqs", "sts",
)


AWS_PROVIDER_CONSTRAINT = "~> 5.99"


@dataclass(frozen=True, kw_only=True)
class Emulation:
    """Point the AWS provider at a local emulator (tests and ``make local``)."""

    endpoint: str


def ingress_props(config: Config) -> ServerlessIngressProps:
    return ServerlessIngressProps(
        name=config.name,
        runtimes=tuple(
            RuntimeSpec(name=r.name, type=r.type, models=tuple(r.models),
                        dynamic_model=r.dynamic_model)
            for r in config.runtimes
        ),
        stage_name=config.api.stage_name,
        rate_limit_per_second=config.api.rate_limit_per_second,
        burst_limit=config.api.burst_limit,
        quota_per_day=config.api.quota_per_day,
        visibility_timeout_seconds=config.queue.visibility_timeout_seconds,
        max_receive_count=config.queue.max_receive_count,
        message_retention_seconds=config.queue.message_retention_seconds,
        dlq_message_retention_seconds=config.queue.dlq_message_retention_seconds,
        oldest_message_alarm_seconds=config.queue.oldest_message_alarm_seconds,
        output_expire_after_days=config.outputs.expire_after_days,
        task_ttl_days=config.outputs.task_ttl_days,
        force_destroy_outputs=config.outputs.force_destroy,
        lambda_reserved_concurrency=config.lambdas.reserved_concurrency,
        lambda_memory_mb=config.lambdas.memory_mb,
        log_retention_days=config.lambdas.log_retention_days,
        api_log_retention_days=config.api.log_retention_days,
        alarm_topic_arn=config.alarms.topic_arn,
    )


def _backend(stack: TerraformStack, config: Config) -> None:
    state = config.state
    if isinstance(state, LocalState):
        LocalBackend(stack, path=state.path)
    else:
        S3Backend(stack, bucket=state.bucket, key=state.key,
                  region=state.region or config.region, encrypt=True,
                  use_lockfile=state.use_lockfile)


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
    props = ingress_props(config)
    if emulation is not None:
        # The emulator has no API Gateway account settings to manage.
        props = ServerlessIngressProps(**{**props.__dict__, "manage_api_gateway_account": False})
    ingress = ServerlessIngress(stack, "Ingress", props=props)
    _ingress_outputs(stack, ingress, config)
    return stack


def build_app(config: Config, outdir: Path | str = "cdktf.out") -> tuple[App, TerraformStack]:
    """The whole service as one stack named after ``config.name``."""
    app = App(outdir=str(outdir), skip_validation=False)
    stack = TerraformStack(app, config.name)
    _backend(stack, config)
    _aws_provider(stack, config, None)
    ingress = ServerlessIngress(stack, "Ingress", props=ingress_props(config))
    _ingress_outputs(stack, ingress, config)
    return app, stack


def synth(config: Config, outdir: Path | str = "cdktf.out") -> Path:
    """Write ``<outdir>/stacks/<name>/cdk.tf.json``; return the stack directory."""
    app, stack = build_app(config, outdir)
    app.synth()
    return Path(outdir) / "stacks" / stack.node.id
