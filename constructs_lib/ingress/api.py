"""The REST API in front of the Lambdas: routes, gateway responses, deployment, stage with
access logs, method settings, the default API key and its usage plan."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from constructs_lib._cdktf import (
    Construct,
    TerraformResourceLifecycle,
)
from constructs_lib._providers import aws
from constructs_lib.iam import (
    Role,
    Statement,
    service_principal,
)
from constructs_lib.ingress.props import ServerlessIngressProps


@dataclass(frozen=True, kw_only=True)
class RestApi:
    """The parts of the API the construct exposes as attributes."""

    api: Any
    stage: Any
    api_key: Any
    usage_plan: Any


def rest_api(scope: Construct, *, props: ServerlessIngressProps, ingest, status, cancel,
             key_arn: str, partition: str, region: str, account_id: str) -> RestApi:
    """The REST API, its routes to ``ingest``, ``status`` and ``cancel``, stage, logs, key
    and plan.

    Every route is documented in the OpenAPI document (``lambda_src/openapi.py``, served at
    ``GET /v1alpha2/openapi.json``); tests/synth/test_openapi_routes.py holds the two equal."""
    api = aws.api_gateway_rest_api.ApiGatewayRestApi(
        scope, "Api", name=f"{props.name}-api",
        description="Asynchronous Stable Diffusion task API",
        endpoint_configuration=aws.api_gateway_rest_api.ApiGatewayRestApiEndpointConfiguration(
            types=["REGIONAL"]),
        api_key_source="HEADER",
        lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
    )
    validator = aws.api_gateway_request_validator.ApiGatewayRequestValidator(
        scope, "RequestValidator", rest_api_id=api.id, name="parameters",
        validate_request_parameters=True, validate_request_body=False,
    )
    v2 = aws.api_gateway_resource.ApiGatewayResource(
        scope, "ResourceV1alpha2", rest_api_id=api.id, parent_id=api.root_resource_id,
        path_part="v1alpha2")
    v1 = aws.api_gateway_resource.ApiGatewayResource(
        scope, "ResourceV1alpha1", rest_api_id=api.id, parent_id=api.root_resource_id,
        path_part="v1alpha1")
    tasks = aws.api_gateway_resource.ApiGatewayResource(
        scope, "ResourceTasks", rest_api_id=api.id, parent_id=v2.id, path_part="tasks")
    task = aws.api_gateway_resource.ApiGatewayResource(
        scope, "ResourceTask", rest_api_id=api.id, parent_id=tasks.id, path_part="{id}")
    document = aws.api_gateway_resource.ApiGatewayResource(
        scope, "ResourceOpenApi", rest_api_id=api.id, parent_id=v2.id, path_part="openapi.json")
    task_cancel = aws.api_gateway_resource.ApiGatewayResource(
        scope, "ResourceTaskCancel", rest_api_id=api.id, parent_id=task.id, path_part="cancel")
    routes = [
        ("PostV1alpha2", v2, "POST", ingest, None),
        ("PostV1alpha1", v1, "POST", ingest, None),
        ("GetTask", task, "GET", status, {"method.request.path.id": True}),
        ("GetOpenApi", document, "GET", status, None),
        ("CancelTask", task_cancel, "POST", cancel, {"method.request.path.id": True}),
    ]
    deployment_inputs = []
    integrations = []
    for key, resource, verb, function, params in routes:
        method = aws.api_gateway_method.ApiGatewayMethod(
            scope, f"Method{key}", rest_api_id=api.id, resource_id=resource.id,
            http_method=verb, authorization="NONE", api_key_required=True,
            request_parameters=params, request_validator_id=validator.id,
        )
        integration = aws.api_gateway_integration.ApiGatewayIntegration(
            scope, f"Integration{key}", rest_api_id=api.id, resource_id=resource.id,
            http_method=method.http_method, type="AWS_PROXY",
            integration_http_method="POST", uri=function.invoke_arn,
            timeout_milliseconds=29000,
        )
        integrations.append(integration)
        deployment_inputs.append(f"{key}:{verb}:{function.node.path}")
    for function, key in ((ingest, "Ingest"), (status, "Status"), (cancel, "Cancel")):
        aws.lambda_permission.LambdaPermission(
            scope, f"Invoke{key}", action="lambda:InvokeFunction",
            function_name=function.function_name, principal="apigateway.amazonaws.com",
            source_arn=f"{api.execution_arn}/*/*",
        )
    for response_type, status_code in (("DEFAULT_4XX", None), ("DEFAULT_5XX", None)):
        aws.api_gateway_gateway_response.ApiGatewayGatewayResponse(
            scope, f"Response{response_type}", rest_api_id=api.id,
            response_type=response_type, status_code=status_code,
            response_templates={"application/json": _GATEWAY_ERROR_TEMPLATE},
            response_parameters={
                "gatewayresponse.header.Content-Type": "'application/json'"},
        )
        deployment_inputs.append(response_type)
    deployment_inputs.append(_GATEWAY_ERROR_TEMPLATE)
    digest = hashlib.sha256("\n".join(deployment_inputs).encode()).hexdigest()
    deployment = aws.api_gateway_deployment.ApiGatewayDeployment(
        scope, "Deployment", rest_api_id=api.id,
        triggers={"redeployment": digest},
        lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        depends_on=integrations,
    )
    access_logs = aws.cloudwatch_log_group.CloudwatchLogGroup(
        scope, "ApiAccessLogs",
        name=f"/aws/apigateway/{props.name}-api/{props.stage_name}",
        retention_in_days=props.api_log_retention_days, kms_key_id=key_arn,
    )
    depends = []
    if props.manage_api_gateway_account:
        cw_role = Role(scope, "ApiGatewayLoggingRole", name=f"{props.name}-apigw-logs",
                       assumed_by=service_principal("apigateway.amazonaws.com"),
                       description="API Gateway writes access and execution logs")
        cw_role.add_policy("Logging", [Statement(
            sid="WriteApiLogs",
            actions=("logs:CreateLogGroup", "logs:CreateLogStream",
                     "logs:DescribeLogGroups", "logs:DescribeLogStreams",
                     "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"),
            resources=(f"arn:{partition}:logs:{region}:{account_id}"
                       ":log-group:*",),
        )])
        account = aws.api_gateway_account.ApiGatewayAccount(
            scope, "ApiGatewayAccount", cloudwatch_role_arn=cw_role.role_arn)
        depends.append(account)
    stage = aws.api_gateway_stage.ApiGatewayStage(
        scope, "Stage", rest_api_id=api.id, deployment_id=deployment.id,
        stage_name=props.stage_name, xray_tracing_enabled=True,
        access_log_settings=aws.api_gateway_stage.ApiGatewayStageAccessLogSettings(
            destination_arn=access_logs.arn,
            format=json.dumps(_ACCESS_LOG_FORMAT, sort_keys=True, separators=(",", ":")),
        ),
        depends_on=depends or None,
    )
    aws.api_gateway_method_settings.ApiGatewayMethodSettings(
        scope, "MethodSettings", rest_api_id=api.id, stage_name=stage.stage_name,
        method_path="*/*",
        settings=aws.api_gateway_method_settings.ApiGatewayMethodSettingsSettings(
            metrics_enabled=True,
            logging_level="ERROR",
            data_trace_enabled=False,
            throttling_rate_limit=props.rate_limit_per_second * 4,
            throttling_burst_limit=props.burst_limit * 4,
        ),
    )
    api_key = aws.api_gateway_api_key.ApiGatewayApiKey(
        scope, "ApiKey", name=f"{props.name}-default", enabled=True,
        description="Default client key; more keys can join the usage plan")
    up = aws.api_gateway_usage_plan
    plan = up.ApiGatewayUsagePlan(
        scope, "UsagePlan", name=f"{props.name}-default",
        api_stages=[up.ApiGatewayUsagePlanApiStages(api_id=api.id, stage=stage.stage_name)],
        throttle_settings=up.ApiGatewayUsagePlanThrottleSettings(
            rate_limit=props.rate_limit_per_second, burst_limit=props.burst_limit),
        quota_settings=(
            up.ApiGatewayUsagePlanQuotaSettings(limit=props.quota_per_day, period="DAY")
            if props.quota_per_day else None
        ),
    )
    aws.api_gateway_usage_plan_key.ApiGatewayUsagePlanKey(
        scope, "UsagePlanKey", key_id=api_key.id, key_type="API_KEY",
        usage_plan_id=plan.id)
    return RestApi(api=api, stage=stage, api_key=api_key, usage_plan=plan)


_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integration.latency",
    "apiKeyId": "$context.identity.apiKeyId",
    "errorMessage": "$context.error.message",
}

_GATEWAY_ERROR_TEMPLATE = (
    '{"error": {"code": "$context.error.responseType", '
    '"message": $context.error.messageString, "details": []}}'
)
