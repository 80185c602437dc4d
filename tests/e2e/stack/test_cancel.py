"""``POST /v1alpha2/tasks/{id}/cancel`` on the local stack: a queued task is never run, a
running one is interrupted in its (preview) runtime, a final one answers 409; each cancelled
task has one ``cancelled`` result message and nothing in the bucket.

The running SD WebUI tasks sleep in the preview runtime for longer than any test waits
(``[preview:sleep=600]``), so they can only end by being interrupted. The preview ComfyUI,
like ComfyUI, stops a sampler at once but lets another node end first, so the workflow
sleeps 28 s spread over its seven nodes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sdaas.cli import sdctl
from tests.e2e.stack.conftest import Deployed
from tests.e2e.support import reference_request, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]

ENDLESS = "[preview:sleep=600]"


def _t2i(task_id: str, prompt: str = "A dog") -> dict[str, Any]:
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = task_id
    body["task"]["content"]["prompt"] = prompt
    return body


def _pipeline(task_id: str, text: str) -> dict[str, Any]:
    body = reference_request("v1alpha2/pipeline.json")
    body["task"]["metadata"].update(id=task_id, runtime="comfyui")
    body["task"]["content"]["6"]["inputs"]["text"] = text
    return body


def _submit(deployed: Deployed, body: dict[str, Any]) -> None:
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 202, response.text


def _cancel(deployed: Deployed, task_id: str) -> Any:
    return deployed.post(f"/v1alpha2/tasks/{task_id}/cancel", None)


def _status_is(deployed: Deployed, task_id: str, status: str) -> bool:
    return deployed.status(task_id)["status"] == status


def _assert_cancelled_once(deployed: Deployed, task_id: str) -> dict[str, Any]:
    """Cancelled: the status, one result message, the record published, nothing stored."""
    record = deployed.wait_final(task_id)
    assert record["status"] == "cancelled", record
    assert record["images"] == [] and record["outputs"] == []
    results = wait_for(lambda: deployed.results.for_id(task_id), 60,
                       f"the result message of {task_id}")
    item = wait_for(lambda: (i := deployed.record(task_id)) and
                    i.get("result_published", {}).get("BOOL") and i, 30,
                    f"result_published on {task_id}")
    assert item["status"] == {"S": "cancelled"}
    assert len(deployed.results.for_id(task_id)) == 1
    (message,) = results
    assert message["attributes"]["status"] == "cancelled"
    body = message["body"]
    assert (body["status"], body["result"], body["image_url"], body["error"]) == (
        "cancelled", False, [], None)
    assert deployed.objects(f"output/{task_id}/") == {}
    return record


def test_queued_and_running_tasks_are_cancelled_and_a_final_one_is_not(
        deployed: Deployed) -> None:
    # "cx-run" holds the runtime; "cx-next" is received next (prefetched); "cx-queued"
    # then waits in the queue, where nothing receives it while the runtime is busy.
    _submit(deployed, _t2i("cx-run", f"hold the runtime {ENDLESS}"))
    try:
        wait_for(lambda: _status_is(deployed, "cx-run", "running"), 60, "cx-run to run")
        _submit(deployed, _t2i("cx-next"))
        wait_for(lambda: _status_is(deployed, "cx-next", "running"), 60,
                 "cx-next to be received")
        _submit(deployed, _t2i("cx-queued"))

        queued = _cancel(deployed, "cx-queued")
        assert queued.status_code == 202, queued.text
        view = queued.json()
        assert (view["id"], view["status"], view["attempts"]) == ("cx-queued", "cancelled", 0)
        again = _cancel(deployed, "cx-queued")
        assert (again.status_code, again.json()) == (202, view)  # idempotent
    finally:
        running = _cancel(deployed, "cx-run")
    assert running.status_code == 202, running.text
    assert running.json()["status"] == "cancelled"

    # The running task was interrupted (it would sleep for ten minutes otherwise) ...
    _assert_cancelled_once(deployed, "cx-run")
    # ... the next one runs ...
    assert deployed.wait_final("cx-next")["status"] == "completed"
    # ... and the queued one is dropped when it is received, never run.
    record = _assert_cancelled_once(deployed, "cx-queued")
    assert record["attempts"] == 0
    assert _cancel(deployed, "cx-queued").json() == view

    final = _cancel(deployed, "cx-next")
    assert final.status_code == 409
    assert final.json() == {"error": {
        "code": "task_final",
        "message": "task 'cx-next' is already completed; only a queued or running task can "
                   "be cancelled",
        "details": [{"path": "status", "message": "completed"}]}}
    assert deployed.status("cx-next")["status"] == "completed"


def test_a_running_comfyui_workflow_is_interrupted(deployed: Deployed) -> None:
    _submit(deployed, _pipeline("cx-flow", "a slow cat [preview:sleep=28]"))
    try:
        wait_for(lambda: _status_is(deployed, "cx-flow", "running"), 60, "cx-flow to run")
    finally:
        response = _cancel(deployed, "cx-flow")
    assert response.status_code == 202, response.text
    _assert_cancelled_once(deployed, "cx-flow")
    # The runtime is free again.
    _submit(deployed, _pipeline("cx-flow-2", "a quick cat"))
    assert deployed.wait_final("cx-flow-2")["status"] == "completed"


def test_unknown_and_bad_ids(deployed: Deployed) -> None:
    unknown = _cancel(deployed, "cx-nobody")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    bad = _cancel(deployed, "a%20b")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    assert deployed.post("/v1alpha2/tasks/cx-nobody/cancel", None, key="wrong"
                         ).status_code == 403


def test_sdctl_cancel(deployed: Deployed, tmp_path: Path) -> None:
    env = {"SD_ENDPOINT": deployed.endpoint, "SD_API_KEY": deployed.api_key}
    _submit(deployed, _t2i("cx-sdctl", f"hold the runtime {ENDLESS}"))
    out, err = io.StringIO(), io.StringIO()
    try:
        wait_for(lambda: _status_is(deployed, "cx-sdctl", "running"), 60, "cx-sdctl to run")
    finally:
        code = sdctl.main(["cancel", "cx-sdctl"], out=out, err=err, env=env, cwd=tmp_path)
    assert code == sdctl.EXIT_OK, err.getvalue()
    assert out.getvalue() == "cancelled cx-sdctl\n"
    code = sdctl.main(["wait", "cx-sdctl", "--timeout", "60", "--out", str(tmp_path)],
                      out=out, err=err, env=env, cwd=tmp_path)
    assert code == sdctl.EXIT_TASK_CANCELLED
    _assert_cancelled_once(deployed, "cx-sdctl")
