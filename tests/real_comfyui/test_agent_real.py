"""The queue agent (``python -m agent``) against the real ComfyUI on CPU, through moto.

Workflows need no model weights. Waits are generous and bounded: on a loaded machine the
CPU nodes run slowly, and nothing here depends on how fast they run.
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from typing import Any

import pytest
import requests
from PIL import Image

from tests.agent.harness import assert_finished_once, task, wait_for
from tests.real_comfyui.scenarios import empty_image, save_image, slow_workflow, video_workflow
from tests.real_comfyui.server import ComfyServer

pytestmark = [pytest.mark.real_comfyui, pytest.mark.emulator, pytest.mark.timeout(2400)]
RESULT_WAIT = 300.0  # seconds: a result, even on a loaded machine
HISTORY_WAIT = 180.0  # seconds: an interrupted prompt's entry appears, and is deleted
COMFY = {"runtime_type": "comfyui"}


def tag() -> str:
    return uuid.uuid4().hex[:8]


def colour(text: str) -> int:
    """A colour of its own per test, so no node output is cached from another test."""
    return zlib.crc32(text.encode()) & 0xFFFFFF


def queue(server: ComfyServer) -> dict[str, Any]:
    return dict(requests.get(f"{server.url}/queue", timeout=30).json())


def running(server: ComfyServer) -> bool:
    return bool(queue(server)["queue_running"])


def entries_mentioning(server: ComfyServer, text: str) -> list[str]:
    """Ids of history entries whose workflow mentions ``text`` (the test's tag)."""
    history = requests.get(f"{server.url}/history", timeout=30).json()
    return [prompt_id for prompt_id, entry in history.items()
            if text in json.dumps(entry.get("prompt"))]


def assert_no_history_left(server: ComfyServer, text: str) -> None:
    """Once no prompt of the test is queued or running (an interrupted one ends when its
    node does), none may have a history entry left."""
    wait_for(lambda: text not in json.dumps(queue(server)), HISTORY_WAIT,
             "the test's prompts to leave the queue", interval=0.5)
    leftover: list[str] = []

    def clean() -> bool:
        leftover[:] = entries_mentioning(server, text)
        return not leftover

    try:
        wait_for(clean, HISTORY_WAIT, "the history entries to be deleted", interval=0.5)
    except AssertionError:
        raise AssertionError(f"history entries left behind on the runtime: {leftover}") from None


def outputs_named(server: ComfyServer, text: str) -> list[str]:
    return sorted(p.name for p in server.output_dir.rglob("*") if text in p.name)


# --- the three bugs -----------------------------------------------------------------------


def test_a_partly_invalid_workflow_does_not_interrupt_the_running_one(
        stack, real_comfyui, start_agent) -> None:
    """Concurrency 2: the agent refuses a workflow ComfyUI accepted with node_errors, and
    cancels only that prompt (still queued), never the one running beside it."""
    name = tag()
    agent = start_agent(stack, real_comfyui.url, **COMFY, AGENT_RUNTIME_CONCURRENCY="2",
                        AGENT_TASK_TIMEOUT_SECONDS="900",
                        AGENT_VISIBILITY_TIMEOUT_SECONDS="60", AGENT_HEARTBEAT_SECONDS="5")
    stack.publish(task(f"slow-{name}", "pipeline",
                       slow_workflow(f"{name}-slow", color=colour(name))))
    wait_for(lambda: running(real_comfyui), RESULT_WAIT, "the slow workflow to run")
    stack.publish(task(f"partly-{name}", "pipeline", {
        "1": empty_image(16, 16, color=colour(name + "p")), "2": save_image("1", f"{name}-ok"),
        "3": empty_image(0, 16), "4": save_image("3", f"{name}-invalid")}))
    refused = assert_finished_once(stack, f"partly-{name}", "failed", timeout=RESULT_WAIT,
                                   queue_empty=False)
    assert refused["error"]["code"] == "runtime_validation"
    errors = refused["error"]["details"]["node_errors"]["3"]["errors"]
    assert errors[0]["type"] == "value_smaller_than_min"
    assert_finished_once(stack, f"slow-{name}", "completed", timeout=RESULT_WAIT)
    assert stack.record(f"slow-{name}")["attempts"] == 1, "the running task was interrupted"
    assert agent.events("task_retry_scheduled") == []
    assert outputs_named(real_comfyui, f"{name}-slow") == [f"{name}-slow_00001_.png"]
    assert outputs_named(real_comfyui, f"{name}-ok") == []  # removed from the queue unrun
    assert_no_history_left(real_comfyui, name)


def test_a_timed_out_task_reaches_the_dlq_and_its_prompts_leave_no_history(
        stack, real_comfyui, start_agent) -> None:
    """Each delivery times out and interrupts its prompt; ComfyUI writes the interrupted
    prompt's history entry only when the running node ends, and the agent deletes it then."""
    name = tag()
    start_agent(stack, real_comfyui.url, **COMFY, AGENT_TASK_TIMEOUT_SECONDS="3",
                AGENT_VISIBILITY_TIMEOUT_SECONDS="30", AGENT_HEARTBEAT_SECONDS="2")
    stack.publish(task(f"timeout-{name}", "pipeline",
                       slow_workflow(f"{name}-timeout", blurs=40, color=colour(name))))
    result = assert_finished_once(stack, f"timeout-{name}", "failed", timeout=RESULT_WAIT,
                                  queue_empty=False)
    assert result["error"]["code"] == "runtime_timeout"
    assert "gave up after 3 deliveries" in result["error"]["message"]
    assert stack.record(f"timeout-{name}")["attempts"] == 3
    bodies = wait_for(stack.dlq_bodies, 60, "the message in the dead-letter queue")
    assert f"timeout-{name}" in bodies[0]
    assert_no_history_left(real_comfyui, name)


def test_video_and_animated_outputs_are_stored_as_what_they_are(
        stack, real_comfyui, start_agent) -> None:
    name = tag()
    start_agent(stack, real_comfyui.url, **COMFY)
    workflow = video_workflow(name)
    workflow["1"]["inputs"]["color"] = colour(name)
    stack.publish(task(f"video-{name}", "pipeline", workflow))
    result = assert_finished_once(stack, f"video-{name}", "completed", timeout=RESULT_WAIT)
    base = f"output/video-{name}"
    url = f"s3://{stack.bucket}/{base}"
    assert sorted(stack.objects(f"{base}/")) == [
        f"{base}/image-0.webp", f"{base}/image-1.png", f"{base}/result.json",
        f"{base}/video-0.webm"]
    assert stack.content_type(f"{base}/image-0.webp") == "image/webp"
    assert stack.content_type(f"{base}/image-1.png") == "image/png"
    assert stack.content_type(f"{base}/video-0.webm") == "video/webm"
    assert result["image_url"] == [f"{url}/image-0.webp", f"{url}/image-1.png"]
    assert result["outputs"] == [
        {"url": f"{url}/image-0.webp", "content_type": "image/webp", "animated": True},
        {"url": f"{url}/image-1.png", "content_type": "image/png", "animated": True},
        {"url": f"{url}/video-0.webm", "content_type": "video/webm", "animated": True}]
    document = json.loads(stack.objects(f"{base}/result.json")[f"{base}/result.json"])
    assert document["outputs"] == result["outputs"]
    assert stack.record(f"video-{name}")["outputs"] == result["outputs"]


# --- the rest of the path -------------------------------------------------------------------


def test_timings_agree_and_saved_pngs_carry_the_workflow(
        stack, real_comfyui, start_agent) -> None:
    name = tag()
    start_agent(stack, real_comfyui.url, **COMFY)
    workflow = {"1": empty_image(64, 48, batch=2, color=colour(name)),
                "2": save_image("1", f"{name}/sub/pic")}
    stack.publish(task(f"empty-{name}", "pipeline", workflow))
    result = assert_finished_once(stack, f"empty-{name}", "completed", timeout=RESULT_WAIT)
    base = f"output/empty-{name}"
    objects = stack.objects(f"{base}/")
    document = json.loads(objects[f"{base}/result.json"])
    recorded = {k: float(v) for k, v in stack.record(f"empty-{name}")["timings"].items()}
    assert document["timings"] == result["timings"] == recorded
    assert document["timings"]["upload"] > 0
    with Image.open(io.BytesIO(objects[f"{base}/image-0.png"])) as image:
        assert image.size == (64, 48)
        # ComfyUI writes the whole workflow into each PNG unless --disable-metadata.
        assert json.loads(image.text["prompt"])["2"]["inputs"]["filename_prefix"] == \
            f"{name}/sub/pic"
    assert len(result["image_url"]) == 2
    assert document["info"]["files"] == ["pic_00001_.png", "pic_00002_.png"]
    assert_no_history_left(real_comfyui, name)


def test_sigterm_mid_task_interrupts_only_it_and_another_agent_finishes_it(
        stack, real_comfyui, start_agent) -> None:
    name = tag()
    first = start_agent(stack, real_comfyui.url, **COMFY, AGENT_SHUTDOWN_GRACE_SECONDS="1",
                        AGENT_TASK_TIMEOUT_SECONDS="900",
                        AGENT_VISIBILITY_TIMEOUT_SECONDS="60", AGENT_HEARTBEAT_SECONDS="5")
    stack.publish(task(f"term-{name}", "pipeline",
                       slow_workflow(f"{name}-term", color=colour(name))))
    wait_for(lambda: running(real_comfyui), RESULT_WAIT, "the workflow to run")
    assert first.terminate(timeout=HISTORY_WAIT) == 0
    assert stack.results_for(f"term-{name}") == []
    assert stack.queue_counts() == (1, 0)  # released at once for another agent
    start_agent(stack, real_comfyui.url, **COMFY, AGENT_TASK_TIMEOUT_SECONDS="900")
    assert_finished_once(stack, f"term-{name}", "completed", timeout=RESULT_WAIT)
    assert stack.record(f"term-{name}")["attempts"] == 2
    assert_no_history_left(real_comfyui, name)


def test_inputs_batches_claim_checks_and_failures(stack, real_comfyui, image_host,
                                                  start_agent) -> None:
    name = tag()
    stack.s3.put_object(Bucket=stack.bucket, Key=f"inputs/{name}.png", Body=image_host.png)
    start_agent(stack, real_comfyui.url, **COMFY, AGENT_ALLOW_HTTP="true",
                AGENT_INPUT_ALLOW_ADDRESSES="127.0.0.1/32")
    invert = {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}
    tasks: dict[str, dict[str, Any]] = {
        "http": {"1": {"class_type": "LoadImage", "inputs": {
            "image": f"{image_host.url}/img-{name}.png"}}, "2": invert,
            "3": save_image("2", f"{name}-http")},
        "s3": {"1": {"class_type": "LoadImage", "inputs": {
            "image": f"s3://{stack.bucket}/inputs/{name}.png"}},
            "3": save_image("1", f"{name}-s3")},
        "batch": {"1": empty_image(24, 16, batch=3, color=colour(name)),
                  "2": save_image("1", f"{name}-batch")},
        "several": {"1": empty_image(8, 8, color=colour(name + "s")),
                    "2": save_image("1", f"{name}-a"), "3": invert,
                    "4": save_image("3", f"{name}-b")},
        "unknown": {"1": {"class_type": "NoSuchNode", "inputs": {}},
                    "2": save_image("1", name)},
        "range": {"1": empty_image(8, 20000), "2": save_image("1", name)},
        "runtime": {"1": empty_image(16, 16, batch=2, color=colour(name + "r")),
                    "2": {"class_type": "SaveWEBM", "inputs": {
                        "images": ["1", 0], "filename_prefix": f"{name}-bad", "codec": "h265",
                        "fps": 6.0, "crf": 32.0}}},
    }
    for case, workflow in tasks.items():
        stack.publish(task(f"{case}-{name}", "pipeline", workflow))
    claim_key = f"_requests/claim-{name}/body.json"
    claimed = task(f"claim-{name}", "pipeline", {"1": empty_image(8, 8, color=colour("c" + name)),
                                                 "2": save_image("1", f"{name}-claim")})
    stack.s3.put_object(Bucket=stack.bucket, Key=claim_key, Body=json.dumps(claimed).encode())
    stack.publish({"metadata": claimed["metadata"],
                   "content_ref": f"s3://{stack.bucket}/{claim_key}"})

    def finished(case: str, status: str) -> dict[str, Any]:
        return assert_finished_once(stack, f"{case}-{name}", status, timeout=RESULT_WAIT,
                                    settle=0.2, queue_empty=False)

    sizes = {}
    for case in ("http", "s3", "batch", "several", "claim"):
        result = finished(case, "completed")
        keys = sorted(k for k in stack.objects(f"output/{case}-{name}/") if k.endswith(".png"))
        assert len(result["image_url"]) == len(keys)
        with Image.open(io.BytesIO(stack.objects(keys[0])[keys[0]])) as image:
            sizes[case] = (len(keys), image.size)
    assert sizes == {"http": (1, (24, 24)), "s3": (1, (24, 24)), "batch": (3, (24, 16)),
                     "several": (2, (8, 8)), "claim": (1, (8, 8))}
    unknown = finished("unknown", "failed")["error"]
    assert unknown["code"] == "runtime_validation"
    assert "NoSuchNode does not exist" in unknown["message"]
    out_of_range = finished("range", "failed")["error"]
    assert out_of_range["details"]["node_errors"]["1"]["errors"][0]["type"] == \
        "value_bigger_than_max"
    failed = finished("runtime", "failed")["error"]
    assert failed["code"] == "execution_error"
    assert failed["details"] == [{"node_id": "2", "node_type": "SaveWEBM",
                                  "exception_type": "KeyError", "exception_message": "'h265'"}]
    assert stack.record(f"runtime-{name}")["attempts"] == 1
    assert wait_for(lambda: stack.queue_counts() == (0, 0), 60, "an empty input queue")
    assert_no_history_left(real_comfyui, name)
