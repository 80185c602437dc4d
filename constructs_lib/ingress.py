"""``ServerlessIngress``: the AWS front door of the service.

Creates
    * a REST API (regional): ``POST /v1alpha2``, ``POST /v1alpha1``,
      ``GET /v1alpha2/tasks/{id}``; API key required; a usage plan with per-key rate and
      burst; a stage with JSON access logs, metrics, X-Ray and method throttling; JSON
      gateway error responses;
    * the ``ingest`` and ``status`` Lambda functions (``lambda_src/``, deterministic zip,
      Python 3.12, X-Ray, reserved concurrency, log groups with retention, one
      least-privilege role each);
    * the input SNS topic and, per runtime, an SQS queue with a dead-letter queue, a
      subscription filtered on the ``runtime`` message attribute and a queue policy that
      admits only that topic;
    * the output bucket (public access blocked, SSE-KMS with a bucket key, TLS only,
      lifecycle), which also holds claim-checked request bodies;
    * the task table (DynamoDB on demand, TTL, point-in-time recovery, KMS);
    * the result SNS topic;
    * alarms: each DLQ not empty, each queue's oldest message too old, ingest errors, API 5xx;
    * one customer-managed KMS key for all of the above.

Example::

    ingress = ServerlessIngress(stack, "Ingress", props=ServerlessIngressProps(
        name="sdaas",
        runtimes=(RuntimeSpec(name="sdruntime", type="sdwebui",
                              models=("sd_xl_turbo_1.0.safetensors",)),),
    ))
    ingress.grant_consume(runtime_role, "sdruntime")
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from constructs_lib._cdktf import (
    AssetType,
    Construct,
    Fn,
    TerraformAsset,
    TerraformResourceLifecycle,
    Token,
)
from constructs_lib._providers import aws
from constructs_lib.buckets import BucketLifecycle, secure_bucket
from constructs_lib.iam import (
    Condition,
    Role,
    Statement,
    attach,
    deny_insecure_transport,
    key_policy_statements,
    render_statements,
    service_principal,
)
from constructs_lib.packaging import LAMBDA_SOURCE_DIR, build_zip

RuntimeType = Literal["sdwebui", "comfyui"]
CLAIM_CHECK_PREFIX = "_requests/"
SNS_MAX_BYTES = 262_144
API_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    """A runtime the front door routes to: its name, type and served checkpoints."""

    name: str
    type: RuntimeType
    models: tuple[str, ...] = ()
    dynamic_model: bool = False


@dataclass(frozen=True, kw_only=True)
class ServerlessIngressProps:
    runtimes: tuple[RuntimeSpec, ...]
    name: str = "sdaas"
    stage_name: str = "prod"
    rate_limit_per_second: float = 30
    burst_limit: int = 50
    quota_per_day: int | None = None
    visibility_timeout_seconds: int = 300
    max_receive_count: int = 3
    message_retention_seconds: int = 345_600
    dlq_message_retention_seconds: int = 1_209_600
    oldest_message_alarm_seconds: int = 900
    output_expire_after_days: int = 30
    task_ttl_days: int = 30
    force_destroy_outputs: bool = False
    lambda_reserved_concurrency: int = 20
    lambda_memory_mb: int = 512
    log_retention_days: int = 30
    api_log_retention_days: int = 30
    alarm_topic_arn: str | None = None
    manage_api_gateway_account: bool = True
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.runtimes:
            problems.append("runtimes must name at least one runtime")
        names = [r.name for r in self.runtimes]
        if len(set(names)) != len(names):
            problems.append(f"runtime names must be unique (got {', '.join(names)})")
        if self.burst_limit < 1 or self.rate_limit_per_second <= 0:
            problems.append(
                f"rate_limit_per_second must be > 0 and burst_limit >= 1 (got rate="
                f"{self.rate_limit_per_second}, burst={self.burst_limit})"
            )
        if not 1 <= self.max_receive_count <= 1000:
            problems.append(f"max_receive_count must be 1..1000 (got {self.max_receive_count})")
        if not 0 <= self.visibility_timeout_seconds <= 43_200:
            problems.append(
                "visibility_timeout_seconds must be 0..43200 "
                f"(got {self.visibility_timeout_seconds})"
            )
        if problems:
            raise ValueError("ServerlessIngressProps: " + "; ".join(problems))


class _RuntimeQueue(Construct):
    """One runtime's queue, dead-letter queue, filtered subscription and queue policy."""

    def __init__(self, scope: Construct, id_: str, *, ingress: ServerlessIngress,
                 spec: RuntimeSpec, props: ServerlessIngressProps) -> None:
        super().__init__(scope, id_)
        base = f"{props.name}-{spec.name}"
        self.dlq = aws.sqs_queue.SqsQueue(
            self, "DeadLetterQueue",
            name=f"{base}-dlq",
            kms_master_key_id=ingress.kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=props.dlq_message_retention_seconds,
        )
        self.queue = aws.sqs_queue.SqsQueue(
            self, "Queue",
            name=f"{base}-tasks",
            kms_master_key_id=ingress.kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            receive_wait_time_seconds=20,
            visibility_timeout_seconds=props.visibility_timeout_seconds,
            message_retention_seconds=props.message_retention_seconds,
            redrive_policy=Fn.jsonencode(
                {"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": props.max_receive_count}
            ),
        )
        aws.sqs_queue_redrive_allow_policy.SqsQueueRedriveAllowPolicy(
            self, "RedriveAllow",
            queue_url=self.dlq.url,
            redrive_allow_policy=Fn.jsonencode(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}
            ),
        )
        for key, queue in (("QueuePolicy", self.queue), ("DeadLetterQueuePolicy", self.dlq)):
            statements = [deny_insecure_transport((queue.arn,), "sqs")]
            if queue is self.queue:
                statements.insert(0, Statement(
                    sid="AllowInputTopic",
                    actions=("sqs:SendMessage",),
                    resources=(queue.arn,),
                    principals=(service_principal("sns.amazonaws.com"),),
                    conditions=(Condition(test="ArnEquals", variable="aws:SourceArn",
                                          values=(ingress.input_topic_arn,)),),
                ))
            doc = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
                self, f"{key}Document", statement=render_statements(statements)
            )
            aws.sqs_queue_policy.SqsQueuePolicy(self, key, queue_url=queue.url, policy=doc.json)
        aws.sns_topic_subscription.SnsTopicSubscription(
            self, "Subscription",
            topic_arn=ingress.input_topic_arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            filter_policy=json.dumps({"runtime": [spec.name]}),
            filter_policy_scope="MessageAttributes",
            raw_message_delivery=False,
        )



class ServerlessIngress(Construct):
    """The API → SNS → per-runtime SQS front door, its storage and its Lambdas."""

    def __init__(self, scope: Construct, id_: str, *,
                 props: ServerlessIngressProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        self._specs = {spec.name: spec for spec in props.runtimes}
        name = props.name
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Caller")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        region = aws.data_aws_region.DataAwsRegion(self, "Region")
        self._account_id = identity.account_id
        self._region = region.name
        self._partition = partition.partition

        # --- KMS ------------------------------------------------------------------------
        key_policy = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
            self, "KeyPolicy", statement=render_statements([
                *key_policy_statements(partition=partition.partition, region=region.name,
                                       account_id=identity.account_id),
                Statement(
                    sid="ServicesUseKey",
                    actions=("kms:Decrypt", "kms:GenerateDataKey"),
                    resources=("*",),
                    principals=(service_principal(
                        "sns.amazonaws.com", "sqs.amazonaws.com", "cloudwatch.amazonaws.com",
                    ),),
                    conditions=(Condition(test="StringEquals", variable="aws:SourceAccount",
                                          values=(identity.account_id,)),),
                    star_reason="a key policy's resource is always the key itself",
                ),
            ]),
        )
        self._key = aws.kms_key.KmsKey(
            self, "Key",
            description=f"{name}: task queues, topics, table, outputs and logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy.json,
        )
        aws.kms_alias.KmsAlias(self, "KeyAlias", name=f"alias/{name}-ingress",
                               target_key_id=self._key.key_id)

        # --- topics, queues ---------------------------------------------------------------
        self._input_topic = aws.sns_topic.SnsTopic(
            self, "InputTopic", name=f"{name}-tasks", kms_master_key_id=self._key.arn
        )
        self._result_topic = aws.sns_topic.SnsTopic(
            self, "ResultTopic", name=f"{name}-results", kms_master_key_id=self._key.arn
        )
        self._queues: dict[str, _RuntimeQueue] = {}
        for spec in props.runtimes:
            self._queues[spec.name] = _RuntimeQueue(
                self, f"Runtime-{spec.name}", ingress=self, spec=spec, props=props
            )

        # --- output bucket ----------------------------------------------------------------
        self._bucket = secure_bucket(
            self, bucket_id="OutputBucket", id_prefix="OutputBucket",
            bucket_name=f"{name}-outputs-{identity.account_id}-{region.name}",
            force_destroy=props.force_destroy_outputs, kms_key_arn=self._key.arn,
            lifecycle=BucketLifecycle(rule_id="expire-outputs", noncurrent_days=7,
                                      expire_after_days=props.output_expire_after_days),
        )

        # --- task table ------------------------------------------------------------------
        ddb = aws.dynamodb_table
        self._table = ddb.DynamodbTable(
            self, "TaskTable",
            name=f"{name}-tasks",
            billing_mode="PAY_PER_REQUEST",
            hash_key="id",
            attribute=[ddb.DynamodbTableAttribute(name="id", type="S")],
            ttl=ddb.DynamodbTableTtl(attribute_name="expires_at", enabled=True),
            point_in_time_recovery=ddb.DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=ddb.DynamodbTableServerSideEncryption(
                enabled=True, kms_key_arn=self._key.arn),
            deletion_protection_enabled=False,
        )

        # --- Lambdas ---------------------------------------------------------------------
        zip_path = build_zip(LAMBDA_SOURCE_DIR)
        asset = TerraformAsset(self, "LambdaPackage", path=str(zip_path), type=AssetType.FILE)
        runtimes_env = json.dumps(
            {s.name: {"type": s.type, "models": list(s.models),
                      "dynamic_model": s.dynamic_model}
             for s in props.runtimes},
            sort_keys=True, separators=(",", ":"),
        )
        self._ingest = self._function(
            "Ingest", "ingest", asset,
            environment={
                "TASK_TABLE": self._table.name,
                "OUTPUT_BUCKET": self._bucket.bucket,
                "INPUT_TOPIC_ARN": self._input_topic.arn,
                "RUNTIMES": runtimes_env,
                "TASK_TTL_DAYS": str(props.task_ttl_days),
                "SNS_MAX_BYTES": str(SNS_MAX_BYTES),
                "MAX_BODY_BYTES": str(API_MAX_BODY_BYTES),
                "LOG_LEVEL": "INFO",
            },
            statements=[
                Statement(sid="RecordTasks",
                          actions=("dynamodb:PutItem", "dynamodb:GetItem",
                                   "dynamodb:UpdateItem"),
                          resources=(self._table.arn,)),
                Statement(sid="PublishTasks", actions=("sns:Publish",),
                          resources=(self._input_topic.arn,)),
                Statement(sid="StoreClaimChecks", actions=("s3:PutObject",),
                          resources=(f"{self._bucket.arn}/{CLAIM_CHECK_PREFIX}*",)),
                Statement(sid="UseKey", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                          resources=(self._key.arn,)),
            ],
        )
        self._status = self._function(
            "Status", "status", asset,
            environment={
                "TASK_TABLE": self._table.name,
                "OUTPUT_BUCKET": self._bucket.bucket,
                "TASK_TTL_DAYS": str(props.task_ttl_days),
                "PRESIGN_EXPIRES_SECONDS": "3600",
                "LOG_LEVEL": "INFO",
            },
            statements=[
                Statement(sid="ReadTasks", actions=("dynamodb:GetItem",),
                          resources=(self._table.arn,)),
                Statement(sid="PresignImages", actions=("s3:GetObject",),
                          resources=(f"{self._bucket.arn}/*",)),
                Statement(sid="UseKey", actions=("kms:Decrypt",),
                          resources=(self._key.arn,)),
            ],
        )

        # --- REST API ----------------------------------------------------------------------
        self._build_api()
        self._build_alarms()

    # ------------------------------------------------------------------------------------
    def _function(self, id_: str, handler: str, asset: TerraformAsset, *,
                  environment: dict[str, str], statements: list[Statement]):
        props = self._props
        scope = Construct(self, id_)
        function_name = f"{props.name}-{handler}"
        log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            scope, "LogGroup", name=f"/aws/lambda/{function_name}",
            retention_in_days=props.log_retention_days, kms_key_id=self._key.arn,
        )
        role = Role(scope, "Role", name=f"{function_name}-lambda",
                    assumed_by=service_principal("lambda.amazonaws.com"),
                    description=f"{function_name} Lambda function")
        role.add_policy("Function", [
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
            timeout=15,
            reserved_concurrent_executions=props.lambda_reserved_concurrency,
            tracing_config=fn.LambdaFunctionTracingConfig(mode="Active"),
            kms_key_arn=self._key.arn,
            environment=fn.LambdaFunctionEnvironment(variables=environment),
            logging_config=fn.LambdaFunctionLoggingConfig(
                log_format="Text", log_group=log_group.name),
            depends_on=[log_group],
        )
        return function

    def _build_api(self) -> None:
        props = self._props
        api = aws.api_gateway_rest_api.ApiGatewayRestApi(
            self, "Api", name=f"{props.name}-api",
            description="Asynchronous Stable Diffusion task API",
            endpoint_configuration=aws.api_gateway_rest_api.ApiGatewayRestApiEndpointConfiguration(
                types=["REGIONAL"]),
            api_key_source="HEADER",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self._api = api
        validator = aws.api_gateway_request_validator.ApiGatewayRequestValidator(
            self, "RequestValidator", rest_api_id=api.id, name="parameters",
            validate_request_parameters=True, validate_request_body=False,
        )
        v2 = aws.api_gateway_resource.ApiGatewayResource(
            self, "ResourceV1alpha2", rest_api_id=api.id, parent_id=api.root_resource_id,
            path_part="v1alpha2")
        v1 = aws.api_gateway_resource.ApiGatewayResource(
            self, "ResourceV1alpha1", rest_api_id=api.id, parent_id=api.root_resource_id,
            path_part="v1alpha1")
        tasks = aws.api_gateway_resource.ApiGatewayResource(
            self, "ResourceTasks", rest_api_id=api.id, parent_id=v2.id, path_part="tasks")
        task = aws.api_gateway_resource.ApiGatewayResource(
            self, "ResourceTask", rest_api_id=api.id, parent_id=tasks.id, path_part="{id}")
        routes = [
            ("PostV1alpha2", v2, "POST", self._ingest, None),
            ("PostV1alpha1", v1, "POST", self._ingest, None),
            ("GetTask", task, "GET", self._status, {"method.request.path.id": True}),
        ]
        deployment_inputs = []
        integrations = []
        for key, resource, verb, function, params in routes:
            method = aws.api_gateway_method.ApiGatewayMethod(
                self, f"Method{key}", rest_api_id=api.id, resource_id=resource.id,
                http_method=verb, authorization="NONE", api_key_required=True,
                request_parameters=params, request_validator_id=validator.id,
            )
            integration = aws.api_gateway_integration.ApiGatewayIntegration(
                self, f"Integration{key}", rest_api_id=api.id, resource_id=resource.id,
                http_method=method.http_method, type="AWS_PROXY",
                integration_http_method="POST", uri=function.invoke_arn,
                timeout_milliseconds=29000,
            )
            integrations.append(integration)
            deployment_inputs.append(f"{key}:{verb}:{function.node.path}")
        for function, key in ((self._ingest, "Ingest"), (self._status, "Status")):
            aws.lambda_permission.LambdaPermission(
                self, f"Invoke{key}", action="lambda:InvokeFunction",
                function_name=function.function_name, principal="apigateway.amazonaws.com",
                source_arn=f"{api.execution_arn}/*/*",
            )
        for response_type, status in (("DEFAULT_4XX", None), ("DEFAULT_5XX", None)):
            aws.api_gateway_gateway_response.ApiGatewayGatewayResponse(
                self, f"Response{response_type}", rest_api_id=api.id,
                response_type=response_type, status_code=status,
                response_templates={"application/json": _GATEWAY_ERROR_TEMPLATE},
                response_parameters={
                    "gatewayresponse.header.Content-Type": "'application/json'"},
            )
            deployment_inputs.append(response_type)
        deployment_inputs.append(_GATEWAY_ERROR_TEMPLATE)
        digest = hashlib.sha256("\n".join(deployment_inputs).encode()).hexdigest()
        deployment = aws.api_gateway_deployment.ApiGatewayDeployment(
            self, "Deployment", rest_api_id=api.id,
            triggers={"redeployment": digest},
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            depends_on=integrations,
        )
        access_logs = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "ApiAccessLogs",
            name=f"/aws/apigateway/{props.name}-api/{props.stage_name}",
            retention_in_days=props.api_log_retention_days, kms_key_id=self._key.arn,
        )
        depends = []
        if props.manage_api_gateway_account:
            cw_role = Role(self, "ApiGatewayLoggingRole", name=f"{props.name}-apigw-logs",
                           assumed_by=service_principal("apigateway.amazonaws.com"),
                           description="API Gateway writes access and execution logs")
            cw_role.add_policy("Logging", [Statement(
                sid="WriteApiLogs",
                actions=("logs:CreateLogGroup", "logs:CreateLogStream",
                         "logs:DescribeLogGroups", "logs:DescribeLogStreams",
                         "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"),
                resources=(f"arn:{self._partition}:logs:{self._region}:{self._account_id}"
                           ":log-group:*",),
            )])
            account = aws.api_gateway_account.ApiGatewayAccount(
                self, "ApiGatewayAccount", cloudwatch_role_arn=cw_role.role_arn)
            depends.append(account)
        stage = aws.api_gateway_stage.ApiGatewayStage(
            self, "Stage", rest_api_id=api.id, deployment_id=deployment.id,
            stage_name=props.stage_name, xray_tracing_enabled=True,
            access_log_settings=aws.api_gateway_stage.ApiGatewayStageAccessLogSettings(
                destination_arn=access_logs.arn,
                format=json.dumps(_ACCESS_LOG_FORMAT, sort_keys=True, separators=(",", ":")),
            ),
            depends_on=depends or None,
        )
        self._stage = stage
        aws.api_gateway_method_settings.ApiGatewayMethodSettings(
            self, "MethodSettings", rest_api_id=api.id, stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.api_gateway_method_settings.ApiGatewayMethodSettingsSettings(
                metrics_enabled=True,
                logging_level="ERROR",
                data_trace_enabled=False,
                throttling_rate_limit=props.rate_limit_per_second * 4,
                throttling_burst_limit=props.burst_limit * 4,
            ),
        )
        self._api_key = aws.api_gateway_api_key.ApiGatewayApiKey(
            self, "ApiKey", name=f"{props.name}-default", enabled=True,
            description="Default client key; more keys can join the usage plan")
        up = aws.api_gateway_usage_plan
        plan = up.ApiGatewayUsagePlan(
            self, "UsagePlan", name=f"{props.name}-default",
            api_stages=[up.ApiGatewayUsagePlanApiStages(api_id=api.id, stage=stage.stage_name)],
            throttle_settings=up.ApiGatewayUsagePlanThrottleSettings(
                rate_limit=props.rate_limit_per_second, burst_limit=props.burst_limit),
            quota_settings=(
                up.ApiGatewayUsagePlanQuotaSettings(limit=props.quota_per_day, period="DAY")
                if props.quota_per_day else None
            ),
        )
        self._usage_plan = plan
        aws.api_gateway_usage_plan_key.ApiGatewayUsagePlanKey(
            self, "UsagePlanKey", key_id=self._api_key.id, key_type="API_KEY",
            usage_plan_id=plan.id)

    def _build_alarms(self) -> None:
        props = self._props
        actions = [props.alarm_topic_arn] if props.alarm_topic_arn else None
        for runtime, queue in self._queues.items():
            aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
                queue, "DeadLetterAlarm",
                alarm_name=f"{props.name}-{runtime}-dlq-not-empty",
                alarm_description=f"Tasks for {runtime} reached the dead-letter queue",
                namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue.dlq.name}, statistic="Maximum",
                period=60, evaluation_periods=1, threshold=0,
                comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
                alarm_actions=actions, ok_actions=actions,
            )
            aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
                queue, "OldestMessageAlarm",
                alarm_name=f"{props.name}-{runtime}-oldest-task",
                alarm_description=(
                    f"The oldest {runtime} task waited more than "
                    f"{props.oldest_message_alarm_seconds} s"),
                namespace="AWS/SQS", metric_name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue.queue.name}, statistic="Maximum",
                period=60, evaluation_periods=3, threshold=props.oldest_message_alarm_seconds,
                comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
                alarm_actions=actions, ok_actions=actions,
            )
        aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self, "IngestErrorsAlarm", alarm_name=f"{props.name}-ingest-errors",
            alarm_description="The ingest Lambda raised errors",
            namespace="AWS/Lambda", metric_name="Errors",
            dimensions={"FunctionName": self._ingest.function_name}, statistic="Sum",
            period=60, evaluation_periods=1, threshold=0,
            comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=actions, ok_actions=actions,
        )
        aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self, "Api5xxAlarm", alarm_name=f"{props.name}-api-5xx",
            alarm_description="The API answered with 5xx errors",
            namespace="AWS/ApiGateway", metric_name="5XXError",
            dimensions={"ApiName": self._api.name, "Stage": self._stage.stage_name},
            statistic="Sum", period=60, evaluation_periods=1, threshold=0,
            comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=actions, ok_actions=actions,
        )

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> ServerlessIngressProps:
        return self._props

    @property
    def runtime_names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    @property
    def kms_key_arn(self) -> str:
        return self._key.arn

    @property
    def input_topic_arn(self) -> str:
        return self._input_topic.arn

    @property
    def result_topic_arn(self) -> str:
        return self._result_topic.arn

    @property
    def output_bucket_name(self) -> str:
        return self._bucket.bucket

    @property
    def output_bucket_arn(self) -> str:
        return self._bucket.arn

    @property
    def task_table_name(self) -> str:
        return self._table.name

    @property
    def task_table_arn(self) -> str:
        return self._table.arn

    @property
    def api_endpoint(self) -> str:
        return self._stage.invoke_url

    @property
    def api_id(self) -> str:
        return self._api.id

    @property
    def api_key_id(self) -> str:
        return self._api_key.id

    @property
    def api_key_value(self) -> str:
        """The key's value (sensitive): for outputs marked sensitive only."""
        return self._api_key.value

    def queue_for(self, runtime: str) -> RuntimeQueueRef:
        """The queue of ``runtime`` (for scalers and runtimes)."""
        try:
            queue = self._queues[runtime]
        except KeyError:
            raise KeyError(
                f"no queue for runtime {runtime!r}; configured: {', '.join(self._queues)}"
            ) from None
        return RuntimeQueueRef(
            runtime=runtime, type=self._specs[runtime].type,
            queue_url=queue.queue.url, queue_arn=queue.queue.arn, queue_name=queue.queue.name,
            dlq_url=queue.dlq.url, dlq_arn=queue.dlq.arn,
        )

    # --- grants ------------------------------------------------------------------------------
    def grant_consume(self, grantee: Construct, runtime: str, *, role_name: str) -> None:
        """Receive, delete and extend the visibility of ``runtime``'s tasks."""
        ref = self.queue_for(runtime)
        attach(grantee, f"ConsumeTasks-{runtime}", [
            Statement(sid="ConsumeQueue",
                      actions=("sqs:ReceiveMessage", "sqs:DeleteMessage",
                               "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
                      resources=(ref.queue_arn,)),
            Statement(sid="DecryptMessages", actions=("kms:Decrypt",),
                      resources=(self.kms_key_arn,)),
        ], role_name=role_name)

    def grant_write_outputs(self, grantee: Construct, *, role_name: str,
                            prefix: str = "") -> None:
        """Write (and read back) output objects under ``prefix`` in the output bucket."""
        attach(grantee, "WriteOutputs", [
            Statement(sid="WriteOutputs", actions=("s3:PutObject", "s3:GetObject"),
                      resources=(f"{self.output_bucket_arn}/{prefix}*",)),
            Statement(sid="EncryptOutputs", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                      resources=(self.kms_key_arn,)),
        ], role_name=role_name)

    def grant_update_status(self, grantee: Construct, *, role_name: str) -> None:
        """Read and update task records."""
        attach(grantee, "UpdateTaskStatus", [
            Statement(sid="UpdateTasks",
                      actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
                      resources=(self.task_table_arn,)),
            Statement(sid="TableKey", actions=("kms:Decrypt", "kms:GenerateDataKey"),
                      resources=(self.kms_key_arn,)),
        ], role_name=role_name)

    def grant_publish_results(self, grantee: Construct, *, role_name: str) -> None:
        """Publish result messages to the result topic."""
        attach(grantee, "PublishResults", [
            Statement(sid="PublishResults", actions=("sns:Publish",),
                      resources=(self.result_topic_arn,)),
            Statement(sid="TopicKey", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                      resources=(self.kms_key_arn,)),
        ], role_name=role_name)

    def grant_read_claim_checks(self, grantee: Construct, *, role_name: str) -> None:
        """Read request bodies that were too large for SNS."""
        attach(grantee, "ReadClaimChecks", [
            Statement(sid="ReadClaimChecks", actions=("s3:GetObject",),
                      resources=(f"{self.output_bucket_arn}/{CLAIM_CHECK_PREFIX}*",)),
            Statement(sid="DecryptClaimChecks", actions=("kms:Decrypt",),
                      resources=(self.kms_key_arn,)),
        ], role_name=role_name)


@dataclass(frozen=True, kw_only=True)
class RuntimeQueueRef:
    """What other constructs need to know about one runtime's queue."""

    runtime: str
    type: RuntimeType
    queue_url: str
    queue_arn: str
    queue_name: str
    dlq_url: str
    dlq_arn: str


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

# Token is re-exported for constructs that compare attributes in tests.
__all__ = [
    "CLAIM_CHECK_PREFIX",
    "RuntimeQueueRef",
    "RuntimeSpec",
    "ServerlessIngress",
    "ServerlessIngressProps",
    "Token",
]
