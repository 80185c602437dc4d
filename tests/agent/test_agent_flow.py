"""Integration: ``python -m agent`` against the emulator and the fake runtimes."""

from __future__ import annotations

import base64
import itertools
import json
import time

import pytest
import requests

from tests.agent.harness import assert_finished_once, task, wait_for
from tests.fakes.base import render_png
from tests.fakes.comfyui import text_to_image_workflow
from tests.real_comfyui.scenarios import slow_workflow, video_workflow

pytestmark = pytest.mark.emulator


def test_text_to_image_end_to_end(stack, sdwebui, start_agent) -> None:
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("t2i-1", content={"prompt": "a dog", "width": 64, "height": 64,
                                         "batch_size": 2, "seed": 5,
                                         "negative_prompt": "secret-looking-prompt-text"}))
    result = assert_finished_once(stack, "t2i-1", "completed")
    prefix = f"s3://{stack.bucket}/output/t2i-1"
    assert result["image_url"] == [f"{prefix}/image-0.png", f"{prefix}/image-1.png"]
    assert result["output_url"] == f"{prefix}/result.json"
    assert result["context"] == {"user": "u1"}
    assert result["error"] is None
    assert set(result["timings"]) == {"queue_wait", "download", "inference", "upload", "total"}
    assert result["timings"]["inference"] >= 0.05  # the fake's 50 ms per image, two images
    objects = stack.objects("output/t2i-1/")
    assert sorted(objects) == ["output/t2i-1/image-0.png", "output/t2i-1/image-1.png",
                               "output/t2i-1/result.json"]
    assert objects["output/t2i-1/image-0.png"].startswith(b"\x89PNG")
    assert stack.content_type("output/t2i-1/image-0.png") == "image/png"
    doc = json.loads(objects["output/t2i-1/result.json"])
    assert doc["status"] == "completed" and doc["seeds"] == [5, 6]
    assert doc["parameters"]["prompt"] == "a dog"
    assert doc["info"]["all_seeds"] == [5, 6]
    record = stack.record("t2i-1")
    assert record["attempts"] == 1
    assert record["images"] == result["image_url"]
    assert set(record["timings"]) == set(result["timings"])
    assert record["runtime"] == "sdruntime" and record["tasktype"] == "text-to-image"
    assert record["output_location"] == prefix
    # Observability: one JSON line per event with the timings, one EMF line, no payloads.
    finished = agent.events("task_finished")
    assert len(finished) == 1 and finished[0]["status"] == "completed"
    assert {"queue_wait", "download", "inference", "upload", "total"} <= set(finished[0])
    emf = [e for e in agent.events() if "_aws" in e and "TasksCompleted" in e]
    assert len(emf) == 1 and emf[0]["Runtime"] == "sdruntime" and emf[0]["TasksCompleted"] == 1
    metrics = {m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"QueueWait", "Download", "Inference", "Upload", "Total", "EndToEnd"} <= metrics
    assert emf[0]["EndToEnd"] == pytest.approx(
        finished[0]["queue_wait"] + finished[0]["total"], abs=1e-3)
    # Cold start: once each, from the agent's start (no Kubernetes API here).
    cold = {e["milestone"]: e for e in agent.events("cold_start")}
    assert set(cold) == {"runtime_ready", "first_task"}
    assert {e["origin"] for e in cold.values()} == {"agent_started"}
    assert cold["first_task"]["seconds"] >= cold["runtime_ready"]["seconds"] >= 0
    cold_emf = [e for e in agent.events() if "_aws" in e and "TasksCompleted" not in e]
    assert sorted(m["Name"] for e in cold_emf
                  for m in e["_aws"]["CloudWatchMetrics"][0]["Metrics"]) == [
        "ColdStartToFirstTask", "ColdStartToRuntimeReady"]
    assert "secret-looking-prompt-text" not in agent.output()
    assert all(line.startswith("{") for line in agent.output().splitlines())


def test_image_to_image_from_s3_and_raw_body(stack, sdwebui, start_agent) -> None:
    png = render_png("i2i-input", 20, 20)
    stack.s3.put_object(Bucket=stack.bucket, Key="inputs/in.png", Body=png)
    start_agent(stack, sdwebui.url)
    body = task("i2i-1", "image-to-image", {
        "prompt": "keep s3://other/never-fetched.png in the prompt",
        "init_images": [f"s3://{stack.bucket}/inputs/in.png"], "width": 64, "height": 64})
    stack.send_raw(json.dumps(body))  # raw delivery (no SNS envelope)
    result = assert_finished_once(stack, "i2i-1", "completed")
    assert len(result["image_url"]) == 1
    doc = json.loads(stack.objects("output/i2i-1/result.json")["output/i2i-1/result.json"])
    assert doc["parameters"]["prompt"] == "keep s3://other/never-fetched.png in the prompt"
    assert "init_images" not in json.dumps(doc["info"])


def test_extras_and_legacy_v1alpha1(stack, sdwebui, start_agent) -> None:
    png = render_png("extras-input", 20, 20)
    stack.s3.put_object(Bucket=stack.bucket, Key="inputs/e.png", Body=png)
    url = f"s3://{stack.bucket}/inputs/e.png"
    start_agent(stack, sdwebui.url)
    stack.publish(task("ex-1", "extra-single-image", {"image": url, "upscaler_1": "Lanczos"}))
    stack.publish(task("ex-2", "extra-batch-images", {
        "imageList": [{"data": url, "name": "a"},
                      {"data": base64.b64encode(png).decode(), "name": "b"}]}))
    stack.send_raw(json.dumps({
        "prompt": "legacy", "steps": 4, "width": 64, "height": 64,
        "alwayson_scripts": {"task": "image-to-image", "id_task": "legacy-1",
                             "sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors",
                             "save_dir": "v1out", "image_link": url}}))
    assert len(assert_finished_once(stack, "ex-1", "completed")["image_url"]) == 1
    assert len(assert_finished_once(stack, "ex-2", "completed")["image_url"]) == 2
    legacy = assert_finished_once(stack, "legacy-1", "completed")
    assert legacy["image_url"] == [f"s3://{stack.bucket}/v1out/legacy-1/image-0.png"]


def test_claim_checked_task(stack, sdwebui, start_agent) -> None:
    full = task("claim-1", content={"prompt": "x" * 1000, "width": 64, "height": 64})
    key = "_requests/claim-1/abc.json"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=json.dumps(full).encode())
    start_agent(stack, sdwebui.url)
    stack.publish({"metadata": full["metadata"], "content_ref": f"s3://{stack.bucket}/{key}"})
    assert_finished_once(stack, "claim-1", "completed")
    assert sdwebui.generations[0].prompt == "x" * 1000


def test_comfyui_pipeline_with_input_image(stack, comfyui, image_host, start_agent) -> None:
    workflow = text_to_image_workflow(seed=3)
    workflow["11"] = {"class_type": "LoadImage",
                      "inputs": {"image": f"{image_host.url}/img-in.png"}}
    workflow["12"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["11", 0],
                                                           "vae": ["4", 2]}}
    agent = start_agent(stack, comfyui.url, runtime_type="comfyui", AGENT_ALLOW_HTTP="true",
                        AGENT_INPUT_ALLOW_ADDRESSES="127.0.0.1/32")
    stack.publish(task("cf-1", "pipeline", workflow))
    result = assert_finished_once(stack, "cf-1", "completed")
    assert result["image_url"] == [f"s3://{stack.bucket}/output/cf-1/image-0.png"]
    assert comfyui.inputs["agent-cf-1-11.png"] == image_host.png
    assert comfyui.history == {}
    assert agent.events("input_guard_relaxed")[0]["networks"] == ["127.0.0.1/32"]


def test_comfyui_failures_are_reported_with_details(stack, comfyui, start_agent) -> None:
    start_agent(stack, comfyui.url, runtime_type="comfyui")
    bad = text_to_image_workflow()
    del bad["3"]["inputs"]["model"]
    stack.publish(task("cf-bad", "pipeline", bad))
    result = assert_finished_once(stack, "cf-bad", "failed")
    assert result["error"]["code"] == "runtime_validation"
    assert result["error"]["details"]["node_errors"]["3"]["class_type"] == "KSampler"
    comfyui.fail_execution("VAEDecode", "ValueError", "bad latent")
    stack.publish(task("cf-exec", "pipeline", text_to_image_workflow()))
    failed = assert_finished_once(stack, "cf-exec", "failed")
    assert failed["error"]["code"] == "execution_error"
    assert failed["error"]["details"][0] == {"node_id": "8", "node_type": "VAEDecode",
                                             "exception_type": "ValueError",
                                             "exception_message": "bad latent"}
    assert stack.record("cf-exec")["attempts"] == 1


def test_heartbeat_keeps_a_long_task_invisible(stack, sdwebui, start_agent) -> None:
    # The visibility timeout is 4 s; the generation takes 7 s.
    sdwebui.seconds_per_image = 7
    agent = start_agent(stack, sdwebui.url, AGENT_TASK_TIMEOUT_SECONDS="30")
    stack.publish(task("long-1"))
    assert_finished_once(stack, "long-1", "completed", timeout=30)
    assert stack.record("long-1")["attempts"] == 1
    assert len(sdwebui.generations) == 1
    assert [e["receive_count"] for e in agent.events("task_received")] == [1]
    assert agent.events("heartbeat_failed") == []


def test_pipelining_prepares_the_next_task_while_one_runs(stack, sdwebui, start_agent) -> None:
    sdwebui.seconds_per_image = 1.0
    for index in range(3):
        stack.publish(task(f"pipe-{index}"))
    agent = start_agent(stack, sdwebui.url)
    for index in range(3):
        assert_finished_once(stack, f"pipe-{index}", "completed", settle=0)
    generations = sorted(sdwebui.generations, key=lambda g: g.started)
    # The runtime never waited for the agent between tasks: AWS work overlapped generation.
    gaps = [b.started - a.ended for a, b in itertools.pairwise(generations)]
    assert len(gaps) == 2 and all(gap < 0.2 for gap in gaps), gaps
    received = {e["task_id"]: e["time"] for e in agent.events("task_received")}
    finished = {e["task_id"]: e["time"] for e in agent.events("task_finished")}
    order = sorted(received, key=received.get)
    assert received[order[1]] < finished[order[0]]  # N+1 prefetched before N finished


def test_runtime_concurrency_is_configurable(stack, sdwebui, start_agent) -> None:
    sdwebui.seconds_per_image = 0.5
    for index in range(4):
        stack.publish(task(f"conc-{index}"))
    start_agent(stack, sdwebui.url, AGENT_RUNTIME_CONCURRENCY="2")
    for index in range(4):
        assert_finished_once(stack, f"conc-{index}", "completed", settle=0)
    calls = sorted(t for t, path in sdwebui.arrivals if path == "/sdapi/v1/txt2img")
    generations = sorted(sdwebui.generations, key=lambda g: g.started)
    # Two requests were in flight at once: the second arrived before the first one ended.
    assert len(calls) == 4 and calls[1] < generations[0].ended


def test_malformed_messages_never_stop_the_loop(stack, sdwebui, start_agent) -> None:
    agent = start_agent(stack, sdwebui.url)
    stack.send_raw("this is not json")
    stack.send_raw(json.dumps({"metadata": {"tasktype": "text-to-image"}, "content": {}}))
    stack.send_raw(json.dumps({"metadata": {"id": "bad-type", "tasktype": "paint"},
                               "content": {"prompt": "x"}}))
    stack.publish(task("after-bad"))
    failed = assert_finished_once(stack, "bad-type", "failed")
    assert failed["error"]["code"] == "invalid_task"
    assert 'metadata.tasktype: "paint" is not valid' in failed["error"]["message"]
    assert_finished_once(stack, "after-bad", "completed")
    assert len(agent.events("invalid_message")) == 3
    assert [r["id"] for r in stack.results()] .count("bad-type") == 1
    assert stack.dlq_bodies() == []
    assert "this is not json" not in agent.output()  # payloads are not logged


def test_health_endpoints(stack, sdwebui, start_agent) -> None:
    sdwebui.die()
    agent = start_agent(stack, sdwebui.url, wait_ready=False)
    url = f"http://127.0.0.1:{agent.health_port}"
    wait_for(lambda: _status(f"{url}/healthz") == 200, 20, "liveness")
    assert _status(f"{url}/readyz") == 503  # the runtime does not answer yet
    sdwebui.start()
    wait_for(lambda: _status(f"{url}/readyz") == 200, 20, "readiness")
    assert agent.terminate() == 0


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=1).status_code
    except requests.RequestException:
        return 0


def test_pod_is_protected_from_disruption_while_a_task_runs(stack, sdwebui, start_agent,
                                                          tmp_path) -> None:
    from tests.agent.fake_kube import FakeKubeApi

    kube = FakeKubeApi().start()
    created = time.time() - 120  # the pod was created two minutes before the agent started
    kube.pods[("sdruntime", "runtime-abc")] = {"metadata": {
        "name": "runtime-abc",
        "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))}}
    token_dir = tmp_path / "sa"
    token_dir.mkdir()
    (token_dir / "token").write_text("secret-token-value")
    (token_dir / "namespace").write_text("sdruntime")
    sdwebui.seconds_per_image = 2.0
    try:
        agent = start_agent(stack, sdwebui.url, AGENT_POD_ANNOTATION="true",
                            AGENT_KUBE_API_URL=kube.url, POD_NAME="runtime-abc",
                            AGENT_KUBE_SERVICEACCOUNT_DIR=str(token_dir))
        stack.publish(task("kube-1"))
        wait_for(lambda: kube.annotation("sdruntime", "runtime-abc") == "true", 10,
                 "the do-not-disrupt annotation")
        assert_finished_once(stack, "kube-1", "completed")
        wait_for(lambda: kube.annotation("sdruntime", "runtime-abc") is None
                 and kube.patches, 10, "the annotation to be removed")
        assert kube.tokens == {"Bearer secret-token-value"}
        assert "secret-token-value" not in agent.output()
        # The cold start is measured from the pod's creation, read from the API.
        cold = {e["milestone"]: e for e in agent.events("cold_start")}
        assert cold["first_task"]["origin"] == "pod_created"
        assert cold["first_task"]["seconds"] >= 119
        assert cold["first_task"]["agent_started_after"] >= 119
    finally:
        kube.stop()


def test_missing_claim_check_fails_once(stack, sdwebui, start_agent) -> None:
    start_agent(stack, sdwebui.url)
    metadata = task("claim-missing")["metadata"]
    stack.publish({"metadata": metadata,
                   "content_ref": f"s3://{stack.bucket}/_requests/claim-missing/none.json"})
    result = assert_finished_once(stack, "claim-missing", "failed")
    assert result["error"]["code"] == "invalid_task"
    assert "NoSuchKey" in result["error"]["message"]
    assert sdwebui.generations == []


def test_comfyui_timeout_interrupts_and_retries(stack, comfyui, start_agent) -> None:
    comfyui.seconds_per_image = 5.0
    agent = start_agent(stack, comfyui.url, runtime_type="comfyui",
                        AGENT_TASK_TIMEOUT_SECONDS="1")
    stack.publish(task("cf-slow", "pipeline", text_to_image_workflow()))
    wait_for(lambda: comfyui.interrupts, 15, "the interrupt")
    comfyui.seconds_per_image = 0.05
    assert_finished_once(stack, "cf-slow", "completed")
    assert stack.record("cf-slow")["attempts"] == 2
    assert [e["error_code"] for e in agent.events("task_retry_scheduled")] == ["runtime_timeout"]


def test_comfyui_videos_are_stored_as_videos_and_timings_agree(stack, comfyui,
                                                               start_agent) -> None:
    start_agent(stack, comfyui.url, runtime_type="comfyui")
    stack.publish(task("cf-video", "pipeline", video_workflow("clip")))
    result = assert_finished_once(stack, "cf-video", "completed")
    base = "output/cf-video"
    url = f"s3://{stack.bucket}/{base}"
    objects = stack.objects(f"{base}/")
    assert sorted(objects) == [f"{base}/image-0.webp", f"{base}/image-1.png",
                               f"{base}/result.json", f"{base}/video-0.webm"]
    assert [stack.content_type(f"{base}/{name}") for name in
            ("image-0.webp", "image-1.png", "video-0.webm")] == ["image/webp", "image/png",
                                                                 "video/webm"]
    assert result["image_url"] == [f"{url}/image-0.webp", f"{url}/image-1.png"]
    assert result["outputs"] == [
        {"url": f"{url}/image-0.webp", "content_type": "image/webp", "animated": True},
        {"url": f"{url}/image-1.png", "content_type": "image/png", "animated": True},
        {"url": f"{url}/video-0.webm", "content_type": "video/webm", "animated": True}]
    document = json.loads(objects[f"{base}/result.json"])
    record = stack.record("cf-video")
    assert document["outputs"] == record["outputs"] == result["outputs"]
    assert document["images"] == record["images"] == result["image_url"]
    recorded = {name: float(value) for name, value in record["timings"].items()}
    assert document["timings"] == recorded == result["timings"]
    assert comfyui.history == {}


def test_comfyui_sigterm_interrupts_only_its_prompt_and_deletes_its_history(
        stack, comfyui, start_agent) -> None:
    comfyui.seconds_per_image = 20  # about 3 s a node: the interrupt lands mid-node
    agent = start_agent(stack, comfyui.url, runtime_type="comfyui",
                        AGENT_SHUTDOWN_GRACE_SECONDS="1", AGENT_TASK_TIMEOUT_SECONDS="60",
                        AGENT_VISIBILITY_TIMEOUT_SECONDS="60", AGENT_HEARTBEAT_SECONDS="5")
    stack.publish(task("cf-term", "pipeline", slow_workflow("term", size=64)))
    running = wait_for(comfyui.engine.running_ids, 15, "the prompt to run")
    assert agent.terminate(timeout=60) == 0
    assert comfyui.interrupt_bodies and all(
        body == {"prompt_id": running[0]} for body in comfyui.interrupt_bodies)
    wait_for(lambda: not comfyui.engine.running_ids(), 30, "the interrupted node to end")
    assert comfyui.history == {}, "the interrupted prompt's history entry was left behind"
    assert stack.queue_counts() == (1, 0)
    assert stack.results_for("cf-term") == []
