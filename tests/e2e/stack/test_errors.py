"""Refused requests leave nothing behind; failing tasks end ``failed`` with the reason."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.stack.conftest import Deployed
from tests.e2e.support import reference_request, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]


def _published_ids(deployed: Deployed) -> set[str]:
    return {(m["body"].get("metadata") or {}).get("id") for m in deployed.published.drain()}


def _nothing_published_after_a_control(deployed: Deployed, refused: list[str]) -> None:
    """A valid task sent after the refused ones is published; the refused ones never are."""
    control = reference_request("v1alpha2/t2i.json")
    control_id = f"control-{uuid.uuid4().hex[:8]}"
    control["task"]["metadata"]["id"] = control_id
    assert deployed.post("/v1alpha2", control).status_code == 202
    wait_for(lambda: control_id in _published_ids(deployed), 30,
             "the control task on the input topic")
    published = _published_ids(deployed)
    for task_id in refused:
        assert task_id not in published
        assert deployed.record(task_id) is None


def test_invalid_request_lists_every_problem_and_queues_nothing(deployed: Deployed) -> None:
    body = {"task": {"metadata": {"id": "bad id!", "runtime": "sdruntime",
                                  "tasktype": "pipeline", "prefix": "/etc"},
                     "content": "not an object"}}
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    paths = sorted(d["path"] for d in error["details"])
    assert paths == ["task.content", "task.metadata.id", "task.metadata.prefix",
                     "task.metadata.tasktype"]
    _nothing_published_after_a_control(deployed, ["bad id!"])


def test_unknown_runtime_is_a_400_and_queues_nothing(deployed: Deployed) -> None:
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"].update(id="e2e-unknown-runtime", runtime="invokeai")
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert [d["path"] for d in details] == ["task.metadata.runtime"]
    assert "invokeai" in details[0]["message"]
    assert "sdruntime" in details[0]["message"]  # names the configured ones
    _nothing_published_after_a_control(deployed, ["e2e-unknown-runtime"])


def test_malformed_json_is_a_400(deployed: Deployed) -> None:
    response = deployed.post("/v1alpha2", b'{"task": ')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("key", ["", "not-the-key"])
def test_missing_or_wrong_api_key_is_forbidden(deployed: Deployed, key: str) -> None:
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = "e2e-no-key"
    response = deployed.post("/v1alpha2", body, key=key)
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "INVALID_API_KEY", "message": "Forbidden",
                                         "details": []}}
    assert deployed.get("/v1alpha2/tasks/e2e-t2i", key=key).status_code == 403
    assert deployed.record("e2e-no-key") is None


def test_unknown_paths_and_methods(deployed: Deployed) -> None:
    response = deployed.get("/v1alpha3")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = deployed.get("/v1alpha2")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert deployed.get("/v1alpha2/tasks/never-submitted").status_code == 404


def test_a_runtime_failure_is_retried_then_fails_with_the_reason(deployed: Deployed) -> None:
    """SD WebUI answers 500 (transient for the agent): retried until the last delivery."""
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = "e2e-fail-webui"
    body["task"]["content"]["prompt"] = "A dog [preview:fail]"
    assert deployed.post("/v1alpha2", body).status_code == 202
    record = deployed.wait_final("e2e-fail-webui", timeout=90)
    assert record["status"] == "failed"
    assert record["attempts"] == 3  # the queue's max_receive_count
    assert record["error"]["code"] == "runtime_error"
    assert "PreviewFailure" in record["error"]["message"]
    assert "[preview:fail]" in record["error"]["message"]
    assert record["images"] == [] and record["image_urls"] == []
    result = wait_for(lambda: deployed.results.for_id("e2e-fail-webui"), 30, "the result")
    assert len(result) == 1
    assert result[0]["attributes"] == {"runtime": "sdruntime", "status": "failed"}
    assert result[0]["body"]["result"] is False
    assert result[0]["body"]["error"]["code"] == "runtime_error"


def test_a_workflow_error_fails_at_once_with_the_node(deployed: Deployed) -> None:
    """ComfyUI's execution_error is permanent for the agent: one attempt."""
    body = reference_request("v1alpha2/pipeline.json")
    body["task"]["metadata"].update(id="e2e-fail-comfy", runtime="comfyui")
    body["task"]["content"]["6"]["inputs"]["text"] = "bottle [preview:fail]"
    assert deployed.post("/v1alpha2", body).status_code == 202
    record = deployed.wait_final("e2e-fail-comfy")
    assert record["status"] == "failed"
    assert record["attempts"] == 1
    assert record["error"]["code"] == "execution_error"
    assert record["error"]["details"][0]["node_id"] == "6"
    assert record["error"]["details"][0]["exception_type"] == "PreviewFailure"


def test_a_request_the_runtime_refuses_fails_at_once(deployed: Deployed) -> None:
    """SD WebUI's 422 is permanent: the task fails on its first attempt with the details."""
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = "e2e-invalid-webui"
    body["task"]["content"]["prompt"] = "A dog [preview:invalid]"
    assert deployed.post("/v1alpha2", body).status_code == 202
    record = deployed.wait_final("e2e-invalid-webui")
    assert record["status"] == "failed"
    assert record["attempts"] == 1
    assert record["error"]["code"] == "runtime_validation"
    assert "422" in record["error"]["message"]
