"""The handlers over real HTTP against moto's server (``AWS_ENDPOINT_URL``), as in local
mode: requests, routing through filtered queues, the claim check, path-style presigned URLs
that download the image, and an unreachable endpoint answered with a 503."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest

from .support import BUCKET, emulator_account, fixture

pytestmark = pytest.mark.emulator


def test_submit_route_and_read_status_over_http(emulator: Any) -> None:
    with emulator_account(emulator.endpoint, SNS_MAX_BYTES="1024") as account:
        small = fixture("v1alpha2/t2i.json")
        large = fixture("v1alpha2/pipeline.json")
        assert account.post(small).status == 202
        assert account.post(large).status == 202  # over 1024 bytes: claim-checked
        queues = account.all_messages()
        assert {
            name: [m.body["metadata"]["id"] for m in found] for name, found in queues.items()
        } == {
            "sdruntime": ["test-t2i"],
            "sd1-5-comfyui": ["test-pipeline"],
        }
        ref = queues["sd1-5-comfyui"][0].body["content_ref"]
        key = ref.removeprefix(f"s3://{BUCKET}/")
        stored = account.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert json.loads(stored)["content"] == large["task"]["content"]

        image_key = "output/test-t2i/image-0.png"
        account.s3.put_object(Bucket=BUCKET, Key=image_key, Body=b"\x89PNG fake image")
        account.ddb.update_item(
            TableName="sdaas-tasks",
            Key={"id": {"S": "test-t2i"}},
            UpdateExpression="SET #s = :s, images = :i",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": "completed"},
                ":i": {"L": [{"S": f"s3://{BUCKET}/{image_key}"}]},
            },
        )
        body = account.get("test-t2i").body
        assert body["status"] == "completed"
        (url,) = body["image_urls"]
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == emulator.endpoint  # path-style
        assert parts.path == f"/{BUCKET}/{image_key}"
        with urllib.request.urlopen(url, timeout=10) as fetched:
            assert fetched.read() == b"\x89PNG fake image"


def test_unreachable_dependencies_are_503(emulator: Any, monkeypatch: Any) -> None:
    with emulator_account(emulator.endpoint) as account:
        from lambda_src import aws

        # Nothing listens on the discard port of loopback: connections are refused.
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        aws.reset_clients()
        response = account.post(fixture("v1alpha2/t2i.json"))
        assert (response.status, response.error_code) == (503, "task_table_failed")
        assert response.headers["Retry-After"] == "1"
        status = account.get("test-t2i")
        assert (status.status, status.error_code) == (503, "task_table_failed")

        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
        aws.reset_clients()
        assert account.post(fixture("v1alpha2/t2i.json")).status == 202
        assert account.get("test-t2i").body["status"] == "queued"
