"""Property assertions on ServerlessIngress as synthesized for the example config."""

from __future__ import annotations

import json

import pytest

RUNTIMES = ("sdruntime", "comfyui")


def _statements(synthesized, path_suffix: str) -> list[dict]:
    return synthesized.by_path("aws_iam_policy_document", path_suffix)["statement"]


def _key_of(synthesized, rtype: str, resource: dict) -> str:
    return f"{rtype}." + next(k for k, v in synthesized.resources(rtype).items() if v == resource)


def test_queues_are_encrypted_long_polled_with_dead_letter(synthesized, example_config):
    queues = {k: v for k, v in synthesized.resources("aws_sqs_queue").items()
              if v["//"]["metadata"]["path"].startswith("sdaas/Ingress/Runtime-")}
    assert len(queues) == 3 * len(RUNTIMES)
    max_receive_count = example_config.queue.max_receive_count
    for runtime in RUNTIMES:
        queue = synthesized.by_path("aws_sqs_queue", f"Runtime-{runtime}/Queue")
        intake = synthesized.by_path("aws_sqs_queue", f"Runtime-{runtime}/DeadLetterIntake")
        dlq = synthesized.by_path("aws_sqs_queue", f"Runtime-{runtime}/DeadLetterQueue")
        for q in (queue, intake, dlq):
            assert q["kms_master_key_id"].startswith("${aws_kms_key.")
        assert queue["name"] == f"sdaas-{runtime}-tasks"
        assert (intake["name"], dlq["name"]) == (f"sdaas-{runtime}-dlq-intake",
                                                 f"sdaas-{runtime}-dlq")
        assert queue["receive_wait_time_seconds"] == 20
        expected_visibility = example_config.queue.visibility_timeout_seconds
        assert queue["visibility_timeout_seconds"] == expected_visibility
        # task queue -> intake (max_receive_count) -> dead-letter queue (the consumer's
        # five attempts on top, whether or not SQS carries the receive count along)
        redrive = queue["redrive_policy"]
        assert _key_of(synthesized, "aws_sqs_queue", intake) in redrive
        assert f'"maxReceiveCount" = {max_receive_count}' in redrive
        intake_redrive = intake["redrive_policy"]
        assert _key_of(synthesized, "aws_sqs_queue", dlq) in intake_redrive
        assert f'"maxReceiveCount" = {max_receive_count + 5}' in intake_redrive
        assert "redrive_policy" not in dlq
        # six times the consumer's 15 s timeout, as AWS advises for a mapped queue
        assert intake["visibility_timeout_seconds"] == 90
        retention = example_config.queue.dlq_message_retention_seconds
        assert intake["message_retention_seconds"] == dlq["message_retention_seconds"] == retention
        for allow, target, source in (("RedriveAllow", dlq, intake),
                                      ("IntakeRedriveAllow", intake, queue)):
            policy = synthesized.by_path("aws_sqs_queue_redrive_allow_policy",
                                         f"Runtime-{runtime}/{allow}")
            assert _key_of(synthesized, "aws_sqs_queue", target) in policy["queue_url"]
            assert _key_of(synthesized, "aws_sqs_queue", source) in (
                policy["redrive_allow_policy"])
            assert '"redrivePermission" = "byQueue"' in policy["redrive_allow_policy"]


def test_dead_letter_consumer_reads_each_intake_and_keeps_messages(synthesized):
    function = synthesized.by_path("aws_lambda_function", "DeadLetters/Function")
    assert function["function_name"] == "sdaas-dead-letters"
    assert function["handler"] == "lambda_src.dead_letters.handler"
    function_key = _key_of(synthesized, "aws_lambda_function", function)
    variables = function["environment"]["variables"]
    assert set(variables) == {"TASK_TABLE", "OUTPUT_BUCKET", "RESULT_TOPIC_ARN",
                              "DEAD_LETTER_QUEUES", "LOG_LEVEL"}
    assert "ResultTopic" in variables["RESULT_TOPIC_ARN"]
    policy = synthesized.by_path("aws_iam_role_policy", "DeadLetters/Role/Function/Policy")
    assert _key_of(synthesized, "aws_iam_role_policy", policy) in function["depends_on"]
    mappings = [m for m in synthesized.resources("aws_lambda_event_source_mapping").values()
                if m["function_name"] == "${" + function_key + ".arn}"]
    assert len(mappings) == len(RUNTIMES)
    for runtime in RUNTIMES:
        intake = synthesized.by_path("aws_sqs_queue", f"Runtime-{runtime}/DeadLetterIntake")
        dlq = synthesized.by_path("aws_sqs_queue", f"Runtime-{runtime}/DeadLetterQueue")
        mapping = synthesized.by_path("aws_lambda_event_source_mapping",
                                      f"Runtime-{runtime}/DeadLetterConsumer")
        assert mapping["event_source_arn"] == (
            "${" + _key_of(synthesized, "aws_sqs_queue", intake) + ".arn}")
        assert mapping["function_name"] == "${" + function_key + ".arn}"
        assert mapping["batch_size"] == 1
        assert mapping["scaling_config"] == {"maximum_concurrency": 2}
        assert "function_response_types" not in mapping  # a failure is a function error
        sources = variables["DEAD_LETTER_QUEUES"]
        assert f'"runtime" = "{runtime}"' in sources
        assert _key_of(synthesized, "aws_sqs_queue", intake) + ".arn" in sources
        assert _key_of(synthesized, "aws_sqs_queue", dlq) + ".url" in sources
    statements = {s["sid"]: s for s in _statements(synthesized,
                                                   "DeadLetters/Role/Function/Document")}
    intakes = sorted("${" + _key_of(synthesized, "aws_sqs_queue", synthesized.by_path(
        "aws_sqs_queue", f"Runtime-{r}/DeadLetterIntake")) + ".arn}" for r in RUNTIMES)
    dlqs = sorted("${" + _key_of(synthesized, "aws_sqs_queue", synthesized.by_path(
        "aws_sqs_queue", f"Runtime-{r}/DeadLetterQueue")) + ".arn}" for r in RUNTIMES)
    assert statements["ConsumeDeadLetterIntake"]["actions"] == [
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    assert sorted(statements["ConsumeDeadLetterIntake"]["resources"]) == intakes
    assert statements["KeepDeadLetters"]["actions"] == ["sqs:SendMessage"]
    assert sorted(statements["KeepDeadLetters"]["resources"]) == dlqs
    assert statements["FailTasks"]["actions"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert statements["FailTasks"]["resources"] == [
        "${aws_dynamodb_table.Ingress_TaskTable_29E820FC.arn}"]
    assert statements["PublishResults"]["resources"] == [
        "${aws_sns_topic.Ingress_ResultTopic_3E2B8443.arn}"]
    for statement in statements.values():
        assert not any("*" in action for action in statement["actions"])
        if statement["resources"] == ["*"]:
            assert statement["sid"] == "Tracing"


def test_each_queue_subscribes_with_a_filter_on_its_runtime(synthesized):
    subs = {k: v for k, v in synthesized.resources("aws_sns_topic_subscription").items()
            if "/Runtime-" in v["//"]["metadata"]["path"]}
    assert len(subs) == len(RUNTIMES)
    for runtime in RUNTIMES:
        sub = synthesized.by_path("aws_sns_topic_subscription", f"Runtime-{runtime}/Subscription")
        assert json.loads(sub["filter_policy"]) == {"runtime": [runtime]}
        assert sub["filter_policy_scope"] == "MessageAttributes"
        assert sub["protocol"] == "sqs"
        assert "InputTopic" in sub["topic_arn"]
        assert f"Runtime-{runtime}_Queue" in sub["endpoint"]


def test_queue_policy_admits_only_the_input_topic_over_tls(synthesized):
    for runtime in RUNTIMES:
        statements = _statements(synthesized, f"Runtime-{runtime}/QueuePolicyDocument")
        allow = [s for s in statements if s["effect"] == "Allow"]
        assert len(allow) == 1
        (stmt,) = allow
        assert stmt["actions"] == ["sqs:SendMessage"]
        assert stmt["principals"] == [{"type": "Service", "identifiers": ["sns.amazonaws.com"]}]
        (cond,) = stmt["condition"]
        assert cond["test"] == "ArnEquals" and cond["variable"] == "aws:SourceArn"
        assert cond["values"] == ["${aws_sns_topic.Ingress_InputTopic_9524D474.arn}"]
        deny = [s for s in statements if s["effect"] == "Deny"]
        assert deny and deny[0]["condition"][0]["variable"] == "aws:SecureTransport"


def test_topics_table_bucket_and_logs_use_the_customer_key(synthesized):
    for topic in synthesized.resources("aws_sns_topic").values():
        assert topic["kms_master_key_id"].startswith("${aws_kms_key.")
    table = synthesized.by_path("aws_dynamodb_table", "TaskTable")
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["server_side_encryption"] == {
        "enabled": True, "kms_key_arn": "${aws_kms_key.Ingress_Key_B302F776.arn}"}
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["ttl"] == {"attribute_name": "expires_at", "enabled": True}
    sse = synthesized.by_path("aws_s3_bucket_server_side_encryption_configuration",
                              "OutputBucketEncryption")
    (rule,) = sse["rule"]
    assert rule["bucket_key_enabled"] is True
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    pab = synthesized.by_path("aws_s3_bucket_public_access_block", "OutputBucketPublicAccess")
    assert all(pab[k] is True for k in ("block_public_acls", "block_public_policy",
                                         "ignore_public_acls", "restrict_public_buckets"))
    for group in synthesized.resources("aws_cloudwatch_log_group").values():
        assert group["kms_key_id"].startswith("${aws_kms_key.")
        assert group["retention_in_days"] >= 1
    key = synthesized.by_path("aws_kms_key", "Ingress/Key")
    assert key["enable_key_rotation"] is True


def test_bucket_policy_denies_plain_http_and_lifecycle_expires(synthesized, example_config):
    (deny,) = _statements(synthesized, "OutputBucketPolicyDocument")
    assert deny["effect"] == "Deny" and deny["actions"] == ["s3:*"]
    assert deny["condition"] == [
        {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert len(deny["resources"]) == 2
    lifecycle = synthesized.by_path("aws_s3_bucket_lifecycle_configuration",
                                    "OutputBucketLifecycle")
    (rule,) = lifecycle["rule"]
    assert rule["expiration"] == [{"days": example_config.outputs.expire_after_days}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]


def test_every_method_requires_an_api_key(synthesized):
    methods = synthesized.resources("aws_api_gateway_method")
    routes = {(m["http_method"], m["//"]["metadata"]["path"].rsplit("/", 1)[-1])
              for m in methods.values()}
    assert routes == {("POST", "MethodPostV1alpha2"), ("POST", "MethodPostV1alpha1"),
                      ("GET", "MethodGetTask"), ("POST", "MethodCancelTask"),
                      ("GET", "MethodGetOpenApi")}
    assert all(m["api_key_required"] is True for m in methods.values())
    paths = {r["path_part"] for r in synthesized.resources("aws_api_gateway_resource").values()}
    assert paths == {"v1alpha2", "v1alpha1", "tasks", "{id}", "cancel", "openapi.json"}


def test_usage_plan_and_stage_throttle_and_log(synthesized, example_config):
    plan = synthesized.by_path("aws_api_gateway_usage_plan", "UsagePlan")
    assert plan["throttle_settings"] == {
        "rate_limit": example_config.api.rate_limit_per_second,
        "burst_limit": example_config.api.burst_limit,
    }
    stage = synthesized.by_path("aws_api_gateway_stage", "Stage")
    assert stage["xray_tracing_enabled"] is True
    access_format = json.loads(stage["access_log_settings"]["format"])
    assert access_format["requestId"] == "$context.requestId"
    assert "apiKey" not in json.dumps(access_format).replace("apiKeyId", "")
    settings = synthesized.by_path("aws_api_gateway_method_settings", "MethodSettings")["settings"]
    assert settings["metrics_enabled"] is True
    assert settings["data_trace_enabled"] is False  # never log request bodies
    assert settings["throttling_rate_limit"] > 0 and settings["throttling_burst_limit"] > 0


def test_lambdas_are_traced_bounded_and_least_privilege(synthesized):
    functions = synthesized.resources("aws_lambda_function")
    assert {f["function_name"] for f in functions.values()} == {
        "sdaas-ingest", "sdaas-status", "sdaas-cancel", "sdaas-dead-letters",
        "sdaas-webhooks"}
    for function in functions.values():
        assert function["runtime"] == "python3.12"
        assert function["tracing_config"] == {"mode": "Active"}
        assert function["reserved_concurrent_executions"] >= 1
        assert function["filename"].startswith("assets/")
        assert function["handler"].startswith("lambda_src.")
    ingest = _statements(synthesized, "Ingest/Role/Function/Document")
    actions = {a for s in ingest for a in s["actions"]}
    assert "sns:Publish" in actions and "dynamodb:PutItem" in actions
    assert not any("*" in a for a in actions)
    status = _statements(synthesized, "Status/Role/Function/Document")
    status_actions = {a for s in status for a in s["actions"]}
    assert "sns:Publish" not in status_actions and "dynamodb:PutItem" not in status_actions
    cancel = _statements(synthesized, "Cancel/Role/Function/Document")
    table_actions = {a for s in cancel for a in s["actions"] if a.startswith("dynamodb:")}
    assert table_actions == {"dynamodb:UpdateItem"}
    assert not {a for s in cancel for a in s["actions"]} & {"sns:Publish", "s3:GetObject",
                                                          "s3:PutObject"}
    for stmt in ingest + status + cancel:
        if stmt["resources"] == ["*"]:
            assert set(stmt["actions"]) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.mark.parametrize("function", ["Ingest", "Status"])  # Status: the OpenAPI document
def test_functions_environment_names_every_runtime(synthesized, example_config, function):
    found = synthesized.by_path("aws_lambda_function", f"{function}/Function")
    runtimes = json.loads(found["environment"]["variables"]["RUNTIMES"])
    assert runtimes == {
        r.name: {"type": r.type, "models": list(r.models), "dynamic_model": r.dynamic_model}
        for r in example_config.runtimes
    }


def test_alarms_cover_dead_letters_age_errors_and_5xx(synthesized):
    alarms = {a["alarm_name"]: a
              for a in synthesized.resources("aws_cloudwatch_metric_alarm").values()}
    for runtime in RUNTIMES:
        dlq = alarms[f"sdaas-{runtime}-dlq-not-empty"]
        assert dlq["metric_name"] == "ApproximateNumberOfMessagesVisible"
        assert dlq["threshold"] == 0
        oldest = alarms[f"sdaas-{runtime}-oldest-task"]
        assert oldest["metric_name"] == "ApproximateAgeOfOldestMessage"
    assert alarms["sdaas-ingest-errors"]["metric_name"] == "Errors"
    consumer = alarms["sdaas-dead-letter-consumer-errors"]
    assert (consumer["namespace"], consumer["metric_name"]) == ("AWS/Lambda", "Errors")
    assert consumer["dimensions"] == {"FunctionName": "${aws_lambda_function."
                                      "Ingress_DeadLetters_Function_71B43632.function_name}"}
    assert (consumer["statistic"], consumer["threshold"]) == ("Sum", 0)
    assert alarms["sdaas-api-5xx"]["metric_name"] == "5XXError"


def test_provider_constraint_and_backend(synthesized):
    terraform = synthesized.doc["terraform"]
    assert terraform["required_providers"]["aws"] == {"source": "hashicorp/aws",
                                                      "version": ">= 5.99, < 7.0"}
    assert terraform["backend"] == {"local": {"path": "terraform.tfstate"}}


def test_props_are_validated_in_the_users_words():
    from constructs_lib.ingress import RuntimeSpec, ServerlessIngressProps

    with pytest.raises(ValueError, match=r"runtime names must be unique \(got a, a\)"):
        ServerlessIngressProps(runtimes=(RuntimeSpec(name="a", type="sdwebui"),
                                         RuntimeSpec(name="a", type="comfyui")))
    with pytest.raises(ValueError, match=r"max_receive_count must be 1..1000 \(got 0\)"):
        ServerlessIngressProps(runtimes=(RuntimeSpec(name="a", type="sdwebui"),),
                               max_receive_count=0)


def test_queue_for_unknown_runtime_names_the_configured_ones(synthesized):
    from constructs_lib._cdktf import App, TerraformStack
    from constructs_lib.ingress import RuntimeSpec, ServerlessIngress, ServerlessIngressProps

    stack = TerraformStack(App(), "probe")
    ingress = ServerlessIngress(stack, "Ingress", props=ServerlessIngressProps(
        runtimes=(RuntimeSpec(name="one", type="sdwebui"),)))
    with pytest.raises(KeyError, match="configured: one"):
        ingress.queue_for("two")


# --- webhooks -------------------------------------------------------------------------------


def test_results_reach_the_webhook_deliverer_through_a_queue_with_a_dead_letter_queue(
        synthesized):
    queue = synthesized.by_path("aws_sqs_queue", "Webhooks/Deliveries/Queue")
    dlq = synthesized.by_path("aws_sqs_queue", "Webhooks/Deliveries/DeadLetterQueue")
    assert queue["name"] == "sdaas-webhooks" and dlq["name"] == "sdaas-webhooks-dlq"
    assert queue["kms_master_key_id"].startswith("${aws_kms_key.")
    assert '"maxReceiveCount"=8' in queue["redrive_policy"].replace(" ", "")
    # AWS's advice for a queue feeding a Lambda: six function timeouts.
    function = synthesized.by_path("aws_lambda_function", "Webhooks/Deliverer/Function")
    assert queue["visibility_timeout_seconds"] == 6 * function["timeout"]
    sub = synthesized.by_path("aws_sns_topic_subscription", "Webhooks/Deliveries/Subscription")
    assert "ResultTopic" in sub["topic_arn"] and sub["raw_message_delivery"] is True
    assert "filter_policy" not in sub
    (allow,) = [s for s in _statements(synthesized, "Webhooks/Deliveries/QueuePolicyDocument")
                if s["effect"] == "Allow"]
    (topic,) = allow["condition"][0]["values"]
    assert topic.startswith("${aws_sns_topic.Ingress_ResultTopic_")
    mapping = synthesized.by_path("aws_lambda_event_source_mapping", "Webhooks/EventSource")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert "Webhooks_Deliveries_Queue" in mapping["event_source_arn"]
    alarms = {a["alarm_name"]: a
              for a in synthesized.resources("aws_cloudwatch_metric_alarm").values()}
    alarm = alarms["sdaas-webhooks-dlq-not-empty"]
    assert alarm["threshold"] == 0
    assert "Webhooks_Deliveries_DeadLetterQueue" in alarm["dimensions"]["QueueName"]


def test_the_signing_secret_is_generated_by_secrets_manager_and_kept(synthesized):
    secret = synthesized.by_path("aws_secretsmanager_secret", "Webhooks/SigningSecret")
    assert secret["name"] == "sdaas-webhook-signing"
    assert secret["kms_key_id"].startswith("${aws_kms_key.")
    version = synthesized.by_path("aws_secretsmanager_secret_version",
                                  "Webhooks/SigningSecretVersion")
    assert "data.aws_secretsmanager_random_password." in version["secret_string"]
    assert version["lifecycle"]["ignore_changes"] == ["secret_string"]
    generated = next(iter(
        synthesized.doc["data"]["aws_secretsmanager_random_password"].values()))
    assert generated["password_length"] >= 32


def test_the_webhook_deliverer_has_least_privilege(synthesized):
    function = synthesized.by_path("aws_lambda_function", "Webhooks/Deliverer/Function")
    assert function["handler"] == "lambda_src.webhooks.handler"
    variables = function["environment"]["variables"]
    assert "WEBHOOK_ALLOW_LOOPBACK" not in variables  # local mode only
    assert variables["WEBHOOK_SECRET_ARN"].startswith("${aws_secretsmanager_secret.")
    statements = {s["sid"]: s for s in
                  _statements(synthesized, "Webhooks/Deliverer/Role/Function/Document")}
    assert set(statements) == {"ReadTasks", "ReadSigningSecret", "ConsumeDeliveries", "UseKey",
                               "WriteLogs", "Tracing"}
    assert statements["ReadTasks"]["actions"] == ["dynamodb:GetItem"]
    assert statements["ReadSigningSecret"]["actions"] == ["secretsmanager:GetSecretValue"]
    (secret,) = statements["ReadSigningSecret"]["resources"]
    assert secret.startswith("${aws_secretsmanager_secret.Ingress_Webhooks_SigningSecret_")
    assert sorted(statements["ConsumeDeliveries"]["actions"]) == [
        "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage"]
    assert all("Webhooks_Deliveries_Queue" in r
               for r in statements["ConsumeDeliveries"]["resources"])
    assert statements["UseKey"]["actions"] == ["kms:Decrypt"]
    # The other functions cannot read the secret.
    for other in ("Ingest", "Status"):
        actions = {a for s in _statements(synthesized, f"{other}/Role/Function/Document")
                   for a in s["actions"]}
        assert not any(a.startswith("secretsmanager:") for a in actions)
