"""The emulator's bucket-policy fix: the TLS-only guard no longer denies everything, and
every other statement is still enforced as moto does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from sdaas.local.emulator import Emulator

pytestmark = [pytest.mark.emulator]


def _bucket(emulator: Emulator, statements: Callable[[str], list[dict]]) -> tuple[Any, str]:
    s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-west-2")
    name = f"fix-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": statements(name)}))
    return s3, name


def _tls_only(name: str, operator: str = "Bool", value: object = "false") -> dict:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
            "Condition": {operator: {"aws:SecureTransport": value}}}


@pytest.mark.parametrize(("operator", "value"), [("Bool", "false"), ("Bool", ["false"]),
                                                 ("BoolIfExists", "false")])
def test_the_tls_only_guard_lets_requests_through(emulator: Emulator, operator: str,
                                                  value: object) -> None:
    s3, name = _bucket(emulator, lambda n: [_tls_only(n, operator, value)])
    s3.put_object(Bucket=name, Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket=name, Key="a/b.txt")["Body"].read() == b"hello"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "a/b.txt"})
    assert requests.get(url, timeout=10).content == b"hello"


def test_other_deny_statements_still_apply(emulator: Emulator) -> None:
    s3, name = _bucket(emulator, lambda n: [
        _tls_only(n),
        {"Sid": "NoWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{n}/*"}])
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=name, Key="x", Body=b"x")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_secure_transport_true_condition_is_not_dropped(emulator: Emulator) -> None:
    """Only statements that apply to insecure transport alone are left out."""
    s3, name = _bucket(emulator, lambda n: [{
        "Sid": "DenyOverTls", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{n}/*",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}}}])
    with pytest.raises(ClientError):
        s3.put_object(Bucket=name, Key="x", Body=b"x")
