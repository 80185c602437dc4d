"""One local stack for this package, brought up by the code ``make local`` runs.

``LocalStack`` (sdaas.local.stack) with the example configuration: moto's server,
the real ServerlessIngress applied with Terraform, the API adapter over the real handlers,
a PREVIEW runtime and the real queue agent per runtime. The preview draws an image in
``SECONDS_PER_IMAGE``, so the tests measure the plumbing, not a model.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from sdaas.config import EXAMPLE_CONFIG
from sdaas.local.progress import RecordingProgress
from sdaas.local.settings import LocalSettings
from sdaas.local.stack import LocalStack
from sdaas.local.workdir import port_open
from task_contract.record import FINAL_STATUSES
from tests.e2e.support import Tap, pid_alive, wait_for
from tests.support.terraform import plugin_dir

SECONDS_PER_IMAGE = 0.05
# Cases Schemathesis sent (test_schemathesis.py): (phase, operation id, status) -> count.
SCHEMATHESIS_CASES: Counter[tuple[str, str, int]] = Counter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SCHEMATHESIS_CASES:
        return
    by_phase = Counter()
    for (phase, _, _), count in SCHEMATHESIS_CASES.items():
        by_phase[phase] += count
    statuses, operations = Counter(), Counter()
    for (_, operation, status), count in SCHEMATHESIS_CASES.items():
        statuses[status] += count
        operations[operation] += count
    terminalreporter.write_line(
        f"schemathesis: {sum(by_phase.values())} generated cases sent to the local stack "
        f"({', '.join(f'{phase} {n}' for phase, n in sorted(by_phase.items()))}; by status: "
        f"{', '.join(f'{status} {n}' for status, n in sorted(statuses.items()))}; by "
        f"operation: {', '.join(f'{op} {n}' for op, n in sorted(operations.items()))})")


@dataclass
class Deployed:
    """The running local stack and clients for checking what it did."""

    stack: LocalStack
    endpoint: str
    api_key: str
    outputs: dict[str, Any]
    s3: Any
    sqs: Any
    ddb: Any
    results: Tap  # the result topic
    published: Tap  # the input topic: every task ingest published

    def post(self, path: str, body: Any, key: str | None = None, **kwargs: Any
             ) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else None
        return requests.post(f"{self.endpoint}{path}", data=data,
                             json=None if data is not None else body,
                             headers={"x-api-key": self.api_key if key is None else key},
                             timeout=30, **kwargs)

    def get(self, path: str, key: str | None = None) -> requests.Response:
        return requests.get(f"{self.endpoint}{path}",
                            headers={"x-api-key": self.api_key if key is None else key},
                            timeout=30)

    def status(self, task_id: str) -> dict[str, Any]:
        response = self.get(f"/v1alpha2/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_final(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            record = self.status(task_id)
            return record if record["status"] in FINAL_STATUSES else None

        return wait_for(final, timeout, f"task {task_id} to end", interval=0.1)

    def objects(self, prefix: str) -> dict[str, bytes]:
        bucket = self.outputs["output_bucket"]
        listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                for o in listing}

    def content_type(self, key: str) -> str:
        return str(self.s3.head_object(Bucket=self.outputs["output_bucket"],
                                       Key=key)["ContentType"])

    def record(self, task_id: str) -> dict[str, Any] | None:
        item = self.ddb.get_item(TableName=self.outputs["task_table"],
                                 Key={"id": {"S": task_id}}, ConsistentRead=True).get("Item")
        return item


@pytest.fixture(scope="package")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    providers = plugin_dir()  # skip (or fail in CI) before starting anything
    workdir = tmp_path_factory.mktemp("local-stack")
    progress = RecordingProgress(echo=lambda line: print(line, file=sys.stderr))
    stack = LocalStack(LocalSettings(workdir=workdir, config_file=EXAMPLE_CONFIG,
                                     seconds_per_image=SECONDS_PER_IMAGE,
                                     tf_plugin_dir=providers), progress)
    try:
        connection = stack.start()
        clients = {name: boto3.client(name, endpoint_url=connection.aws_endpoint_url,
                                      region_name=connection.region)
                   for name in ("s3", "sqs", "sns", "dynamodb")}
        results = Tap(clients["sqs"], clients["sns"], stack.outputs["result_topic_arn"],
                      "e2e-results")
        published = Tap(clients["sqs"], clients["sns"], stack.outputs["input_topic_arn"],
                        "e2e-published")
        yield Deployed(stack=stack, endpoint=connection.endpoint, api_key=connection.api_key,
                       outputs=stack.outputs, s3=clients["s3"], sqs=clients["sqs"],
                       ddb=clients["dynamodb"], results=results, published=published)
    finally:
        children = {name: (c.pid, c.info.get("port")) for name, c in stack.children.items()}
        stack.stop()
    # Stopping leaves no process, port or connection file behind.
    left = [f"{name} pid {pid}" for name, (pid, _) in children.items()
            if pid is not None and pid_alive(pid)]
    left += [f"{name} port {port}" for name, (_, port) in children.items()
             if port and port_open(port)]
    assert not left, f"the local stack left these behind: {left}"
    assert not (Path(workdir) / "connection.json").exists()
    assert not (Path(workdir) / "state.json").exists()
