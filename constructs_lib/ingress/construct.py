"""The :class:`ServerlessIngress` construct (see the package docstring)."""

from __future__ import annotations

import json

from constructs_lib._cdktf import (
    AssetType,
    Construct,
    Fn,
    TerraformAsset,
)
from constructs_lib._providers import aws
from constructs_lib.alarms import metric_alarm
from constructs_lib.assets import lambda_package_dirs
from constructs_lib.buckets import BucketLifecycle, secure_bucket
from constructs_lib.iam import (
    Condition,
    Grant,
    RoleRef,
    Statement,
    grant,
    key_policy_statements,
    render_statements,
    service_principal,
)
from constructs_lib.ingress.api import rest_api
from constructs_lib.ingress.functions import lambda_function
from constructs_lib.ingress.props import (
    API_MAX_BODY_BYTES,
    SNS_MAX_BYTES,
    RuntimeQueueRef,
    ServerlessIngressProps,
)
from constructs_lib.ingress.queues import RuntimeQueue
from constructs_lib.ingress.webhooks import WebhookDeliverer
from constructs_lib.packaging import build_zip
from constructs_lib.tags import apply_tags
from task_contract import CLAIM_CHECK_PREFIX
from task_contract.record import Fields


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
        self._region = region.id  # the region's name in every AWS provider 5.x and 6.x
        self._partition = partition.partition

        # --- KMS ------------------------------------------------------------------------
        key_policy = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
            self, "KeyPolicy", statement=render_statements([
                *key_policy_statements(partition=partition.partition, region=self._region,
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
        self._queues: dict[str, RuntimeQueue] = {}
        for spec in props.runtimes:
            self._queues[spec.name] = RuntimeQueue(
                self, f"Runtime-{spec.name}", kms_key_arn=self._key.arn,
                input_topic_arn=self._input_topic.arn, spec=spec, props=props)

        # --- output bucket ----------------------------------------------------------------
        self._bucket = secure_bucket(
            self, bucket_id="OutputBucket", id_prefix="OutputBucket",
            bucket_name=f"{name}-outputs-{identity.account_id}-{self._region}",
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
            hash_key=Fields.ID,
            attribute=[ddb.DynamodbTableAttribute(name=Fields.ID, type="S")],
            ttl=ddb.DynamodbTableTtl(attribute_name=Fields.EXPIRES_AT, enabled=True),
            point_in_time_recovery=ddb.DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=ddb.DynamodbTableServerSideEncryption(
                enabled=True, kms_key_arn=self._key.arn),
            deletion_protection_enabled=False,
        )

        # --- Lambdas ---------------------------------------------------------------------
        zip_path = build_zip(lambda_package_dirs())
        asset = TerraformAsset(self, "LambdaPackage", path=str(zip_path), type=AssetType.FILE)
        runtimes_env = json.dumps(
            {s.name: {"type": s.type, "models": list(s.models),
                      "dynamic_model": s.dynamic_model}
             for s in props.runtimes},
            sort_keys=True, separators=(",", ":"),
        )
        self._ingest = lambda_function(
            self, "Ingest", "ingest", asset, props=props, key_arn=self._key.arn,
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
        self._status = lambda_function(
            self, "Status", "status", asset, props=props, key_arn=self._key.arn,
            environment={
                "TASK_TABLE": self._table.name,
                "OUTPUT_BUCKET": self._bucket.bucket,
                "TASK_TTL_DAYS": str(props.task_ttl_days),
                "PRESIGN_EXPIRES_SECONDS": "3600",
                "RUNTIMES": runtimes_env,  # named in the OpenAPI document it serves
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

        self._cancel = lambda_function(
            self, "Cancel", "cancel", asset, props=props, key_arn=self._key.arn,
            environment={
                "TASK_TABLE": self._table.name,
                "OUTPUT_BUCKET": self._bucket.bucket,
                "PRESIGN_EXPIRES_SECONDS": "3600",
                "LOG_LEVEL": "INFO",
            },
            statements=[
                Statement(sid="CancelTasks", actions=("dynamodb:UpdateItem",),
                          resources=(self._table.arn,)),
                Statement(sid="UseKey", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                          resources=(self._key.arn,)),
            ],
        )

        self._dead_letters = self._dead_letter_consumer(asset)
        self._webhooks = WebhookDeliverer(
            self, "Webhooks", props=props, asset=asset, key_arn=self._key.arn,
            result_topic_arn=self._result_topic.arn, table_name=self._table.name,
            table_arn=self._table.arn)

        # --- REST API ----------------------------------------------------------------------
        rest = rest_api(self, props=props, ingest=self._ingest, status=self._status,
                        cancel=self._cancel,
                        key_arn=self._key.arn, partition=self._partition, region=self._region,
                        account_id=self._account_id)
        self._api, self._stage, self._api_key = rest.api, rest.stage, rest.api_key
        self._usage_plan = rest.usage_plan
        self._build_alarms()
        apply_tags(self, dict(props.tags))

    def _dead_letter_consumer(self, asset: TerraformAsset):
        """The consumer of every runtime's dead-letter intake (``lambda_src.dead_letters``)
        and one event source mapping per intake: one message per invocation, at most two
        invocations at a time per intake (dead letters are rare; their handling is not
        urgent)."""
        queues = self._queues.values()
        sources = Fn.jsonencode([
            {"runtime": runtime, "source_arn": queue.intake.arn, "queue_url": queue.dlq.url}
            for runtime, queue in self._queues.items()
        ])
        function = lambda_function(
            self, "DeadLetters", "dead_letters", asset, props=self._props,
            key_arn=self._key.arn, name="dead-letters",
            environment={
                "TASK_TABLE": self._table.name,
                "OUTPUT_BUCKET": self._bucket.bucket,
                "RESULT_TOPIC_ARN": self._result_topic.arn,
                "DEAD_LETTER_QUEUES": sources,
                "LOG_LEVEL": "INFO",
            },
            statements=[
                Statement(sid="FailTasks", actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
                          resources=(self._table.arn,)),
                Statement(sid="PublishResults", actions=("sns:Publish",),
                          resources=(self._result_topic.arn,)),
                Statement(sid="ConsumeDeadLetterIntake",
                          actions=("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:GetQueueAttributes"),
                          resources=tuple(q.intake.arn for q in queues)),
                Statement(sid="KeepDeadLetters", actions=("sqs:SendMessage",),
                          resources=tuple(q.dlq.arn for q in queues)),
                Statement(sid="UseKey", actions=("kms:Decrypt", "kms:GenerateDataKey"),
                          resources=(self._key.arn,)),
            ],
        )
        esm = aws.lambda_event_source_mapping
        for queue in queues:
            esm.LambdaEventSourceMapping(
                queue, "DeadLetterConsumer", event_source_arn=queue.intake.arn,
                function_name=function.arn, batch_size=1, enabled=True,
                scaling_config=esm.LambdaEventSourceMappingScalingConfig(
                    maximum_concurrency=2),
            )
        return function

    # ------------------------------------------------------------------------------------
    def _build_alarms(self) -> None:
        props = self._props
        actions = [props.alarm_topic_arn] if props.alarm_topic_arn else None
        self._alarms: list = []
        alarms = self._alarms
        for runtime, queue in self._queues.items():
            alarms.append(metric_alarm(
                queue, "DeadLetterAlarm", alarm_name=f"{props.name}-{runtime}-dlq-not-empty",
                description=f"Tasks for {runtime} reached the dead-letter queue",
                namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue.dlq.name}, statistic="Maximum", threshold=0,
                actions=actions,
            ))
            alarms.append(metric_alarm(
                queue, "OldestMessageAlarm", alarm_name=f"{props.name}-{runtime}-oldest-task",
                description=(f"The oldest {runtime} task waited more than "
                             f"{props.oldest_message_alarm_seconds} s"),
                namespace="AWS/SQS", metric_name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue.queue.name}, statistic="Maximum",
                threshold=props.oldest_message_alarm_seconds, evaluation_periods=3,
                actions=actions,
            ))
        alarms.append(metric_alarm(
            self, "IngestErrorsAlarm", alarm_name=f"{props.name}-ingest-errors",
            description="The ingest Lambda raised errors",
            namespace="AWS/Lambda", metric_name="Errors",
            dimensions={"FunctionName": self._ingest.function_name}, statistic="Sum",
            threshold=0, actions=actions,
        ))
        alarms.append(metric_alarm(
            self, "DeadLetterConsumerErrorsAlarm",
            alarm_name=f"{props.name}-dead-letter-consumer-errors",
            description=("The dead-letter consumer failed on a message: its task may not be "
                         "marked failed yet (the message stays in the dead-letter intake and "
                         "is retried)"),
            namespace="AWS/Lambda", metric_name="Errors",
            dimensions={"FunctionName": self._dead_letters.function_name}, statistic="Sum",
            threshold=0, actions=actions,
        ))
        alarms.append(metric_alarm(
            self, "Api5xxAlarm", alarm_name=f"{props.name}-api-5xx",
            description="The API answered with 5xx errors",
            namespace="AWS/ApiGateway", metric_name="5XXError",
            dimensions={"ApiName": self._api.name, "Stage": self._stage.stage_name},
            statistic="Sum", threshold=0, actions=actions,
        ))

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> ServerlessIngressProps:
        return self._props

    @property
    def task_ttl_days(self) -> int:
        """Days a task record lives in the task table (its ``expires_at``)."""
        return self._props.task_ttl_days

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
    def api_name(self) -> str:
        """The REST API's name (the ``ApiName`` dimension of its CloudWatch metrics)."""
        return self._api.name

    @property
    def stage_name(self) -> str:
        return self._stage.stage_name

    @property
    def ingest_function_name(self) -> str:
        return self._ingest.function_name

    @property
    def status_function_name(self) -> str:
        return self._status.function_name

    @property
    def cancel_function_name(self) -> str:
        return self._cancel.function_name

    @property
    def alarm_arns(self) -> list[str]:
        """Every alarm this construct created."""
        return [alarm.arn for alarm in (*self._alarms, self._webhooks.alarm)]

    @property
    def webhook_secret_arn(self) -> str:
        """The Secrets Manager secret whose value signs webhook deliveries (receivers
        verify with it: docs/contracts.md, "Webhooks")."""
        return self._webhooks.secret.arn

    @property
    def webhook_function_name(self) -> str:
        return self._webhooks.function.function_name

    @property
    def webhook_dlq_url(self) -> str:
        """Webhook deliveries that failed every attempt."""
        return self._webhooks.deliveries.dlq.url

    @property
    def dead_letter_function_name(self) -> str:
        """The dead-letter consumer's function name (its ``FunctionName`` metric dimension)."""
        return self._dead_letters.function_name

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
            dlq_url=queue.dlq.url, dlq_arn=queue.dlq.arn, dlq_name=queue.dlq.name,
            visibility_timeout_seconds=self._props.visibility_timeout_seconds,
        )

    # --- grants ------------------------------------------------------------------------------
    # Each grant is one inline policy on the grantee's role (a role name, a construct with a
    # role_name, or an aws_iam_role of the caller's stack) with the exact actions on the
    # exact resources, and returns the Grant it created. ``scope`` is where the policy goes
    # (default: the role construct itself; required for a role given by name).
    def grant_consume(self, role: RoleRef, runtime: str, *,
                      scope: Construct | None = None) -> Grant:
        """Receive, delete and extend the visibility of ``runtime``'s tasks."""
        ref = self.queue_for(runtime)
        return grant(f"ConsumeTasks-{runtime}", [
            Statement(sid="ConsumeQueue",
                      actions=("sqs:ReceiveMessage", "sqs:DeleteMessage",
                               "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
                      resources=(ref.queue_arn,)),
            Statement(sid="DecryptMessages", actions=("kms:Decrypt",),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)

    def grant_write_outputs(self, role: RoleRef, *, prefix: str = "",
                            scope: Construct | None = None) -> Grant:
        """Write (and read back) output objects under ``prefix`` in the output bucket.

        Never under the claim-check prefix (``_requests/``), whatever ``prefix`` is: those
        objects are the stored requests of other tasks, written by ingest only. An explicit
        Deny, so no other grant on the role can reopen it.
        """
        return grant("WriteOutputs", [
            Statement(sid="WriteOutputs", actions=("s3:PutObject", "s3:GetObject"),
                      resources=(f"{self.output_bucket_arn}/{prefix}*",)),
            Statement(sid="DenyWriteClaimChecks", effect="Deny",
                      actions=("s3:PutObject", "s3:DeleteObject"),
                      resources=(f"{self.output_bucket_arn}/{CLAIM_CHECK_PREFIX}*",)),
            Statement(sid="EncryptOutputs", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)

    def grant_update_status(self, role: RoleRef, *, scope: Construct | None = None) -> Grant:
        """Read and update task records."""
        return grant("UpdateTaskStatus", [
            Statement(sid="UpdateTasks",
                      actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
                      resources=(self.task_table_arn,)),
            Statement(sid="TableKey", actions=("kms:Decrypt", "kms:GenerateDataKey"),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)

    def grant_publish_results(self, role: RoleRef, *, scope: Construct | None = None) -> Grant:
        """Publish result messages to the result topic."""
        return grant("PublishResults", [
            Statement(sid="PublishResults", actions=("sns:Publish",),
                      resources=(self.result_topic_arn,)),
            Statement(sid="TopicKey", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)

    def grant_read_claim_checks(self, role: RoleRef, *,
                                scope: Construct | None = None) -> Grant:
        """Read request bodies that were too large for SNS."""
        return grant("ReadClaimChecks", [
            Statement(sid="ReadClaimChecks", actions=("s3:GetObject",),
                      resources=(f"{self.output_bucket_arn}/{CLAIM_CHECK_PREFIX}*",)),
            Statement(sid="DecryptClaimChecks", actions=("kms:Decrypt",),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)

    def grant_submit_tasks(self, role: RoleRef, *, scope: Construct | None = None) -> Grant:
        """Publish tasks straight to the input topic (what the ingest Lambda does for API
        clients): each runtime's queue receives the tasks whose ``runtime`` message
        attribute names it."""
        return grant("SubmitTasks", [
            Statement(sid="PublishTasks", actions=("sns:Publish",),
                      resources=(self.input_topic_arn,)),
            Statement(sid="TopicKey", actions=("kms:GenerateDataKey", "kms:Decrypt"),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)

    def grant_read_results(self, role: RoleRef, *, scope: Construct | None = None) -> Grant:
        """Read task records and the images and result documents in the output bucket, and
        subscribe to the result topic."""
        return grant("ReadResults", [
            Statement(sid="ReadTasks", actions=("dynamodb:GetItem",),
                      resources=(self.task_table_arn,)),
            Statement(sid="ReadOutputs", actions=("s3:GetObject",),
                      resources=(f"{self.output_bucket_arn}/*",)),
            Statement(sid="SubscribeResults", actions=("sns:Subscribe",),
                      resources=(self.result_topic_arn,)),
            Statement(sid="DecryptResults", actions=("kms:Decrypt",),
                      resources=(self.kms_key_arn,)),
        ], role=role, scope=scope)
