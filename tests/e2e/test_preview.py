"""The PREVIEW runtime speaks the SD WebUI and ComfyUI API subsets (runtime-apis.md)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sdaas.local.preview import LABEL, PreviewServer
from tests.e2e.support import REPO, image_size, png, png_text, wait_for
from tests.fakes.comfyui import text_to_image_workflow

MODEL = "sd_xl_turbo_1.0.safetensors"


@pytest.fixture
def webui() -> Iterator[PreviewServer]:
    with PreviewServer("sdwebui", seconds_per_image=0.01, models=(MODEL, "v1-5.ckpt")) as server:
        yield server


@pytest.fixture
def comfy() -> Iterator[PreviewServer]:
    with PreviewServer("comfyui", seconds_per_image=0.01) as server:
        yield server


def _images(answer: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(i) for i in answer["images"]]


# --- SD WebUI -------------------------------------------------------------------------------


def test_txt2img_draws_labelled_placeholders_of_the_requested_size(webui) -> None:
    body = {"prompt": "a red fox", "seed": 10, "batch_size": 2, "n_iter": 2, "width": 96,
            "height": 64}
    response = requests.post(f"{webui.url}/sdapi/v1/txt2img", json=body, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Preview-Runtime"] == "placeholder images, not a model"
    answer = response.json()
    images = _images(answer)
    assert len(images) == 4
    assert {image_size(i) for i in images} == {(96, 64)}
    assert len(set(images)) == 4
    assert LABEL in png_text(images[0])["parameters"]
    info = json.loads(answer["info"])
    assert info["all_seeds"] == [10, 11, 12, 13]
    assert info["sd_model_name"] == "sd_xl_turbo_1.0"
    assert answer["parameters"] == body
    again = requests.post(f"{webui.url}/sdapi/v1/txt2img", json=body, timeout=10).json()
    assert _images(again) == images  # deterministic: a retried task gets the same bytes


def test_webui_refuses_what_fastapi_would(webui) -> None:
    response = requests.post(f"{webui.url}/sdapi/v1/txt2img",
                             json={"prompt": "x", "stpes": 3, "width": "wide"}, timeout=10)
    assert response.status_code == 422
    assert {tuple(d["loc"]) for d in response.json()["detail"]} == {("body", "stpes"),
                                                                     ("body", "width")}
    assert requests.post(f"{webui.url}/sdapi/v1/img2img", json={"prompt": "x"},
                         timeout=10).status_code == 422
    bad = requests.post(f"{webui.url}/sdapi/v1/img2img",
                        json={"prompt": "x", "init_images": ["not base64!"]}, timeout=10)
    assert bad.status_code == 500
    assert bad.json()["detail"] == "Invalid encoded image"
    assert requests.get(f"{webui.url}/sdapi/v1/txt2img", timeout=10).status_code == 405
    assert requests.get(f"{webui.url}/sdapi/v1/nothing", timeout=10).status_code == 404


def test_img2img_and_extras_use_the_input_image(webui) -> None:
    source = base64.b64encode(png(40, 30)).decode()
    i2i = requests.post(f"{webui.url}/sdapi/v1/img2img", json={
        "prompt": "x", "init_images": [f"data:image/png;base64,{source}"], "width": 80,
        "height": 60}, timeout=10).json()
    assert [image_size(i) for i in _images(i2i)] == [(80, 60)]
    assert i2i["parameters"]["init_images"] is None  # as A1111 answers
    single = requests.post(f"{webui.url}/sdapi/v1/extra-single-image",
                           json={"image": source, "upscaling_resize": 2}, timeout=10).json()
    assert image_size(base64.b64decode(single["image"])) == (80, 60)
    sized = requests.post(f"{webui.url}/sdapi/v1/extra-single-image", json={
        "image": source, "resize_mode": 1, "upscaling_resize_w": 33,
        "upscaling_resize_h": 22}, timeout=10).json()
    assert image_size(base64.b64decode(sized["image"])) == (33, 22)
    batch = requests.post(f"{webui.url}/sdapi/v1/extra-batch-images", json={
        "imageList": [{"data": source, "name": "a"}, {"data": source, "name": "b"}]},
        timeout=10).json()
    assert len(batch["images"]) == 2


def test_models_options_and_liveness(webui) -> None:
    models = requests.get(f"{webui.url}/sdapi/v1/sd-models", timeout=10).json()
    assert [m["model_name"] for m in models] == ["sd_xl_turbo_1.0", "v1-5"]
    assert models[0]["title"].startswith(f"{MODEL} [")
    options = requests.get(f"{webui.url}/sdapi/v1/options", timeout=10).json()
    assert options["sd_model_checkpoint"] == models[0]["title"]
    switch = requests.post(f"{webui.url}/sdapi/v1/options",
                           json={"sd_model_checkpoint": "v1-5"}, timeout=10)
    assert switch.status_code == 200
    options = requests.get(f"{webui.url}/sdapi/v1/options", timeout=10).json()
    assert options["sd_model_checkpoint"] == models[1]["title"]
    unknown = requests.post(f"{webui.url}/sdapi/v1/options",
                            json={"sd_model_checkpoint": "nope"}, timeout=10)
    assert unknown.status_code == 500
    assert "nope" in unknown.json()["errors"]
    assert requests.get(f"{webui.url}/internal/ping", timeout=10).status_code == 200
    assert requests.get(f"{webui.url}/sdapi/v1/memory", timeout=10).status_code == 200
    assert requests.post(f"{webui.url}/sdapi/v1/refresh-checkpoints",
                         timeout=10).status_code == 200


def test_webui_without_configured_models_offers_a_named_placeholder() -> None:
    with PreviewServer("sdwebui", seconds_per_image=0) as server:
        models = requests.get(f"{server.url}/sdapi/v1/sd-models", timeout=10).json()
    assert [m["model_name"] for m in models] == ["preview-placeholder"]


def test_webui_markers_fail_refuse(webui) -> None:
    fail = requests.post(f"{webui.url}/sdapi/v1/txt2img",
                         json={"prompt": "a dog [preview:fail]"}, timeout=10)
    assert fail.status_code == 500
    assert set(fail.json()) == {"error", "detail", "body", "errors"}
    assert fail.json()["error"] == "PreviewFailure"
    invalid = requests.post(f"{webui.url}/sdapi/v1/extra-single-image",
                            json={"image": "x", "upscaler_1": "[preview:invalid]"}, timeout=10)
    assert invalid.status_code == 422
    assert "[preview:invalid]" in invalid.json()["detail"][0]["msg"]


def test_interrupt_ends_a_long_generation(webui) -> None:
    answers: list[requests.Response] = []
    thread = threading.Thread(target=lambda: answers.append(requests.post(
        f"{webui.url}/sdapi/v1/txt2img", json={"prompt": "slow [preview:sleep=60]"},
        timeout=90)))
    thread.start()
    wait_for(lambda: requests.get(f"{webui.url}/sdapi/v1/progress", timeout=5).json()[
        "state"]["job_count"] == 1, 10, "the generation to start", interval=0.05)
    assert requests.post(f"{webui.url}/sdapi/v1/interrupt", timeout=5).status_code == 200
    thread.join(timeout=20)
    assert not thread.is_alive(), "the interrupted generation did not end"
    assert answers[0].status_code == 200


# --- ComfyUI -----------------------------------------------------------------------------------


def _run(comfy: PreviewServer, workflow: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{comfy.url}/prompt",
                             json={"prompt": workflow, "client_id": "c1"}, timeout=10)
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    return wait_for(lambda: requests.get(f"{comfy.url}/history/{prompt_id}",
                                         timeout=5).json().get(prompt_id), 20,
                    "the prompt to finish", interval=0.02)


def test_comfy_workflow_outputs_and_view(comfy) -> None:
    workflow = text_to_image_workflow("a red fox", batch=2)
    workflow["5"]["inputs"].update(width=64, height=48)
    workflow["10"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    entry = _run(comfy, workflow)
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    saved = entry["outputs"]["9"]["images"]
    assert [i["type"] for i in saved] == ["output", "output"]
    assert [i["type"] for i in entry["outputs"]["10"]["images"]] == ["temp", "temp"]
    view = requests.get(f"{comfy.url}/view", params={**saved[0], "type": "output"}, timeout=10)
    assert view.status_code == 200
    assert view.headers["Content-Type"] == "image/png"
    assert image_size(view.content) == (64, 48)
    assert LABEL in png_text(view.content)["parameters"]
    assert requests.get(f"{comfy.url}/view", params={"filename": "nope.png",
                                                      "type": "output"},
                        timeout=10).status_code == 404
    assert requests.post(f"{comfy.url}/history", json={"delete": [entry["prompt"][1]]},
                         timeout=10).status_code == 200
    assert requests.get(f"{comfy.url}/history/{entry['prompt'][1]}", timeout=10).json() == {}


def test_comfy_validation_errors(comfy) -> None:
    def submit(workflow: Any) -> requests.Response:
        return requests.post(f"{comfy.url}/prompt", json={"prompt": workflow}, timeout=10)

    assert submit([]).json()["error"]["type"] == "prompt_no_outputs"  # as ComfyUI answers
    not_an_object = submit([1, 2])
    assert not_an_object.status_code == 500
    assert not_an_object.headers["Content-Type"] == "text/plain; charset=utf-8"
    no_class = submit({"1": {"inputs": {}}})
    assert no_class.status_code == 400 and "class_type" in no_class.json()["error"]["message"]
    no_output = submit({"1": {"class_type": "KSampler", "inputs": {}}})
    assert no_output.json()["error"]["type"] == "prompt_no_outputs"
    workflow = text_to_image_workflow()
    workflow["8"]["inputs"]["samples"] = ["99", 0]
    bad_link = submit(workflow)
    assert bad_link.status_code == 400
    error = bad_link.json()["node_errors"]["8"]["errors"][0]
    assert (error["type"], error["details"]) == ("exception_during_inner_validation", "'99'")
    load = {"1": {"class_type": "LoadImage", "inputs": {"image": "missing.png"}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                       "filename_prefix": "x"}}}
    missing = submit(load)
    assert missing.json()["node_errors"]["1"]["errors"][0]["details"] == \
        "image - Invalid image file: missing.png"
    refused = text_to_image_workflow("x [preview:invalid]")
    assert submit(refused).json()["node_errors"]["6"]["class_type"] == "CLIPTextEncode"
    custom = {"1": {"class_type": "MyCustomLoader", "inputs": {"path": "a.png"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "x"}}}
    assert submit(custom).status_code == 200  # custom node classes are accepted


def test_comfy_upload_then_load_image(comfy) -> None:
    upload = requests.post(f"{comfy.url}/upload/image", files={"image": ("in.png", png(30, 20),
                                                                         "image/png")},
                           data={"overwrite": "true"}, timeout=10)
    assert upload.status_code == 200
    assert upload.json() == {"name": "in.png", "subfolder": "", "type": "input"}
    entry = _run(comfy, {"1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
                         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                                    "filename_prefix": "in"}}})
    image = entry["outputs"]["2"]["images"][0]
    data = requests.get(f"{comfy.url}/view", params=image, timeout=10).content
    assert image_size(data) == (30, 20)


def test_comfy_fail_marker_is_an_execution_error_on_the_marked_node(comfy) -> None:
    entry = _run(comfy, text_to_image_workflow("a fox [preview:fail]"))
    assert entry["status"]["status_str"] == "error"
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert errors[0]["node_id"] == "6"
    assert errors[0]["exception_type"] == "PreviewFailure"
    assert entry["outputs"] == {}


def test_comfy_queue_and_interrupt(comfy) -> None:
    slow = requests.post(f"{comfy.url}/prompt", json={
        "prompt": text_to_image_workflow("slow [preview:sleep=60]")}, timeout=10).json()
    waiting = requests.post(f"{comfy.url}/prompt", json={
        "prompt": text_to_image_workflow("next")}, timeout=10).json()
    def running() -> dict[str, Any] | None:
        queue = requests.get(f"{comfy.url}/queue", timeout=5).json()
        return queue if queue["queue_running"] else None

    queue = wait_for(running, 10, "the prompt to run", interval=0.05)
    assert queue["queue_running"][0][1] == slow["prompt_id"]
    assert [p[1] for p in queue["queue_pending"]] == [waiting["prompt_id"]]
    requests.post(f"{comfy.url}/queue", json={"delete": [waiting["prompt_id"]]}, timeout=5)
    requests.post(f"{comfy.url}/interrupt", json={}, timeout=5)
    entry = wait_for(lambda: requests.get(f"{comfy.url}/history/{slow['prompt_id']}",
                                          timeout=5).json().get(slow["prompt_id"]), 20,
                     "the interrupted prompt")
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"
    assert requests.get(f"{comfy.url}/queue", timeout=5).json() == {
        "queue_running": [], "queue_pending": []}
    assert requests.get(f"{comfy.url}/system_stats", timeout=5).status_code == 200
    assert requests.post(f"{comfy.url}/free", json={"unload_models": True},
                         timeout=5).status_code == 200


def test_runs_as_a_program_until_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sdaas.local.preview", "--type", "comfyui",
         "--ready-file", str(ready)], cwd=REPO, env={**os.environ},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(ready.exists, 30, "the ready file")
        info = json.loads(ready.read_text())
        assert info["url"] == f"http://127.0.0.1:{info['port']}"
        assert requests.get(f"{info['url']}/system_stats", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"not a model" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_comfy_saves_the_workflow_in_pngs_unless_metadata_is_disabled() -> None:
    workflow = {"1": {"class_type": "EmptyImage", "inputs": {
        "width": 16, "height": 8, "batch_size": 1, "color": 255}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                   "filename_prefix": "meta"}}}
    chunks = []
    for disabled in (False, True):
        with PreviewServer("comfyui", seconds_per_image=0.01,
                           disable_metadata=disabled) as server:
            image = _run(server, workflow)["outputs"]["2"]["images"][0]
            data = requests.get(f"{server.url}/view", params=image, timeout=10).content
            chunks.append(png_text(data))
    assert json.loads(chunks[0]["prompt"]) == workflow
    assert "prompt" not in chunks[1]
    assert LABEL in chunks[1]["parameters"]


# --- [preview:kill-agent] ---------------------------------------------------------------------


def _sleeper(instance: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SD_LOCAL_INSTANCE"}
    if instance is not None:
        env["SD_LOCAL_INSTANCE"] = instance
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                            start_new_session=True)


@pytest.fixture
def agent_like(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A process of local stack "stack-1" standing in for its agent, and its pid file."""
    proc = _sleeper("stack-1")
    pid_file = tmp_path / "agent-sdruntime.pid"
    pid_file.write_text(f"{proc.pid}\n")
    try:
        yield proc, pid_file
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_kill_agent_kills_the_named_agent_of_this_stack_only(agent_like) -> None:
    from sdaas.local.agent_kill import AgentKiller

    proc, pid_file = agent_like
    body = json.dumps({"prompt": "x [preview:kill-agent]"}).encode()
    assert AgentKiller(pid_file, "another-stack").check("POST", "/sdapi/v1/txt2img", body) == (
        f"the request asked to kill the queue agent, but pid {proc.pid} is not ours")
    assert proc.poll() is None
    assert AgentKiller(pid_file, "stack-1").check("GET", "/sdapi/v1/txt2img", body) is None
    assert AgentKiller(pid_file, "stack-1").check("POST", "/sdapi/v1/options", body) is None
    said = AgentKiller(pid_file, "stack-1").check("POST", "/sdapi/v1/txt2img", body)
    assert said == (f"the preview runtime killed the queue agent (pid {proc.pid}) "
                    "([preview:kill-agent])")
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_kill_agent_n_kills_on_the_first_n_identical_requests(tmp_path: Path) -> None:
    from sdaas.local.agent_kill import AgentKiller

    killed: list[str] = []
    killer = AgentKiller(tmp_path / "none.pid", "stack-1")
    killer.kill = lambda: killed.append("kill") or "killed"  # type: ignore[method-assign]
    workflow = {"6": {"class_type": "CLIPTextEncode", "inputs": {
        "text": "bottle [preview:kill-agent=2]"}}}
    for client in ("agent-a", "agent-b", "agent-c"):  # each restarted agent has its own id
        body = json.dumps({"prompt": workflow, "client_id": client}).encode()
        killer.check("POST", "/prompt", body)
    assert killed == ["kill", "kill"]
    other = json.dumps({"prompt": {**workflow, "7": {}}, "client_id": "agent-c"}).encode()
    assert killer.check("POST", "/prompt", other) == "killed"  # another task: its own count


def test_kill_agent_answers_500_when_it_cannot_kill(webui) -> None:
    response = requests.post(f"{webui.url}/sdapi/v1/txt2img", timeout=10,
                             json={"prompt": "x [preview:kill-agent]"})
    assert response.status_code == 500
    assert response.json()["error"] == "PreviewKilledAgent"
    assert "without --agent-pid-file" in response.json()["detail"]
