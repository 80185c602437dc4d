"""The ingest handler against an emulated account (moto in process).

Routing is observed through one SQS queue per runtime, each subscribed to the input topic
with a filter policy on the ``runtime`` attribute, as ServerlessIngress deploys them.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

from lambda_src import aws, messages

from .support import API_KEY, BUCKET, DOMAIN, Account, emulated_account, event, t2i

STATUS_URL = f"https://{DOMAIN}/prod/v1alpha2/tasks/"


def accepted_body(task_id: str, runtime: str = "sdruntime", prefix: str = "output") -> dict:
    return {
        "id": task_id,
        "runtime": runtime,
        "output_location": f"s3://{BUCKET}/{prefix}/{task_id}",
        "status_url": STATUS_URL + task_id,
    }


def sha_of(body: dict[str, Any]) -> str:
    return messages.request_sha256(body["task"])


def assert_nothing_happened(account: Account) -> None:
    assert account.all_messages() == {}
    assert account.item_count() == 0
    assert account.objects() == {}


# --- acceptance ---------------------------------------------------------------------------


def test_accepts_records_and_routes_a_task(account: Account) -> None:
    body = t2i("t-1", context={"user": "u-9", "n": [1, 2]})
    before = time.time()
    response = account.post(body)

    assert response.status == 202
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == accepted_body("t-1")

    # Exactly one message, only in the runtime's own queue, the task itself.
    queues = account.all_messages()
    assert list(queues) == ["sdruntime"]
    (message,) = queues["sdruntime"]
    assert message.attributes == {"runtime": "sdruntime"}
    assert message.body == body["task"]

    record = account.record("t-1")
    assert record is not None
    created = datetime.fromisoformat(record.pop("created_at").replace("Z", "+00:00"))
    assert before - 1 <= created.timestamp() <= time.time() + 1
    assert record.pop("updated_at").endswith("Z")
    expires_at = record.pop("expires_at")
    assert abs(expires_at - (created.timestamp() + 30 * 86_400)) < 2
    assert record == {
        "id": "t-1",
        "runtime": "sdruntime",
        "tasktype": "text-to-image",
        "status": "queued",
        "attempts": 0,
        "output_location": f"s3://{BUCKET}/output/t-1",
        "prefix": "output",
        "context": '{"user":"u-9","n":[1,2]}',
        "request_sha256": sha_of(body),
        "source": "v1alpha2",
        "published": True,
    }
    assert account.objects() == {}  # small tasks are not claim-checked


@pytest.mark.parametrize(
    ("runtime", "tasktype", "content"),
    [
        ("sd21", "image-to-image", {"init_images": ["s3://in/x.png"], "prompt": "p"}),
        ("sdwebui", "extra-batch-images", {"imageList": [{"data": "s3://in/x.png"}]}),
        ("sd1-5-comfyui", "pipeline", {"9": {"class_type": "SaveImage", "inputs": {}}}),
    ],
)
def test_each_runtime_receives_only_its_own_tasks(
    account: Account, runtime: str, tasktype: str, content: dict
) -> None:
    body = t2i("r-1", runtime=runtime, tasktype=tasktype)
    body["task"]["content"] = content
    assert account.post(body).status == 202
    queues = account.all_messages()
    assert list(queues) == [runtime]
    assert queues[runtime][0].body["content"] == content


def test_prefix_is_normalised_before_publishing(account: Account) -> None:
    response = account.post(t2i("p-1", prefix="team-a/run_1/"))
    assert response.body["output_location"] == f"s3://{BUCKET}/team-a/run_1/p-1"
    (message,) = account.messages("sdruntime")
    assert message.body["metadata"]["prefix"] == "team-a/run_1"
    assert account.record("p-1")["prefix"] == "team-a/run_1"


def test_default_prefix_when_absent(account: Account) -> None:
    body = t2i("p-2")
    del body["task"]["metadata"]["prefix"]
    assert account.post(body).body["output_location"] == f"s3://{BUCKET}/output/p-2"
    assert account.messages("sdruntime")[0].body["metadata"]["prefix"] == "output"


def test_context_absent_is_not_stored(account: Account) -> None:
    assert account.post(t2i("c-0")).status == 202
    assert "context" not in account.record("c-0")


def test_non_ascii_content_is_published_intact(account: Account) -> None:
    body = t2i("u-1")
    body["task"]["content"]["prompt"] = '一只狗 🐕 \u2028 \\ " end'
    assert account.post(body).status == 202
    assert account.messages("sdruntime")[0].body == body["task"]


def test_base64_encoded_body_is_accepted(account: Account) -> None:
    response = account.post(t2i("b-1"), base64_body=True)
    assert response.status == 202
    assert account.messages("sdruntime")[0].body["metadata"]["id"] == "b-1"


def test_status_url_is_relative_without_request_context(account: Account) -> None:
    response = account.post(t2i("rel-1"), request_context={})
    assert response.body["status_url"] == "/v1alpha2/tasks/rel-1"


def test_status_url_on_custom_domain(account: Account) -> None:
    response = account.post(
        t2i("cd-1"),
        request_context={"domainName": "img.example.com", "stage": "prod", "path": "/api/v1alpha2"},
    )
    assert response.body["status_url"] == "https://img.example.com/api/v1alpha2/tasks/cd-1"


# --- client mistakes: 4xx, nothing recorded or published ----------------------------------


def test_every_validation_problem_in_one_400(account: Account) -> None:
    body = {"task": {"metadata": {"id": "bad id!", "runtime": "sdruntime", "prefix": "../up"}}}
    response = account.post(body)
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.error_code == "invalid_request"
    assert response.detail_paths == [
        "task.metadata.id",
        "task.metadata.tasktype",
        "task.metadata.prefix",
        "task.content",
    ]
    assert all(
        isinstance(d["message"], str) and d["message"] for d in response.body["error"]["details"]
    )
    assert_nothing_happened(account)


def test_unknown_runtime_is_400_and_publishes_nothing(account: Account) -> None:
    response = account.post(t2i("u-1", runtime="sd3-large"))
    assert response.status == 400
    assert response.detail_paths == ["task.metadata.runtime"]
    assert "sd3-large" in response.body["error"]["details"][0]["message"]
    assert_nothing_happened(account)


def test_tasktype_for_the_wrong_runtime_type_is_400(account: Account) -> None:
    response = account.post(t2i("w-1", tasktype="pipeline"))
    assert response.status == 400
    assert response.detail_paths == ["task.metadata.tasktype"]
    assert_nothing_happened(account)


@pytest.mark.parametrize(
    ("raw", "base64_body"),
    [
        ("{not json", False),
        ('{"task": NaN}', False),
        ("", False),
        ("%%%", True),
        ('{"task": {"metadata": {"id": 1e999}}}', False),
    ],
)
def test_bad_json_is_400(account: Account, raw: str, base64_body: bool) -> None:
    evt = event("POST", "/v1alpha2", raw_body=raw)
    evt["isBase64Encoded"] = base64_body
    response = account.ingest(evt)
    assert (response.status, response.error_code) == (400, "invalid_json")
    assert response.body["error"]["details"] == []
    assert_nothing_happened(account)


def test_missing_body_is_400(account: Account) -> None:
    response = account.ingest(event("POST", "/v1alpha2"))
    assert (response.status, response.error_code) == (400, "invalid_json")


def test_body_over_max_body_bytes_is_413() -> None:
    with emulated_account(MAX_BODY_BYTES="2048") as account:
        body = t2i("big-1")
        body["task"]["content"]["prompt"] = "x" * 2048
        response = account.post(body)
        assert (response.status, response.error_code) == (413, "payload_too_large")
        assert_nothing_happened(account)
        # Exactly at the limit is fine.
        body["task"]["content"]["prompt"] = ""
        padding = 2048 - len(json.dumps(body))
        body["task"]["content"]["prompt"] = "x" * padding
        assert len(json.dumps(body).encode()) == 2048
        assert account.post(body).status == 202


@pytest.mark.parametrize(
    ("method", "resource", "status", "code"),
    [
        ("GET", "/v1alpha2", 405, "method_not_allowed"),
        ("PUT", "/v1alpha1", 405, "method_not_allowed"),
        ("POST", "/v1alpha3", 404, "not_found"),
        ("POST", "/", 404, "not_found"),
    ],
)
def test_wrong_method_or_route(
    account: Account, method: str, resource: str, status: int, code: str
) -> None:
    response = account.ingest(event(method, resource, t2i()))
    assert (response.status, response.error_code) == (status, code)
    if status == 405:
        assert response.headers["Allow"] == "POST"
    assert_nothing_happened(account)


# --- idempotency ----------------------------------------------------------------------------


def test_same_body_again_returns_the_original_acceptance_without_republishing(
    account: Account,
) -> None:
    body = t2i("idem-1", context={"a": 1})
    first = account.post(body)
    # Same task, keys in another order: the canonical form is the same.
    reordered = {
        "task": {
            "content": body["task"]["content"],
            "metadata": dict(reversed(body["task"]["metadata"].items())),
        }
    }
    second = account.post(reordered)
    assert (first.status, second.status) == (202, 202)
    assert second.body == first.body
    assert len(account.messages("sdruntime")) == 1


def test_same_id_with_a_different_body_is_409_and_changes_nothing(account: Account) -> None:
    original = t2i("idem-2")
    assert account.post(original).status == 202
    record = account.record("idem-2")
    changed = t2i("idem-2")
    changed["task"]["content"]["prompt"] = "A cat"
    response = account.post(changed)
    assert (response.status, response.error_code) == (409, "id_conflict")
    assert response.detail_paths == ["task.metadata.id"]
    assert account.record("idem-2") == record
    assert len(account.messages("sdruntime")) == 1


def test_same_id_on_another_runtime_is_409(account: Account) -> None:
    assert account.post(t2i("idem-3")).status == 202
    assert account.post(t2i("idem-3", runtime="sd21")).status == 409
    assert list(account.all_messages()) == ["sdruntime"]


def test_resubmission_republishes_while_not_published(account: Account) -> None:
    body = t2i("idem-4")
    account.faults.fail("sns", "Publish")
    assert account.post(body).status == 503
    assert account.record("idem-4")["published"] is False
    account.faults.clear()

    again = account.post(body)
    assert again.status == 202
    assert again.body == accepted_body("idem-4")
    assert len(account.messages("sdruntime")) == 1
    assert account.record("idem-4")["published"] is True
    # And once published, a third submission publishes nothing more.
    assert account.post(body).status == 202
    assert account.messages("sdruntime") == []


def test_unpublished_record_already_picked_up_is_not_republished(account: Account) -> None:
    body = t2i("idem-5")
    account.put_record(
        id="idem-5",
        runtime="sdruntime",
        tasktype="text-to-image",
        status="running",
        output_location=f"s3://{BUCKET}/output/idem-5",
        request_sha256=sha_of(body),
        published=False,
        expires_at=int(time.time()) + 3600,
    )
    response = account.post(body)
    assert response.status == 202
    assert account.messages("sdruntime") == []


def test_id_of_a_task_published_directly_to_sns_is_409(account: Account) -> None:
    # The agent creates records without request_sha256 for tasks published straight to SNS.
    account.put_record(
        id="direct-1", runtime="sdruntime", status="completed", expires_at=int(time.time()) + 3600
    )
    assert account.post(t2i("direct-1")).status == 409


def test_an_expired_record_frees_its_id(account: Account) -> None:
    account.put_record(
        id="old-1",
        runtime="sd21",
        status="completed",
        request_sha256="x",
        expires_at=int(time.time()) - 10,
    )
    response = account.post(t2i("old-1"))
    assert response.status == 202
    record = account.record("old-1")
    assert (record["runtime"], record["status"], record["published"]) == (
        "sdruntime",
        "queued",
        True,
    )
    assert len(account.messages("sdruntime")) == 1


# --- claim check ----------------------------------------------------------------------------


def test_task_too_big_for_sns_is_claim_checked_at_the_real_limit(account: Account) -> None:
    body = t2i("huge-1", context={"k": "v"})
    # An inline ControlNet image of ~315 KB: the usual reason a task outgrows SNS.
    body["task"]["content"]["alwayson_scripts"] = {
        "controlnet": {"args": [{"image": "iVBORw0KGgo" + "A" * 315_000}]}}
    response = account.post(body)
    assert response.status == 202
    assert response.body == accepted_body("huge-1")

    sha = sha_of(body)
    key = f"_requests/huge-1/{sha}.json"
    stored = account.objects("_requests/")
    assert list(stored) == [key]
    assert json.loads(stored[key]) == body["task"]
    assert hashlib.sha256(stored[key]).hexdigest() == sha
    head = account.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/json"

    (message,) = account.messages("sdruntime")
    assert message.body == {
        "metadata": body["task"]["metadata"],
        "content_ref": f"s3://{BUCKET}/{key}",
    }
    assert message.attributes == {"runtime": "sdruntime"}
    assert account.record("huge-1")["published"] is True


def test_claim_check_threshold_counts_message_and_attributes() -> None:
    body = t2i("edge-1")
    body["task"]["content"]["prompt"] = "a dog " * 300  # above the 1024-byte minimum setting
    size = len(json.dumps(body["task"], separators=(",", ":")))
    attributes = len("runtime") + len("String") + len("sdruntime")
    with emulated_account(SNS_MAX_BYTES=str(size + attributes)) as account:
        assert account.post(body).status == 202
        assert "content" in account.messages("sdruntime")[0].body
    with emulated_account(SNS_MAX_BYTES=str(size + attributes - 1)) as account:
        assert account.post(body).status == 202
        assert "content_ref" in account.messages("sdruntime")[0].body
        assert len(account.objects("_requests/edge-1/")) == 1


def test_claim_checked_resubmission_is_idempotent() -> None:
    with emulated_account(SNS_MAX_BYTES="1024") as account:
        body = t2i("cc-1")
        body["task"]["content"]["prompt"] = "x" * 2000
        account.faults.fail("sns", "Publish")
        assert account.post(body).status == 503
        account.faults.clear()
        assert account.post(body).status == 202
        assert len(account.objects("_requests/")) == 1
        assert len(account.messages("sdruntime")) == 1


# --- dependency failures: 5xx, and the same request succeeds afterwards ----------------------


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"code": "ServiceUnavailable", "http_status": 503}, 503),
        ({"code": "Throttling", "http_status": 400}, 503),
        ({"code": "InternalError", "http_status": 500}, 503),
        (
            {
                "exception": EndpointConnectionError(
                    endpoint_url="https://sns.us-west-2.amazonaws.com"
                )
            },
            503,
        ),
        (
            {"exception": ConnectTimeoutError(endpoint_url="https://sns.us-west-2.amazonaws.com")},
            503,
        ),
        ({"code": "AuthorizationError", "http_status": 403}, 502),
        ({"code": "NotFound", "http_status": 404}, 502),
    ],
)
def test_sns_down_is_5xx_and_a_retry_succeeds(
    account: Account, fault: dict[str, Any], status: int
) -> None:
    body = t2i("sns-1")
    account.faults.fail("sns", "Publish", **fault)
    response = account.post(body)
    assert (response.status, response.error_code) == (status, "publish_failed")
    assert response.headers["Content-Type"] == "application/json"
    assert ("Retry-After" in response.headers) is (status == 503)
    assert account.all_messages() == {}

    account.faults.clear()
    retry = account.post(body)
    assert retry.status == 202
    assert retry.body == accepted_body("sns-1")
    assert len(account.messages("sdruntime")) == 1


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"code": "ServiceUnavailable", "http_status": 503}, 503),
        ({"code": "ProvisionedThroughputExceededException", "http_status": 400}, 503),
        ({"code": "ThrottlingException", "http_status": 400}, 503),
        ({"exception": EndpointConnectionError(endpoint_url="https://dynamodb")}, 503),
        ({"code": "AccessDeniedException", "http_status": 400}, 502),
    ],
)
def test_dynamodb_down_is_5xx_publishes_nothing_and_a_retry_succeeds(
    account: Account, fault: dict[str, Any], status: int
) -> None:
    body = t2i("ddb-1")
    account.faults.fail("dynamodb", "PutItem", **fault)
    response = account.post(body)
    assert (response.status, response.error_code) == (status, "task_table_failed")
    assert_nothing_happened(account)

    account.faults.clear()
    assert account.post(body).status == 202
    assert len(account.messages("sdruntime")) == 1


def test_missing_table_is_502(account: Account) -> None:
    account.ddb.delete_table(TableName="sdaas-tasks")
    response = account.post(t2i("nt-1"))
    assert (response.status, response.error_code) == (502, "task_table_failed")
    assert account.all_messages() == {}


def test_s3_down_during_claim_check_is_5xx_and_a_retry_succeeds() -> None:
    with emulated_account(SNS_MAX_BYTES="1024") as account:
        body = t2i("s3-1")
        body["task"]["content"]["prompt"] = "x" * 2000
        account.faults.fail("s3", "PutObject", code="SlowDown", http_status=503)
        response = account.post(body)
        assert (response.status, response.error_code) == (503, "claim_check_failed")
        assert account.all_messages() == {}
        assert account.record("s3-1")["published"] is False

        account.faults.clear()
        assert account.post(body).status == 202
        (message,) = account.messages("sdruntime")
        assert message.body["content_ref"].startswith(f"s3://{BUCKET}/_requests/s3-1/")


def test_failure_to_mark_published_still_accepts(account: Account, capsys: Any) -> None:
    body = t2i("mark-1")
    account.faults.fail("dynamodb", "UpdateItem")
    response = account.post(body)
    assert response.status == 202
    assert len(account.messages("sdruntime")) == 1
    assert account.record("mark-1")["published"] is False
    assert '"event":"published_not_marked"' in capsys.readouterr().out
    account.faults.clear()
    # At-least-once: the resubmission publishes again (the agent tolerates duplicates).
    assert account.post(body).status == 202
    assert len(account.messages("sdruntime")) == 1
    assert account.record("mark-1")["published"] is True


def test_dynamodb_failure_while_reading_the_existing_record_is_5xx(account: Account) -> None:
    """A conflicting put without ALL_OLD falls back to a read, which can fail too."""
    body = t2i("read-1")
    assert account.post(body).status == 202

    def strip_old_item(parsed: Any = None, **_: Any) -> None:
        if isinstance(parsed, dict):
            parsed.pop("Item", None)

    client = aws.client("dynamodb")
    client.meta.events.register("after-call.dynamodb.PutItem", strip_old_item)
    try:
        assert account.post(body).status == 202  # fallback read finds the record
        account.faults.fail("dynamodb", "GetItem")
        response = account.post(body)
        assert (response.status, response.error_code) == (503, "task_table_failed")
    finally:
        client.meta.events.unregister("after-call.dynamodb.PutItem", strip_old_item)
    assert len(account.messages("sdruntime")) == 1


def test_misconfiguration_is_500_not_400(account: Account, monkeypatch: Any) -> None:
    monkeypatch.setenv("RUNTIMES", "not json")
    response = account.post(t2i("cfg-1"))
    assert (response.status, response.error_code) == (500, "configuration_error")
    monkeypatch.delenv("INPUT_TOPIC_ARN")
    assert account.post(t2i("cfg-1")).status == 500
    assert_nothing_happened(account)


def test_unexpected_bug_is_a_json_500(account: Account, monkeypatch: Any) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("lambda_src.messages.build", broken)
    response = account.post(t2i("bug-1"))
    assert (response.status, response.error_code) == (500, "internal_error")
    assert response.headers["Content-Type"] == "application/json"


# --- logs -------------------------------------------------------------------------------------


def test_logs_are_json_lines_with_safe_fields_only(account: Account, capsys: Any) -> None:
    private_prompt = "a very private prompt 7c1e"
    body = t2i("log-1", context={"email": "someone@example.com"})
    body["task"]["content"]["prompt"] = private_prompt
    capsys.readouterr()
    assert account.post(body).status == 202
    assert account.post({"task": {"metadata": {"id": private_prompt}}}).status == 400
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert len(lines) == 2
    accepted, rejected = lines
    assert accepted["id"] == "log-1"
    assert accepted["runtime"] == "sdruntime"
    assert accepted["outcome"] == "accepted"
    assert accepted["status"] == 202
    assert accepted["body_bytes"] == len(json.dumps(body))
    assert accepted["message_bytes"] > 0 and accepted["claim_check"] is False
    assert rejected["outcome"] == "invalid_request" and rejected["status"] == 400
    assert "id" not in rejected  # an invalid id is not echoed into logs
    for forbidden in (API_KEY, private_prompt, "someone@example.com", "x-api-key", "203.0.113.7"):
        assert forbidden not in out


def test_dependency_failures_are_logged_with_the_error_code(account: Account, capsys: Any) -> None:
    account.faults.fail("sns", "Publish", code="KMSThrottlingException", http_status=400)
    capsys.readouterr()
    assert account.post(t2i("log-2")).status == 503
    (line,) = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert line["level"] == "WARNING"
    assert line["dependency"] == "sns:Publish"
    assert line["dependency_error"] == "KMSThrottlingException"
    assert line["outcome"] == "publish_failed"
