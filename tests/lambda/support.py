"""Test support for the Lambda handlers: an emulated account (moto, in process), API Gateway
REST proxy events, fault injection, and readers for queues, table and bucket.

The account holds what ServerlessIngress deploys for the handlers: the task table, the
output bucket, the input topic and one SQS queue per runtime subscribed with a filter
policy on the ``runtime`` message attribute, so routing is observed, not assumed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambda_src import aws, ingest, status, tasks

FIXTURES = Path(__file__).parent / "fixtures"

TABLE = "sdaas-tasks"
BUCKET = "sdaas-lambda-tests-output"  # bucket names are global in moto: keep it distinctive
TOPIC = "sdaas-input"
DOMAIN = "abc123.execute-api.us-west-2.amazonaws.com"
STAGE = "prod"
API_KEY = "k3y-Sup3rS3cret-9f8e7d6c5b4a"

RUNTIMES: dict[str, dict[str, Any]] = {
    "sdruntime": {
        "type": "sdwebui",
        "models": ["v1-5-pruned-emaonly.safetensors"],
        "dynamic_model": False,
    },
    "sd21": {"type": "sdwebui", "models": ["v2-1_768-ema-pruned.safetensors"]},
    "sdwebui": {"type": "sdwebui", "models": [], "dynamic_model": True},
    "sd1-5-comfyui": {"type": "comfyui"},
}


def fixture(name: str) -> dict[str, Any]:
    """A reference example body from ``fixtures/`` (e.g. ``v1alpha2/t2i.json``)."""
    return json.loads((FIXTURES / name).read_text())


def t2i(task_id: str = "task-1", **metadata: Any) -> dict[str, Any]:
    """A valid v1alpha2 text-to-image body; ``metadata`` overrides/extends its metadata."""
    meta = {"id": task_id, "runtime": "sdruntime", "tasktype": "text-to-image", "prefix": "output"}
    meta.update(metadata)
    return {"task": {"metadata": meta, "content": {"prompt": "A dog", "steps": 16}}}


def event(
    method: str = "POST",
    resource: str = "/v1alpha2",
    body: Any = None,
    *,
    raw_body: str | None = None,
    base64_body: bool = False,
    path: str | None = None,
    path_parameters: dict[str, str] | None = None,
    request_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy (v1) event, as the execute-api endpoint delivers it."""
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    if base64_body and raw_body is not None:
        raw_body = base64.b64encode(raw_body.encode()).decode()
    path = path or resource
    context = {
        "stage": STAGE,
        "domainName": DOMAIN,
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "path": f"/{STAGE}{path}",
        "identity": {"apiKey": API_KEY, "sourceIp": "203.0.113.7"},
    }
    if request_context is not None:
        context = request_context
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {
            "Content-Type": "application/json",
            "x-api-key": API_KEY,
            "Host": DOMAIN,
        },
        "multiValueHeaders": {"x-api-key": [API_KEY]},
        "queryStringParameters": None,
        "pathParameters": path_parameters,
        "body": raw_body,
        "isBase64Encoded": base64_body,
        "requestContext": context,
    }


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any

    @classmethod
    def of(cls, result: dict[str, Any]) -> Response:
        return cls(result["statusCode"], result["headers"], json.loads(result["body"]))

    @property
    def error_code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None

    @property
    def detail_paths(self) -> list[str]:
        return [d["path"] for d in self.body["error"]["details"]]


class LambdaContext:
    aws_request_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    function_name = "sdaas-ingest"


@dataclass
class Message:
    """One task message as a runtime's queue received it (SNS envelope unwrapped)."""

    body: dict[str, Any]
    attributes: dict[str, str]


@dataclass
class Faults:
    """Makes an AWS operation of the handlers' clients fail, as a dependency outage would.

    The failure is raised from botocore's ``before-call`` hook of the handlers' own client,
    so the handler sees exactly what boto3 raises for a real outage.
    """

    _hooks: list[tuple[Any, str, Any]] = field(default_factory=list)

    def fail(
        self,
        service: str,
        operation: str,
        *,
        code: str = "ServiceUnavailable",
        http_status: int = 503,
        exception: Exception | None = None,
        times: int | None = None,
    ) -> None:
        """Fail ``operation`` (``times`` times, or until :meth:`clear`)."""
        remaining = [times]

        def hook(**_: Any) -> None:
            if remaining[0] is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            if exception is not None:
                raise exception
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": f"injected {code}"},
                    "ResponseMetadata": {"HTTPStatusCode": http_status},
                },
                operation,
            )

        client = aws.client(service)
        name = f"before-call.{service}.{operation}"
        client.meta.events.register(name, hook)
        self._hooks.append((client, name, hook))

    def clear(self) -> None:
        for client, name, hook in self._hooks:
            client.meta.events.unregister(name, hook)
        self._hooks.clear()


class Account:
    """The emulated AWS account plus shortcuts to call the handlers against it."""

    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb")
        self.s3 = boto3.client("s3")
        self.sns = boto3.client("sns")
        self.sqs = boto3.client("sqs")
        self.ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        self.topic_arn = self.sns.create_topic(Name=TOPIC)["TopicArn"]
        self.queues: dict[str, str] = {}
        for name in RUNTIMES:
            url = self.sqs.create_queue(QueueName=f"sdaas-{name}")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            self.sns.subscribe(
                TopicArn=self.topic_arn,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"FilterPolicy": json.dumps({"runtime": [name]})},
            )
            self.queues[name] = url
        self.faults = Faults()
        self.context = LambdaContext()

    def environment(self) -> dict[str, str]:
        return {
            "TASK_TABLE": TABLE,
            "OUTPUT_BUCKET": BUCKET,
            "INPUT_TOPIC_ARN": self.topic_arn,
            "RUNTIMES": json.dumps(RUNTIMES),
            "TASK_TTL_DAYS": "30",
            "SNS_MAX_BYTES": "262144",
            "MAX_BODY_BYTES": "10485760",
            "PRESIGN_EXPIRES_SECONDS": "3600",
            "LOG_LEVEL": "INFO",
        }

    # --- calling the handlers ------------------------------------------------------------

    def ingest(self, evt: dict[str, Any]) -> Response:
        return Response.of(ingest.handler(evt, self.context))

    def post(self, body: Any, resource: str = "/v1alpha2", **kwargs: Any) -> Response:
        return self.ingest(event("POST", resource, body, **kwargs))

    def status(self, evt: dict[str, Any]) -> Response:
        return Response.of(status.handler(evt, self.context))

    def get(self, task_id: str) -> Response:
        return self.status(
            event(
                "GET",
                "/v1alpha2/tasks/{id}",
                path=f"/v1alpha2/tasks/{task_id}",
                path_parameters={"id": task_id},
            )
        )

    # --- reading what happened -----------------------------------------------------------

    def messages(self, runtime: str) -> list[Message]:
        """Drain ``runtime``'s queue."""
        found: list[Message] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queues[runtime],
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=0,
            ).get("Messages", [])
            if not batch:
                return found
            for raw in batch:
                envelope = json.loads(raw["Body"])
                attributes = {
                    name: spec["Value"]
                    for name, spec in envelope.get("MessageAttributes", {}).items()
                }
                found.append(Message(json.loads(envelope["Message"]), attributes))
                self.sqs.delete_message(
                    QueueUrl=self.queues[runtime], ReceiptHandle=raw["ReceiptHandle"]
                )

    def all_messages(self) -> dict[str, list[Message]]:
        """Drain every queue: runtime -> messages (runtimes without messages left out)."""
        drained = {name: self.messages(name) for name in self.queues}
        return {name: found for name, found in drained.items() if found}

    def record(self, task_id: str) -> dict[str, Any] | None:
        item = self.ddb.get_item(TableName=TABLE, Key={"id": {"S": task_id}}, ConsistentRead=True)
        return tasks.from_item(item["Item"]) if "Item" in item else None

    def put_record(self, **record: Any) -> None:
        """Write a record as the agent would (numbers as DynamoDB numbers)."""
        as_decimals = json.loads(json.dumps(record), parse_float=Decimal)
        self.ddb.put_item(TableName=TABLE, Item=tasks._to_item(as_decimals))

    def item_count(self) -> int:
        return self.ddb.scan(TableName=TABLE, Select="COUNT")["Count"]

    def remove_bucket(self) -> None:
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=BUCKET):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                self.s3.delete_object(
                    Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"]
                )
        self.s3.delete_bucket(Bucket=BUCKET)

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return {
            obj["Key"]: self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            for obj in listing
        }


@functools.cache
def _session() -> boto3.Session:
    """One boto3 session for the test process: it caches the parsed service models."""
    return boto3.Session()


_account_ids = itertools.count(910_000_000_000)


@contextlib.contextmanager
def emulated_account(**overrides: str) -> Iterator[Account]:
    """moto in process, the resources, the handlers' environment; all undone on exit.

    moto's backends are process-wide and shared with the emulator (moto's server in a
    thread) that other test tiers may keep running for the whole session. So moto's reset
    is not used, which would wipe their state: every account here gets its own account id,
    and the (globally named) bucket is removed on exit.
    """
    mock = mock_aws()
    with pytest.MonkeyPatch.context() as patch:
        mock.start(reset=False)
        try:
            for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SNS"):
                patch.delenv(name, raising=False)
            patch.setenv("MOTO_ACCOUNT_ID", str(next(_account_ids)))
            # mock_aws drops boto3's default session; reusing one keeps client creation
            # cheap (the handlers still create their clients through boto3.client).
            patch.setattr(boto3, "DEFAULT_SESSION", _session())
            aws.reset_clients()
            account = Account()
            for name, value in {**account.environment(), **overrides}.items():
                patch.setenv(name, value)
            try:
                yield account
            finally:
                account.faults.clear()
                account.remove_bucket()
                aws.reset_clients()
        finally:
            mock.stop(remove_data=False)


@contextlib.contextmanager
def emulator_account(endpoint: str, **overrides: str) -> Iterator[Account]:
    """Like :func:`emulated_account`, but over real HTTP to moto's server at ``endpoint``:
    the handlers reach it through ``AWS_ENDPOINT_URL``, as in local mode."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("MOTO_ACCOUNT_ID", str(next(_account_ids)))
        patch.setattr(boto3, "DEFAULT_SESSION", boto3.Session())
        aws.reset_clients()
        account = Account()
        for name, value in {**account.environment(), **overrides}.items():
            patch.setenv(name, value)
        try:
            yield account
        finally:
            account.faults.clear()
            account.remove_bucket()
            aws.reset_clients()
