"""ServerlessIngress applied with Terraform to moto's server, exercised, re-planned, destroyed.

The stack is the real construct; only the AWS provider's endpoints point at the emulator.
Known moto bugs that would show as drift are fixed in ``sdaas.local.emulator``
(each fix documented there); the no-drift check itself is never relaxed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from sdaas.local.emulator import Emulator
from tests.support.terraform import Terraform, plugin_dir

pytestmark = [pytest.mark.terraform, pytest.mark.emulator, pytest.mark.slow]

REGION = "us-west-2"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, example_config) -> Iterator[tuple[Emulator, Terraform, dict]]:
    plugin_dir()  # skip early, before starting anything, when there is no provider mirror
    from sdaas.app import INGRESS_ONLY, Emulation, build_app

    emu = Emulator().start()
    built = build_app(example_config, tmp_path_factory.mktemp("ingress-emulated"),
                      parts=INGRESS_ONLY, emulation=Emulation(endpoint=emu.endpoint))
    tf = Terraform(built.synth())
    try:
        tf.init(backend=True)
        tf.run("apply", "-auto-approve", "-input=false")
        yield emu, tf, tf.outputs()
    finally:
        try:
            tf.run("destroy", "-auto-approve", "-input=false", check=False)
        finally:
            emu.stop()


def _client(emu: Emulator, service: str):
    return boto3.client(service, endpoint_url=emu.endpoint, region_name=REGION)


def _drain(sqs, url: str) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _invoke_ingest(emu: Emulator, monkeypatch, body: dict, path: str = "/v1alpha2") -> dict:
    """Call the real handler with the environment Terraform gave the deployed function."""
    from lambda_src import aws as lambda_aws
    from lambda_src import ingest

    function = _client(emu, "lambda").get_function_configuration(FunctionName="sdaas-ingest")
    for name, value in function["Environment"]["Variables"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emu.endpoint)
    lambda_aws.reset_clients()
    event = {
        "httpMethod": "POST", "resource": path, "path": path, "headers": {},
        "body": json.dumps(body), "isBase64Encoded": False,
        "requestContext": {"stage": "prod", "domainName": "api.example.test",
                           "requestId": "test"},
    }
    response = ingest.handler(event, None)
    lambda_aws.reset_clients()
    return response


def test_outputs_name_the_emulated_resources(deployed):
    emu, _, outputs = deployed
    assert set(outputs["queue_urls"]) == {"sdruntime", "comfyui"}
    assert outputs["task_table"] == "sdaas-tasks"
    tables = _client(emu, "dynamodb").list_tables()["TableNames"]
    assert "sdaas-tasks" in tables
    attrs = _client(emu, "sqs").get_queue_attributes(
        QueueUrl=outputs["queue_urls"]["sdruntime"], AttributeNames=["All"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 3
    assert "sns.amazonaws.com" in attrs["Policy"]


@pytest.mark.parametrize(("runtime", "tasktype", "content"), [
    ("sdruntime", "text-to-image", {"prompt": "A dog", "steps": 16, "width": 512, "height": 512}),
    ("comfyui", "pipeline", {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}),
])
def test_ingest_routes_to_that_runtimes_queue_only(deployed, monkeypatch, runtime, tasktype,
                                                   content):
    emu, _, outputs = deployed
    sqs = _client(emu, "sqs")
    for url in outputs["queue_urls"].values():
        _drain(sqs, url)
    task_id = f"route-{runtime}"
    body = {"task": {"metadata": {"id": task_id, "runtime": runtime, "tasktype": tasktype,
                                  "prefix": "output", "context": {"k": 1}},
                     "content": content}}
    response = _invoke_ingest(emu, monkeypatch, body)
    assert response["statusCode"] == 202, response["body"]
    accepted = json.loads(response["body"])
    assert accepted["output_location"] == f"s3://{outputs['output_bucket']}/output/{task_id}"
    delivered = _drain(sqs, outputs["queue_urls"][runtime])
    assert len(delivered) == 1
    envelope = json.loads(delivered[0]["Body"])
    assert envelope["MessageAttributes"]["runtime"]["Value"] == runtime
    assert json.loads(envelope["Message"])["metadata"]["id"] == task_id
    for other, url in outputs["queue_urls"].items():
        if other != runtime:
            assert _drain(sqs, url) == [], f"{runtime}'s task leaked into {other}'s queue"


def test_unknown_runtime_is_rejected_and_nothing_is_queued(deployed, monkeypatch):
    emu, _, outputs = deployed
    sqs = _client(emu, "sqs")
    body = {"task": {"metadata": {"id": "nobody", "runtime": "invokeai",
                                  "tasktype": "text-to-image"}, "content": {"prompt": "x"}}}
    response = _invoke_ingest(emu, monkeypatch, body)
    assert response["statusCode"] == 400
    assert "invokeai" in response["body"]
    for url in outputs["queue_urls"].values():
        assert _drain(sqs, url) == []


def test_each_dead_letter_intake_is_mapped_to_the_consumer(deployed):
    """The consumer's mappings and environment, as Terraform created them: every runtime's
    intake feeds the dead-letters function, which keeps messages in that runtime's
    dead-letter queue (the queues the outputs name)."""
    from lambda_src.config import dead_letter_config

    emu, _, outputs = deployed
    lam, sqs = _client(emu, "lambda"), _client(emu, "sqs")
    function = lam.get_function_configuration(FunctionName="sdaas-dead-letters")
    assert function["Handler"] == "lambda_src.dead_letters.handler"
    cfg = dead_letter_config(function["Environment"]["Variables"])
    assert cfg.table == outputs["task_table"]
    assert cfg.topic_arn == outputs["result_topic_arn"]
    # By ARN: moto matches the name the mapping was created with (the function's ARN).
    mappings = lam.list_event_source_mappings(FunctionName=function["FunctionArn"])[
        "EventSourceMappings"]
    assert {m["EventSourceArn"] for m in mappings} == set(cfg.sources)
    assert {m["BatchSize"] for m in mappings} == {1}
    for source in cfg.sources.values():
        assert source.queue_url == outputs["dead_letter_queue_urls"][source.runtime]
        task_queue = sqs.get_queue_attributes(QueueUrl=outputs["queue_urls"][source.runtime],
                                              AttributeNames=["RedrivePolicy"])["Attributes"]
        assert json.loads(task_queue["RedrivePolicy"])["deadLetterTargetArn"] == (
            source.source_arn)


def test_second_plan_shows_no_changes(deployed):
    _, tf, _ = deployed
    proc = tf.run("plan", "-detailed-exitcode", "-input=false", check=False)
    assert proc.returncode == 0, f"plan shows drift after apply:\n{proc.stdout[-8000:]}"


def test_destroy_leaves_nothing_behind(deployed):
    emu, tf, outputs = deployed
    tf.run("destroy", "-auto-approve", "-input=false")
    assert tf.run("state", "list", check=False).stdout.strip() == ""
    queues = _client(emu, "sqs").list_queues().get("QueueUrls", [])
    assert not [q for q in queues if "/sdaas-" in q]
    assert "sdaas-tasks" not in _client(emu, "dynamodb").list_tables()["TableNames"]
    topics = _client(emu, "sns").list_topics()["Topics"]
    assert not [t for t in topics if ":sdaas-" in t["TopicArn"]]
    buckets = [b["Name"] for b in _client(emu, "s3").list_buckets()["Buckets"]]
    assert outputs["output_bucket"] not in buckets
