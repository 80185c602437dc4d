"""Integration: ``python -m agent`` and tasks the client cancels (queued or running), against
the emulator and the fake runtimes. The record is written as the cancel API writes it."""

from __future__ import annotations

import time

import pytest

from tests.agent.harness import Stack, assert_finished_once, task, wait_for
from tests.fakes.comfyui import text_to_image_workflow
from tests.real_comfyui.scenarios import slow_workflow

pytestmark = pytest.mark.emulator

FAST_CHECKS = {"AGENT_CANCEL_POLL_SECONDS": "0.2", "AGENT_TASK_TIMEOUT_SECONDS": "60"}


def queued_record(stack: Stack, task_id: str, status: str = "queued", **extra: dict) -> None:
    """The record ingest writes (plus ``extra`` DynamoDB-typed attributes)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    stack.ddb.put_item(TableName=stack.table, Item={
        "id": {"S": task_id}, "runtime": {"S": "sdruntime"},
        "tasktype": {"S": "text-to-image"}, "status": {"S": status},
        "attempts": {"N": "0"}, "created_at": {"S": now}, "updated_at": {"S": now},
        "output_location": {"S": f"s3://{stack.bucket}/output/{task_id}"},
        "prefix": {"S": "output"}, "context": {"S": '{"user":"u1"}'},
        "expires_at": {"N": str(int(time.time()) + 3600)}, **extra})


def cancel(stack: Stack, task_id: str) -> None:
    """What ``POST /v1alpha2/tasks/{id}/cancel`` writes to a task that is not final."""
    stack.ddb.update_item(
        TableName=stack.table, Key={"id": {"S": task_id}},
        UpdateExpression="SET #s = :cancelled",
        ConditionExpression="#s IN (:queued, :running)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":cancelled": {"S": "cancelled"},
                                   ":queued": {"S": "queued"}, ":running": {"S": "running"}})


def assert_nothing_stored(stack: Stack, task_id: str, result: dict) -> None:
    assert result["image_url"] == [] and result["outputs"] == []
    assert result["error"] is None and result["context"] == {"user": "u1"}
    assert stack.objects(f"output/{task_id}/") == {}
    record = stack.record(task_id)
    assert "images" not in record and "outputs" not in record


def test_a_task_cancelled_while_queued_is_never_run(stack, sdwebui, start_agent) -> None:
    queued_record(stack, "cq-1")
    cancel(stack, "cq-1")
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("cq-1"))
    result = assert_finished_once(stack, "cq-1", "cancelled")
    assert sdwebui.generations == []
    assert_nothing_stored(stack, "cq-1", result)
    assert stack.record("cq-1")["attempts"] == 0  # never marked running
    finished = agent.events("task_finished")
    assert [(e["task_id"], e["status"]) for e in finished] == [("cq-1", "cancelled")]
    # A later delivery of the same task (SQS is at least once) is dropped silently.
    stack.publish(task("cq-1"))
    wait_for(lambda: agent.events("duplicate_ignored"), 15, "the duplicate to be dropped")
    assert len(stack.results_for("cq-1")) == 1 and sdwebui.generations == []


def test_a_running_sdwebui_task_is_interrupted_and_ends_cancelled(stack, sdwebui,
                                                                   start_agent) -> None:
    sdwebui.seconds_per_image = 30
    agent = start_agent(stack, sdwebui.url, **FAST_CHECKS)
    stack.publish(task("cr-1"))
    wait_for(lambda: sdwebui.generations, 15, "the generation to start")
    cancel(stack, "cr-1")
    result = assert_finished_once(stack, "cr-1", "cancelled")
    assert sdwebui.state.interrupts == 1
    assert [g.interrupted for g in sdwebui.generations] == [True]
    assert_nothing_stored(stack, "cr-1", result)
    assert len(agent.events("task_cancel_noticed")) == 1
    assert [e["receive_count"] for e in agent.events("task_received")] == [1]
    # The agent goes on with the next task.
    sdwebui.seconds_per_image = 0.05
    stack.publish(task("after-1"))
    assert_finished_once(stack, "after-1", "completed")


def test_a_running_comfyui_task_is_interrupted_by_prompt_id(stack, comfyui,
                                                            start_agent) -> None:
    comfyui.seconds_per_image = 20  # about 3 s a node
    start_agent(stack, comfyui.url, runtime_type="comfyui", **FAST_CHECKS)
    stack.publish(task("cc-1", "pipeline", slow_workflow("cancel", size=64)))
    running = wait_for(comfyui.engine.running_ids, 15, "the prompt to run")
    cancel(stack, "cc-1")
    result = assert_finished_once(stack, "cc-1", "cancelled")
    assert comfyui.interrupt_bodies == [{"prompt_id": running[0]}]
    assert_nothing_stored(stack, "cc-1", result)
    wait_for(lambda: not comfyui.engine.running_ids(), 30, "the interrupted node to end")
    wait_for(lambda: comfyui.history == {}, 30, "the prompt's history entry to be deleted")
    comfyui.seconds_per_image = 0.05
    stack.publish(task("cc-2", "pipeline", text_to_image_workflow()))
    assert_finished_once(stack, "cc-2", "completed")


def test_a_task_that_finishes_as_it_is_cancelled_stores_nothing(stack, sdwebui,
                                                                start_agent) -> None:
    sdwebui.seconds_per_image = 2
    # The watch never reads in time: the agent sees the cancellation when it reports.
    agent = start_agent(stack, sdwebui.url, AGENT_CANCEL_POLL_SECONDS="60")
    stack.publish(task("cf-1"))
    wait_for(lambda: sdwebui.generations, 15, "the generation to start")
    cancel(stack, "cf-1")
    result = assert_finished_once(stack, "cf-1", "cancelled")
    assert sdwebui.state.interrupts == 0 and len(sdwebui.completed_generations()) == 1
    assert_nothing_stored(stack, "cf-1", result)
    # Settled by the agent that ran it, at once: no second delivery.
    assert [e["receive_count"] for e in agent.events("task_received")] == [1]
    assert agent.events("duplicate_finished_elsewhere") == []


def test_a_claimed_cancelled_task_whose_result_was_lost_is_published_again(
        stack, sdwebui, start_agent) -> None:
    # An agent claimed the cancelled task and stopped before publishing (a crash).
    queued_record(stack, "cl-1", status="cancelled", result_published={"BOOL": False},
                  updated_at={"S": "2025-01-01T00:00:00.000Z"})
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("cl-1"))
    assert_finished_once(stack, "cl-1", "cancelled")
    assert sdwebui.generations == []
    assert len(agent.events("result_republished")) == 1


def test_a_task_cancelled_while_it_waits_for_the_runtime_is_not_started(
        stack, sdwebui, start_agent) -> None:
    sdwebui.seconds_per_image = 30
    agent = start_agent(stack, sdwebui.url, **FAST_CHECKS)
    stack.publish(task("cw-run"))
    wait_for(lambda: sdwebui.generations, 15, "cw-run to start")
    stack.publish(task("cw-next"))  # received and prepared while cw-run holds the runtime
    wait_for(lambda: (stack.record("cw-next") or {}).get("status") == "running", 15,
             "cw-next to be received")
    cancel(stack, "cw-next")
    wait_for(lambda: [e for e in agent.events("task_cancel_noticed")
                      if e["task_id"] == "cw-next"], 15, "the cancellation to be noticed")
    assert sdwebui.state.interrupts == 0  # the running task is left alone
    cancel(stack, "cw-run")
    for task_id in ("cw-run", "cw-next"):
        assert_nothing_stored(stack, task_id, assert_finished_once(stack, task_id, "cancelled"))
    assert len(sdwebui.generations) == 1 and sdwebui.state.interrupts == 1
    assert [e["task_id"] for e in agent.events("task_not_started")] == ["cw-next"]
