"""The ComfyUI adapter against the fake ComfyUI over real HTTP."""

from __future__ import annotations

import threading

import pytest
import requests

from agent.config import load_config
from agent.errors import PermanentError, TransientError
from agent.messages import Task
from agent.runtimes.comfyui import ComfyUiAdapter
from agent.runtimes.comfyui_history import HistoryJanitor
from tests.agent.harness import wait_for
from tests.fakes.base import render_png
from tests.fakes.comfyui import FakeComfyUI, text_to_image_workflow
from tests.real_comfyui.scenarios import empty_image, save_image, slow_workflow, video_workflow

PNG = render_png("comfy-input", 16, 16)


def adapter(fake: FakeComfyUI, **env: str) -> ComfyUiAdapter:
    return ComfyUiAdapter(load_config({
        "SQS_QUEUE_URL": "http://127.0.0.1/q", "SNS_TOPIC_ARN": "arn:aws:sns:us-west-2:1:t",
        "S3_BUCKET": "b", "RUNTIME_TYPE": "comfyui", "RUNTIME_NAME": "comfy",
        "API_BASE_URL": fake.url, "AGENT_TASK_TIMEOUT_SECONDS": "3",
        "AGENT_COMFYUI_POLL_SECONDS": "0.02", **env}))


def pipeline(task_id: str, workflow: dict) -> Task:
    return Task(id=task_id, runtime="comfy", tasktype="pipeline", content=workflow)


def run(comfy: ComfyUiAdapter, task: Task):
    return comfy.run(comfy.prepare(task, lambda url: PNG), threading.Event())


def test_workflow_runs_and_outputs_are_downloaded(comfyui: FakeComfyUI) -> None:
    workflow = text_to_image_workflow(seed=11, batch=2)
    workflow["10"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    out = run(adapter(comfyui), pipeline("c1", workflow))
    assert len(out.images) == 2  # the PreviewImage ("temp") outputs are not results
    assert all(image.startswith(b"\x89PNG") for image in out.images)
    assert out.seeds == [11]
    assert comfyui.deleted_history == [out.info["prompt_id"]]
    assert comfyui.history == {}


def test_wrapped_prompt_body_is_accepted(comfyui: FakeComfyUI) -> None:
    out = run(adapter(comfyui), pipeline("c2", {"prompt": text_to_image_workflow()}))
    assert len(out.images) == 1


def test_input_images_are_uploaded_and_load_image_points_at_them(comfyui: FakeComfyUI) -> None:
    workflow = text_to_image_workflow()
    workflow["11"] = {"class_type": "LoadImage", "inputs": {"image": "s3://in/photo.png"}}
    workflow["12"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["11", 0],
                                                           "vae": ["4", 2]}}
    workflow["6"]["inputs"]["text"] = "a photo like https://example.com/ref.png"
    comfy = adapter(comfyui)
    prepared = comfy.prepare(pipeline("up-1", workflow), lambda url: PNG)
    assert prepared.body["11"]["inputs"]["image"] == "agent-up-1-11.png"
    assert comfyui.inputs["agent-up-1-11.png"] == PNG
    assert prepared.body["6"]["inputs"]["text"] == "a photo like https://example.com/ref.png"
    out = comfy.run(prepared, threading.Event())
    assert len(out.images) == 1


def test_validation_failure_is_permanent_with_node_details(comfyui: FakeComfyUI) -> None:
    workflow = text_to_image_workflow()
    del workflow["3"]["inputs"]["model"]
    with pytest.raises(PermanentError) as info:
        run(adapter(comfyui), pipeline("bad", workflow))
    assert info.value.code == "runtime_validation"
    node = info.value.details["node_errors"]["3"]
    assert node["class_type"] == "KSampler"
    assert node["errors"][0]["type"] == "required_input_missing"
    unknown = text_to_image_workflow()
    unknown["4"]["class_type"] = "NoSuchNode"
    with pytest.raises(PermanentError) as missing:
        run(adapter(comfyui), pipeline("bad2", unknown))
    assert "NoSuchNode does not exist" in missing.value.message


def test_not_a_workflow_is_permanent(comfyui: FakeComfyUI) -> None:
    with pytest.raises(PermanentError):
        run(adapter(comfyui), pipeline("nw", {"prompt": "a cat"}))


def test_execution_error_names_node_type_and_exception(comfyui: FakeComfyUI) -> None:
    comfyui.fail_execution("KSampler", "RuntimeError", "mat1 and mat2 shapes")
    with pytest.raises(PermanentError) as info:
        run(adapter(comfyui), pipeline("e1", text_to_image_workflow()))
    assert info.value.code == "execution_error"
    assert info.value.details == [{"node_id": "3", "node_type": "KSampler",
                                   "exception_type": "RuntimeError",
                                   "exception_message": "mat1 and mat2 shapes"}]
    assert comfyui.history == {}  # deleted even on failure


def test_out_of_memory_during_execution_is_transient(comfyui: FakeComfyUI) -> None:
    comfyui.fail_execution("KSampler", "torch.cuda.OutOfMemoryError", "CUDA out of memory")
    with pytest.raises(TransientError):
        run(adapter(comfyui), pipeline("oom", text_to_image_workflow()))


def test_timeout_interrupts_its_prompt_by_id_and_deletes_the_late_history_entry(
        comfyui: FakeComfyUI) -> None:
    # ComfyUI writes an interrupted prompt's entry when the running node ends (here each of
    # the seven nodes takes about 3 s and only samplers stop at once).
    comfyui.seconds_per_image = 20
    comfy = adapter(comfyui, AGENT_TASK_TIMEOUT_SECONDS="1")
    with pytest.raises(TransientError) as info:
        run(comfy, pipeline("slow", slow_workflow("slow", size=64)))
    assert info.value.code == "runtime_timeout"
    assert len(comfyui.interrupt_bodies) == 1
    prompt_id = comfyui.interrupt_bodies[0]["prompt_id"]
    assert comfyui.history == {}  # not written yet: the node still runs
    wait_for(lambda: not comfyui.engine.running_ids(), 30, "the interrupted node to end")
    wait_for(lambda: prompt_id in comfyui.deleted_history, 30, "the entry to be deleted")
    assert comfyui.history == {}
    assert comfy.janitor.wait(10)


def test_a_partly_valid_workflow_is_withdrawn_without_touching_the_running_prompt(
        comfyui: FakeComfyUI) -> None:
    comfyui.seconds_per_image = 6
    running = requests.post(f"{comfyui.url}/prompt", json={
        "prompt": slow_workflow("other", size=64)}, timeout=10).json()["prompt_id"]
    wait_for(lambda: comfyui.engine.running_ids(), 10, "the other prompt to run")
    partly = {"1": empty_image(16, 16), "2": save_image("1", "ok"),
              "3": empty_image(0, 16), "4": save_image("3", "bad")}
    comfy = adapter(comfyui)
    with pytest.raises(PermanentError) as info:
        run(comfy, pipeline("partly", partly))
    assert info.value.code == "runtime_validation"
    assert info.value.details["node_errors"]["3"]["errors"][0]["type"] == \
        "value_smaller_than_min"
    assert comfyui.interrupt_bodies == []  # it was still queued: deleted, nothing interrupted
    assert len(comfyui.deleted_from_queue) == 1
    assert comfyui.engine.running_ids() == [running]
    comfyui.seconds_per_image = 0.05
    entry = wait_for(lambda: comfyui.history.get(running), 30, "the other prompt to finish")
    assert entry["status"]["status_str"] == "success"
    assert comfy.janitor.wait(10)
    assert not any(name.startswith("ok_") for name in comfyui.outputs)


def test_interrupt_without_a_prompt_touches_nothing(comfyui: FakeComfyUI) -> None:
    comfy = adapter(comfyui)
    comfy.interrupt(None)
    comfy.interrupt(comfy.prepare(pipeline("never-run", text_to_image_workflow()),
                                  lambda url: PNG))
    assert comfyui.interrupt_bodies == []


def test_animated_and_video_outputs_are_returned_with_their_animation(
        comfyui: FakeComfyUI) -> None:
    out = run(adapter(comfyui), pipeline("video", video_workflow("clip")))
    assert [image[:4] for image in out.images] == [b"RIFF", b"\x89PNG", b"\x1aE\xdf\xa3"]
    assert out.animated == [True, True, True]
    assert out.info["files"] == ["clip-webp_00001_.webp", "clip-apng_00001_.png",
                                 "clip-webm_00001_.webm"]


def test_an_output_of_a_format_the_agent_does_not_store_fails_the_task(
        comfyui: FakeComfyUI) -> None:
    workflow = {"1": empty_image(8, 8, color=5), "2": save_image("1", "odd")}
    comfy = adapter(comfyui)
    run(comfy, pipeline("odd-1", workflow))
    # The identical prompt returns the cached file, whose bytes are now something else.
    comfyui.engine.files[("output", "", "odd_00001_.png")] = b"GLB binary 3D model"
    with pytest.raises(PermanentError) as info:
        run(comfy, pipeline("odd-2", workflow))
    assert info.value.code == "unsupported_output"
    assert "odd_00001_.png" in info.value.message


def test_history_janitor_stops_watching_what_will_never_have_an_entry(
        comfyui: FakeComfyUI) -> None:
    comfy = adapter(comfyui)
    janitor = HistoryJanitor(comfy.url, lambda: comfy.session, 0.05, 600)
    janitor.watch("never-submitted")
    assert janitor.wait(10)
    assert janitor.pending() == []
    comfyui.die()  # a runtime that is gone took its history with it
    janitor.watch("submitted-before-the-runtime-died")
    assert janitor.wait(10)
    assert janitor.pending() == []


def test_server_error_and_connection_refused_are_transient(comfyui: FakeComfyUI) -> None:
    comfy = adapter(comfyui)
    comfyui.fail_next("/prompt", 500)
    with pytest.raises(TransientError):
        run(comfy, pipeline("f1", text_to_image_workflow()))
    comfyui.die()
    assert comfy.ready() is False
    with pytest.raises(TransientError) as info:
        run(comfy, pipeline("f2", text_to_image_workflow()))
    assert info.value.code == "runtime_unavailable"
