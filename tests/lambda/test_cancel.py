"""The cancel handler (``POST /v1alpha2/tasks/{id}/cancel``) against an emulated account."""

from __future__ import annotations

import json
import time

import pytest

from lambda_src import cancel

from .openapi_support import assert_conforms, operation_of
from .support import Account, Response, event, t2i
from .test_status import KEYS, completed_record

RESOURCE = "/v1alpha2/tasks/{id}/cancel"


def post_cancel(account: Account, task_id: str, method: str = "POST") -> Response:
    """The answer, checked against the OpenAPI document's description of it."""
    response = Response.of(cancel.handler(
        event(method, RESOURCE, path=f"/v1alpha2/tasks/{task_id}/cancel",
              path_parameters={"id": task_id}), account.context))
    assert_conforms(operation_of(RESOURCE, method), response.status, response.body)
    return response


def test_a_queued_task_is_cancelled_and_the_status_shows_it(account: Account) -> None:
    assert account.post(t2i("c-1")).status == 202
    before = account.record("c-1")
    response = post_cancel(account, "c-1")
    assert response.status == 202
    assert set(response.body) == KEYS
    assert response.body["status"] == "cancelled"
    assert response.body["id"] == "c-1" and response.body["images"] == []
    assert response.body["updated_at"] >= before["updated_at"]
    record = account.record("c-1")
    assert record["status"] == "cancelled"
    assert "result_published" not in record  # the agent that drops the task publishes
    assert account.get("c-1").body == response.body


def test_a_running_task_is_cancelled(account: Account) -> None:
    record = completed_record("r-1", status="running", images=[])
    del record["result_published"]
    account.put_record(**record)
    response = post_cancel(account, "r-1")
    assert response.status == 202 and response.body["status"] == "cancelled"
    assert account.record("r-1")["status"] == "cancelled"


def test_cancel_is_idempotent(account: Account) -> None:
    assert account.post(t2i("c-2")).status == 202
    first = post_cancel(account, "c-2")
    second = post_cancel(account, "c-2")
    assert first.status == second.status == 202
    assert second.body == first.body


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_final_task_answers_409_with_its_status(account: Account, status: str) -> None:
    account.put_record(**completed_record("f-1", status=status))
    before = account.record("f-1")
    response = post_cancel(account, "f-1")
    assert response.status == 409
    assert response.error_code == "task_final"
    assert response.body["error"]["details"] == [{"path": "status", "message": status}]
    assert status in response.body["error"]["message"]
    assert account.record("f-1") == before  # nothing written


def test_unknown_and_expired_ids_are_404_and_create_nothing(account: Account) -> None:
    response = post_cancel(account, "nobody")
    assert response.status == 404 and response.error_code == "not_found"
    assert account.item_count() == 0
    account.put_record(**completed_record("old-1", status="queued",
                                          expires_at=int(time.time()) - 10))
    assert post_cancel(account, "old-1").status == 404
    assert account.record("old-1")["status"] == "queued"


@pytest.mark.parametrize("task_id", ["has space", "x" * 65, "semi;colon"])
def test_a_bad_id_is_400(account: Account, task_id: str) -> None:
    response = post_cancel(account, task_id)
    assert response.status == 400 and response.error_code == "invalid_request"
    assert response.detail_paths == ["id"]


def test_other_methods_are_405(account: Account) -> None:
    response = post_cancel(account, "c-3", method="GET")
    assert response.status == 405 and response.headers["Allow"] == "POST"


def test_behind_a_greedy_proxy_the_id_comes_from_the_path(account: Account) -> None:
    assert account.post(t2i("p-1")).status == 202
    evt = event("POST", "/{proxy+}", path="/v1alpha2/tasks/p-1/cancel")
    response = Response.of(cancel.handler(evt, account.context))
    assert response.status == 202 and response.body["id"] == "p-1"
    evt = event("POST", "/{proxy+}", path="/v1alpha2/tasks/p-1/cancel/more")
    assert Response.of(cancel.handler(evt, account.context)).status == 404


def test_a_table_outage_is_503_and_changes_nothing(account: Account) -> None:
    assert account.post(t2i("o-1")).status == 202
    account.faults.fail("dynamodb", "UpdateItem")
    response = post_cancel(account, "o-1")
    assert response.status == 503 and response.error_code == "task_table_failed"
    assert account.record("o-1")["status"] == "queued"


def test_one_log_line_names_the_outcome(account: Account, capsys) -> None:
    assert account.post(t2i("l-1")).status == 202
    capsys.readouterr()
    post_cancel(account, "l-1")
    post_cancel(account, "l-1")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    outcomes = [(line["handler"], line["outcome"], line["status"]) for line in lines]
    assert outcomes == [("cancel", "cancelled", 202), ("cancel", "already_cancelled", 202)]
