"""A task failed by the dead-letter consumer runs again when its message is redriven; a task
failed any other way is final, whatever message comes for it."""

from __future__ import annotations

import pytest

from tests.agent.harness import Stack, assert_finished_once, task, wait_for

pytestmark = pytest.mark.emulator


def _failed_record(stack: Stack, task_id: str, *, dead_lettered: bool) -> None:
    item = {
        "id": {"S": task_id}, "runtime": {"S": "sdruntime"},
        "tasktype": {"S": "text-to-image"}, "status": {"S": "failed"}, "attempts": {"N": "3"},
        "updated_at": {"S": "2026-01-01T00:00:00.000Z"}, "result_published": {"BOOL": True},
        "error": {"M": {"code": {"S": "dead_lettered" if dead_lettered else "runtime_error"},
                        "message": {"S": "earlier failure"}, "details": {"L": []}}},
    }
    if dead_lettered:
        item["dead_lettered_at"] = {"S": "2026-01-01T00:00:00.000Z"}
    stack.ddb.put_item(TableName=stack.table, Item=item)


def test_a_redriven_dead_lettered_task_runs_again(stack, sdwebui, start_agent) -> None:
    _failed_record(stack, "redriven-1", dead_lettered=True)
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("redriven-1"))
    result = assert_finished_once(stack, "redriven-1", "completed")
    assert result["error"] is None and len(result["image_url"]) == 1
    record = stack.record("redriven-1")
    assert record["attempts"] == 4  # the earlier deliveries count
    assert record["error"] is None
    assert "dead_lettered_at" not in record  # failing again needs a new dead letter
    [redriven] = agent.events("task_redriven")
    assert (redriven["task_id"], redriven["attempt"]) == ("redriven-1", 4)
    assert len(sdwebui.generations) == 1


def test_a_task_failed_otherwise_stays_failed(stack, sdwebui, start_agent) -> None:
    _failed_record(stack, "failed-1", dead_lettered=False)
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("failed-1"))
    wait_for(lambda: agent.events("duplicate_ignored"), 20, "the message ignored")
    wait_for(lambda: stack.queue_counts() == (0, 0), 15, "the message deleted")
    record = stack.record("failed-1")
    assert (record["status"], record["attempts"]) == ("failed", 3)
    assert record["error"]["code"] == "runtime_error"
    assert stack.results_for("failed-1") == []
    assert sdwebui.generations == []
    assert agent.events("task_redriven") == []
