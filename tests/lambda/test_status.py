"""The status handler against an emulated account (moto in process)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .support import BUCKET, Account, emulated_account, event, t2i

KEYS = {
    "id",
    "runtime",
    "tasktype",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "output_location",
    "images",
    "image_urls",
    "outputs",
    "error",
    "timings",
}


def completed_record(task_id: str = "done-1", **overrides: Any) -> dict[str, Any]:
    record = {
        "id": task_id,
        "runtime": "sdruntime",
        "tasktype": "text-to-image",
        "status": "completed",
        "attempts": 2,
        "created_at": "2025-01-02T03:04:05.678Z",
        "updated_at": "2025-01-02T03:05:00.000Z",
        "output_location": f"s3://{BUCKET}/output/{task_id}",
        "prefix": "output",
        "request_sha256": "0" * 64,
        "published": True,
        "result_published": True,
        "images": [
            f"s3://{BUCKET}/output/{task_id}/image-0.png",
            f"s3://{BUCKET}/output/{task_id}/image-1.jpeg",
        ],
        "timings": {"queue_wait": 1.25, "inference": 7, "total": 9.5},
        "expires_at": int(time.time()) + 3600,
    }
    record.update(overrides)
    return record


def test_status_right_after_submission(account: Account) -> None:
    assert account.post(t2i("q-1")).status == 202
    response = account.get("q-1")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.body
    assert set(body) == KEYS
    created = body.pop("created_at")
    assert body.pop("updated_at") == created
    assert body == {
        "id": "q-1",
        "runtime": "sdruntime",
        "tasktype": "text-to-image",
        "status": "queued",
        "attempts": 0,
        "output_location": f"s3://{BUCKET}/output/q-1",
        "images": [],
        "image_urls": [],
        "outputs": [],
        "error": None,
        "timings": {},
    }


def test_completed_task_has_presigned_urls_for_its_images(account: Account) -> None:
    account.put_record(**completed_record())
    response = account.get("done-1")
    assert response.status == 200
    body = response.body
    assert body["status"] == "completed"
    assert body["attempts"] == 2
    assert body["created_at"] == "2025-01-02T03:04:05.678Z"
    assert body["timings"] == {"queue_wait": 1.25, "inference": 7, "total": 9.5}
    assert body["error"] is None
    assert body["images"] == completed_record()["images"]
    assert len(body["image_urls"]) == 2
    for url, key in zip(
        body["image_urls"], ["output/done-1/image-0.png", "output/done-1/image-1.jpeg"], strict=True
    ):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        assert parts.scheme == "https"
        assert parts.netloc == f"{BUCKET}.s3.us-west-2.amazonaws.com"
        assert parts.path == f"/{key}"
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["3600"]
        assert "X-Amz-Signature" in query
    # A record written before outputs were recorded lists its images as outputs.
    assert [(o["url"], o["content_type"], o["animated"]) for o in body["outputs"]] == [
        (f"s3://{BUCKET}/output/done-1/image-0.png", "image/png", False),
        (f"s3://{BUCKET}/output/done-1/image-1.jpeg", "image/jpeg", False)]
    assert [urlsplit(o["download_url"]).path for o in body["outputs"]] == [
        "/output/done-1/image-0.png", "/output/done-1/image-1.jpeg"]


def test_video_outputs_are_listed_with_their_content_type_and_url(account: Account) -> None:
    video = f"s3://{BUCKET}/output/vid-1/video-0.webm"
    foreign = "s3://someone-elses-bucket/x/video-1.webm"
    account.put_record(**completed_record("vid-1", images=[], outputs=[
        {"url": video, "content_type": "video/webm", "animated": True},
        {"url": foreign, "content_type": "video/webm", "animated": True}]))
    body = account.get("vid-1").body
    assert body["images"] == [] and body["image_urls"] == []
    local, other = body["outputs"]
    assert (local["url"], local["content_type"], local["animated"]) == (
        video, "video/webm", True)
    assert urlsplit(local["download_url"]).path == "/output/vid-1/video-0.webm"
    assert (other["url"], other["download_url"]) == (foreign, None)


def test_presigned_urls_fetch_the_image(account: Account) -> None:
    """The URL is a working GET for the object (requests is routed to moto in process)."""
    import requests

    account.s3.put_object(Bucket=BUCKET, Key="output/done-1/image-0.png", Body=b"\x89PNG-bytes")
    account.put_record(**completed_record(images=[f"s3://{BUCKET}/output/done-1/image-0.png"]))
    (url,) = account.get("done-1").body["image_urls"]
    fetched = requests.get(url, timeout=5)
    assert fetched.status_code == 200
    assert fetched.content == b"\x89PNG-bytes"


def test_presign_lifetime_follows_the_setting() -> None:
    with emulated_account(PRESIGN_EXPIRES_SECONDS="120") as account:
        account.put_record(**completed_record())
        url = account.get("done-1").body["image_urls"][0]
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["120"]


def test_only_images_in_the_output_bucket_are_presigned(account: Account) -> None:
    images = [
        "s3://someone-elses-bucket/output/x/image-0.png",
        f"s3://{BUCKET}/output/x/image-1.png",
        "https://example.com/image-2.png",
        f"s3://{BUCKET}",
        f"s3://{BUCKET}-evil/output/x/image-3.png",
        42,
    ]
    account.put_record(**completed_record("x", images=images))
    body = account.get("x").body
    assert body["images"] == [image for image in images if isinstance(image, str)]
    (url,) = body["image_urls"]
    assert urlsplit(url).path == "/output/x/image-1.png"


def test_failed_task_reports_its_error(account: Account) -> None:
    error = {"code": "runtime_error", "message": "CUDA out of memory", "details": []}
    account.put_record(
        **completed_record("f-1", status="failed", images=[], error=error, attempts=3)
    )
    body = account.get("f-1").body
    assert (body["status"], body["attempts"], body["error"], body["image_urls"]) == (
        "failed",
        3,
        error,
        [],
    )


def test_sparse_record_from_a_direct_publish(account: Account) -> None:
    account.put_record(id="sparse-1", status="running", attempts=1)
    body = account.get("sparse-1").body
    assert set(body) == KEYS
    assert body["status"] == "running"
    assert body["attempts"] == 1
    assert body["runtime"] is None
    assert (body["images"], body["image_urls"], body["error"], body["timings"]) == (
        [],
        [],
        None,
        {},
    )


def test_unknown_id_is_404(account: Account) -> None:
    response = account.get("never-submitted")
    assert (response.status, response.error_code) == (404, "not_found")
    assert response.headers["Content-Type"] == "application/json"


def test_expired_record_is_404(account: Account) -> None:
    account.put_record(**completed_record("gone-1", expires_at=int(time.time()) - 1))
    assert account.get("gone-1").status == 404


@pytest.mark.parametrize("task_id", ["bad id", "a" * 65, "..", "a.b", ""])
def test_invalid_id_is_400(account: Account, task_id: str) -> None:
    response = account.get(task_id)
    assert (response.status, response.error_code) == (400, "invalid_request")
    assert response.detail_paths == ["id"]


def test_id_from_the_path_behind_a_proxy_resource(account: Account) -> None:
    account.put_record(**completed_record("px-1"))
    evt = event("GET", "/{proxy+}", path="/v1alpha2/tasks/px-1")
    assert account.status(evt).body["id"] == "px-1"
    encoded = event("GET", "/{proxy+}", path="/v1alpha2/tasks/px%2F1")
    assert account.status(encoded).status == 400


@pytest.mark.parametrize(
    ("method", "resource", "path", "status", "code"),
    [
        ("POST", "/v1alpha2/tasks/{id}", "/v1alpha2/tasks/x", 405, "method_not_allowed"),
        ("DELETE", "/v1alpha2/tasks/{id}", "/v1alpha2/tasks/x", 405, "method_not_allowed"),
        ("GET", "/v1alpha2/other/{id}", "/v1alpha2/other/x", 404, "not_found"),
        ("GET", "/{proxy+}", "/v1alpha2/tasks", 404, "not_found"),
    ],
)
def test_wrong_method_or_route(
    account: Account, method: str, resource: str, path: str, status: int, code: str
) -> None:
    evt = event(method, resource, path=path, path_parameters={"id": "x"})
    response = account.status(evt)
    assert (response.status, response.error_code) == (status, code)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"code": "ServiceUnavailable", "http_status": 503}, 503),
        ({"code": "ProvisionedThroughputExceededException", "http_status": 400}, 503),
        ({"code": "AccessDeniedException", "http_status": 400}, 502),
    ],
)
def test_dynamodb_down_is_5xx(account: Account, fault: dict[str, Any], status: int) -> None:
    account.put_record(**completed_record("d-1"))
    account.faults.fail("dynamodb", "GetItem", **fault)
    response = account.get("d-1")
    assert (response.status, response.error_code) == (status, "task_table_failed")
    account.faults.clear()
    assert account.get("d-1").status == 200


def test_misconfiguration_is_500(account: Account, monkeypatch: Any) -> None:
    monkeypatch.setenv("PRESIGN_EXPIRES_SECONDS", "forever")
    response = account.get("x")
    assert (response.status, response.error_code) == (500, "configuration_error")


def test_logs_carry_id_and_status_only(account: Account, capsys: Any) -> None:
    account.put_record(**completed_record("l-1"))
    capsys.readouterr()
    account.get("l-1")
    out = capsys.readouterr().out
    (line,) = [json.loads(x) for x in out.strip().splitlines()]
    assert (line["id"], line["outcome"], line["images"], line["status"]) == (
        "l-1",
        "completed",
        2,
        200,
    )
    assert "X-Amz-Signature" not in out
    assert "x-api-key" not in out.lower()
