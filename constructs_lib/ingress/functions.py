"""The Lambda functions of ``lambda_src``: one role, log group and function each."""

from __future__ import annotations

from constructs_lib._cdktf import (
    Construct,
    Fn,
    TerraformAsset,
)
from constructs_lib._providers import aws
from constructs_lib.iam import (
    Role,
    Statement,
    service_principal,
)
from constructs_lib.ingress.props import LAMBDA_TIMEOUT_SECONDS, ServerlessIngressProps


def lambda_function(parent: Construct, id_: str, handler: str, asset: TerraformAsset, *,
                    props: ServerlessIngressProps, key_arn: str, environment: dict[str, str],
                    statements: list[Statement], name: str | None = None,
                    timeout: int = LAMBDA_TIMEOUT_SECONDS):
    """A Python Lambda function of ``lambda_src`` (handler ``lambda_src.<handler>.handler``)
    under a construct ``id_``: its log group (KMS, retention), its own role (``statements``
    plus logging and X-Ray) and the function (arm64, X-Ray, reserved concurrency), which
    waits for its role's policy. Named ``<props.name>-<name or handler>``."""
    scope = Construct(parent, id_)
    function_name = f"{props.name}-{name or handler}"
    log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
        scope, "LogGroup", name=f"/aws/lambda/{function_name}",
        retention_in_days=props.log_retention_days, kms_key_id=key_arn,
    )
    role = Role(scope, "Role", name=f"{function_name}-lambda",
                assumed_by=service_principal("lambda.amazonaws.com"),
                description=f"{function_name} Lambda function")
    grant = role.add_policy("Function", [
        *statements,
        Statement(sid="WriteLogs", actions=("logs:CreateLogStream", "logs:PutLogEvents"),
                  resources=(f"{log_group.arn}:*",)),
        Statement(sid="Tracing",
                  actions=("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
                  resources=("*",),
                  star_reason="X-Ray trace submission has no resource-level permission"),
    ])
    fn = aws.lambda_function
    function = fn.LambdaFunction(
        scope, "Function",
        function_name=function_name,
        role=role.role_arn,
        runtime="python3.12",
        architectures=["arm64"],
        handler=f"lambda_src.{handler}.handler",
        filename=asset.path,
        source_code_hash=Fn.filebase64sha256(asset.path),
        memory_size=props.lambda_memory_mb,
        timeout=timeout,
        reserved_concurrent_executions=props.lambda_reserved_concurrency,
        tracing_config=fn.LambdaFunctionTracingConfig(mode="Active"),
        kms_key_arn=key_arn,
        environment=fn.LambdaFunctionEnvironment(variables=environment),
        logging_config=fn.LambdaFunctionLoggingConfig(
            log_format="Text", log_group=log_group.name),
        depends_on=[log_group, grant.policy],
    )
    return function

