"""A runtime role cannot write under ``_requests/``: tried against an emulator enforcing IAM.

The policies are the ones the example stack synthesizes for a runtime's Pod Identity role
(every ``aws_iam_role_policy`` on it, rendered from its ``aws_iam_policy_document``). They
are put on a role in moto's server started in its own process, the role is assumed, IAM
enforcement is switched on (moto's ``/moto-api/reset-auth``, the runtime form of
``INITIAL_NO_AUTH_ACTION_COUNT``), and the assumed role's credentials write to the output
bucket. Without the explicit Deny, the role's ``WriteOutputs`` grant (the whole bucket)
would let it overwrite another task's claim-checked request.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from task_contract import CLAIM_CHECK_PREFIX

pytestmark = pytest.mark.emulator

REGION = "us-west-2"
RUNTIME_ROLE = "Runtime-sdruntime_Role"
OUTPUT_BUCKET = "Ingress_OutputBucket"  # the synthesized bucket's resource name prefix
_TOKEN = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.arn\}")
_START_SECONDS = 30.0


def _bucket_name(resource_name: str) -> str:
    return resource_name.lower().replace("_", "-")[:63]


def _arn(match: re.Match[str]) -> str:
    """A concrete ARN for a ``${<type>.<name>.arn}`` token: buckets get their own name."""
    rtype, name = match.groups()
    if rtype == "aws_s3_bucket":
        return f"arn:aws:s3:::{_bucket_name(name)}"
    return f"arn:aws:sqs:{REGION}:123456789012:{name}"  # not under test: any valid ARN


def iam_json(document: dict[str, Any]) -> str:
    """An ``aws_iam_policy_document`` data source's statements as an IAM policy."""
    statements = []
    for st in document["statement"]:
        out: dict[str, Any] = {"Sid": st["sid"], "Effect": st["effect"], "Action": st["actions"],
                               "Resource": [_TOKEN.sub(_arn, r) for r in st["resources"]]}
        for condition in st.get("condition", []):
            out.setdefault("Condition", {}).setdefault(condition["test"], {})[
                condition["variable"]] = condition["values"]
        statements.append(out)
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def runtime_role_policies(synthesized: Any) -> dict[str, str]:
    """Name -> IAM JSON of every inline policy the stack puts on the runtime's role."""
    documents = synthesized.data("aws_iam_policy_document")
    policies = {}
    for policy in synthesized.resources("aws_iam_role_policy").values():
        if not policy["role"].startswith(f"${{aws_iam_role.{RUNTIME_ROLE}"):
            continue
        document_name = policy["policy"].split(".")[2]
        policies[policy["name"]] = iam_json(documents[document_name])
    return policies


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def enforcing_emulator() -> Iterator[str]:
    """moto's server in its own process (IAM enforcement is process-wide in moto)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _enforce_iam(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0",
                                     method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


@pytest.fixture(scope="module")
def runtime_s3(synthesized: Any, enforcing_emulator: str) -> tuple[Any, str]:
    """An S3 client acting as the runtime's role, and the output bucket's name."""
    policies = runtime_role_policies(synthesized)
    assert "WriteOutputs" in policies and "ReadClaimChecks" in policies
    bucket = _bucket_name(next(name for name in synthesized.resources("aws_s3_bucket")
                               if name.startswith(OUTPUT_BUCKET)))
    admin = {"endpoint_url": enforcing_emulator, "region_name": REGION}
    s3 = boto3.client("s3", **admin)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key=f"{CLAIM_CHECK_PREFIX}other-task/abc.json", Body=b"{}")
    iam = boto3.client("iam", **admin)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}
    role = iam.create_role(RoleName="runtime", AssumeRolePolicyDocument=json.dumps(trust))
    for name, document in policies.items():
        iam.put_role_policy(RoleName="runtime", PolicyName=name, PolicyDocument=document)
    credentials = boto3.client("sts", **admin).assume_role(
        RoleArn=role["Role"]["Arn"], RoleSessionName="agent")["Credentials"]
    _enforce_iam(enforcing_emulator)
    client = boto3.client(
        "s3", **admin, aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    return client, bucket


def _error_code(call: Any, **kwargs: Any) -> str | None:
    try:
        call(**kwargs)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def test_the_runtime_role_writes_outputs(runtime_s3: tuple[Any, str]) -> None:
    s3, bucket = runtime_s3
    assert _error_code(s3.put_object, Bucket=bucket, Key="output/t-1/image-0.png",
                       Body=b"png") is None
    assert s3.get_object(Bucket=bucket, Key="output/t-1/image-0.png")["Body"].read() == b"png"


def test_the_runtime_role_reads_but_never_writes_claim_checks(runtime_s3: tuple[Any, str]
                                                              ) -> None:
    s3, bucket = runtime_s3
    key = f"{CLAIM_CHECK_PREFIX}other-task/abc.json"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"{}"
    assert _error_code(s3.put_object, Bucket=bucket, Key=key, Body=b"overwritten") == (
        "AccessDenied")
    assert _error_code(s3.put_object, Bucket=bucket, Key=f"{CLAIM_CHECK_PREFIX}new/x.json",
                       Body=b"{}") == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"{}"


def test_the_deny_is_explicit_in_the_synthesized_policy(synthesized: Any) -> None:
    policy = json.loads(runtime_role_policies(synthesized)["WriteOutputs"])
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert "s3:PutObject" in deny["Action"]
    assert [r.rsplit("/", 2)[1:] for r in deny["Resource"]] == [["_requests", "*"]]
