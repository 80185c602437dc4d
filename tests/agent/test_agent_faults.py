"""The fault matrix: the agent as a subprocess against the emulator and a faulty runtime.

Every test checks that no task is lost and that each ends exactly once (one final status, one
result message), and where a task ran twice, that its outputs are identical to a clean run.
"""

from __future__ import annotations

import json
import time

import pytest

from agent.runtimes.sdwebui import derived_seed
from tests.agent.harness import Stack, assert_finished_once, task, wait_for
from tests.fakes.sdwebui import reference_images

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
CONTENT = {"prompt": "a lighthouse", "width": 64, "height": 64}


def assert_outputs_match_clean_run(stack: Stack, sdwebui, task_id: str,
                                   content: dict | None = None) -> None:
    body = {**(content or CONTENT), "seed": derived_seed(task_id, "seed"),
            "subseed": derived_seed(task_id, "subseed"), "send_images": True}
    expected = reference_images(sdwebui, body)
    stored = stack.objects(f"output/{task_id}/")
    images = [stored[k] for k in sorted(stored) if "/image-" in k]
    assert images == expected


def test_runtime_500_is_retried_and_completes(stack, sdwebui, start_agent) -> None:
    sdwebui.fail_next("/sdapi/v1/txt2img", 500)
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("f500", content=CONTENT))
    assert_finished_once(stack, "f500", "completed")
    assert stack.record("f500")["attempts"] == 2
    retry = agent.events("task_retry_scheduled")
    assert [(e["error_code"], e["receive_count"]) for e in retry] == [("runtime_error", 1)]
    assert "CUDA out of memory" in retry[0]["error"]
    retried = [e for e in agent.events() if "TasksRetried" in e]
    assert len(retried) == 1 and retried[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "TasksRetried", "Unit": "Count"}]
    assert_outputs_match_clean_run(stack, sdwebui, "f500")


def test_runtime_422_fails_once_without_retry(stack, sdwebui, start_agent) -> None:
    start_agent(stack, sdwebui.url)
    stack.publish(task("f422", content={**CONTENT, "not_a_parameter": True}))
    result = assert_finished_once(stack, "f422", "failed")
    assert result["error"]["code"] == "runtime_validation"
    assert result["error"]["details"]["detail"][0]["loc"] == ["body", "not_a_parameter"]
    assert stack.record("f422")["attempts"] == 1
    assert sdwebui.generations == []
    assert stack.dlq_bodies() == []
    doc = json.loads(stack.objects("output/f422/")["output/f422/result.json"])
    assert doc["status"] == "failed" and doc["error"]["code"] == "runtime_validation"


def test_runtime_timeout_interrupts_then_retries(stack, sdwebui, start_agent) -> None:
    sdwebui.hang_next("/sdapi/v1/txt2img")
    agent = start_agent(stack, sdwebui.url, AGENT_TASK_TIMEOUT_SECONDS="2")
    stack.publish(task("ftimeout", content=CONTENT))
    assert_finished_once(stack, "ftimeout", "completed")
    assert sdwebui.state.interrupts == 1
    assert stack.record("ftimeout")["attempts"] == 2
    assert [e["error_code"] for e in agent.events("task_retry_scheduled")] == ["runtime_timeout"]
    assert_outputs_match_clean_run(stack, sdwebui, "ftimeout")


def test_runtime_connection_refused_waits_for_the_runtime(stack, sdwebui, start_agent) -> None:
    agent = start_agent(stack, sdwebui.url)
    sdwebui.die(down_seconds=3)
    stack.publish(task("frefused", content=CONTENT))
    assert_finished_once(stack, "frefused", "completed", timeout=40)
    record = stack.record("frefused")
    assert 2 <= record["attempts"] <= 3
    assert agent.events("runtime_ready")  # it waited for the runtime to answer again
    assert_outputs_match_clean_run(stack, sdwebui, "frefused")


def test_runtime_crash_mid_task(stack, sdwebui, start_agent) -> None:
    sdwebui.crash_next("/sdapi/v1/txt2img", down_seconds=1.5)
    start_agent(stack, sdwebui.url)
    stack.publish(task("fcrash", content=CONTENT))
    assert_finished_once(stack, "fcrash", "completed", timeout=40)
    assert stack.record("fcrash")["attempts"] >= 2
    assert_outputs_match_clean_run(stack, sdwebui, "fcrash")


def test_brief_s3_outage_does_not_repeat_gpu_work(stack, sdwebui, faults, start_agent) -> None:
    rule = faults.fail("s3", "PutObject", times=3)  # one finish attempt's retries
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("fs3brief", content=CONTENT))
    assert_finished_once(stack, "fs3brief", "completed")
    assert rule.hits == 3
    assert len(sdwebui.completed_generations()) == 1
    assert stack.record("fs3brief")["attempts"] == 1
    assert agent.events("finish_step_failed")


def test_long_s3_outage_retries_the_task(stack, sdwebui, faults, start_agent) -> None:
    rule = faults.fail("s3", "PutObject", times=6)  # every finish attempt of one delivery
    start_agent(stack, sdwebui.url)
    stack.publish(task("fs3long", content=CONTENT))
    assert_finished_once(stack, "fs3long", "completed")
    assert rule.hits == 6
    assert stack.record("fs3long")["attempts"] == 2
    assert_outputs_match_clean_run(stack, sdwebui, "fs3long")


def test_sns_publish_failure_republishes_without_rerunning(stack, sdwebui, faults,
                                                           start_agent) -> None:
    faults.fail("sns", "Publish", times=6)
    agent = start_agent(stack, sdwebui.url)
    stack.send_raw(json.dumps(task("fsns", content=CONTENT)))  # SNS publishes fail for now
    assert_finished_once(stack, "fsns", "completed", timeout=40)
    assert len(sdwebui.completed_generations()) == 1
    assert agent.events("result_republished")


def test_dynamodb_failure_after_outputs(stack, sdwebui, faults, start_agent) -> None:
    # The first UpdateItem (running) passes; the final-status writes of the first delivery fail.
    faults.fail("dynamodb", "UpdateItem", times=6, skip=1)
    start_agent(stack, sdwebui.url)
    stack.publish(task("fddb", content=CONTENT))
    first = wait_for(lambda: len(stack.objects("output/fddb/")) == 2
                     and stack.objects("output/fddb/"), 20, "the first delivery's outputs")
    assert_finished_once(stack, "fddb", "completed", timeout=40)
    second = stack.objects("output/fddb/")
    assert second["output/fddb/image-0.png"] == first["output/fddb/image-0.png"]
    before = json.loads(first["output/fddb/result.json"])
    after = json.loads(second["output/fddb/result.json"])
    for doc in (before, after):
        doc.pop("timings")
    assert before == after
    assert stack.record("fddb")["attempts"] == 2
    assert_outputs_match_clean_run(stack, sdwebui, "fddb")


def test_dynamodb_failure_when_marking_running(stack, sdwebui, faults, start_agent) -> None:
    rule = faults.fail("dynamodb", "UpdateItem", times=3)
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("fddbrun", content=CONTENT))
    assert_finished_once(stack, "fddbrun", "completed")
    assert rule.hits == 3
    assert len(sdwebui.completed_generations()) == 1
    assert [e["error_code"] for e in agent.events("task_retry_scheduled")] == ["status_error"]


def test_dynamodb_failure_when_flagging_the_published_result(stack, sdwebui, faults,
                                                             start_agent) -> None:
    # UpdateItem calls: running, final status, result_published; the third one fails.
    rule = faults.fail("dynamodb", "UpdateItem", times=3, skip=2)
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("fflag", content=CONTENT))
    assert_finished_once(stack, "fflag", "completed")
    assert rule.hits == 3
    assert stack.record("fflag")["result_published"] is True
    assert len(sdwebui.completed_generations()) == 1
    assert len(agent.events("finish_step_failed")) == 1


def test_sigterm_mid_task_finishes_it_and_releases_the_prefetched_one(stack, sdwebui,
                                                                     start_agent) -> None:
    sdwebui.seconds_per_image = 2.0
    agent = start_agent(stack, sdwebui.url, AGENT_SHUTDOWN_GRACE_SECONDS="15",
                        AGENT_VISIBILITY_TIMEOUT_SECONDS="60", AGENT_HEARTBEAT_SECONDS="5")
    stack.publish(task("term-run", content=CONTENT))
    wait_for(lambda: sdwebui.generations, 10, "the first generation to start")
    stack.publish(task("term-next", content=CONTENT))
    wait_for(lambda: agent.events("task_received")[1:], 10, "the second task to be prefetched")
    assert agent.terminate() == 0
    assert_finished_once(stack, "term-run", "completed", settle=0.5, queue_empty=False)
    assert stack.record("term-run")["attempts"] == 1
    # The prefetched task was released at once, not after its 60 s visibility timeout.
    assert stack.queue_counts() == (1, 0)
    assert stack.record("term-next")["status"] == "queued"
    assert [e["task_id"] for e in agent.events("task_released")] == ["term-next"]
    sdwebui.seconds_per_image = 0.05
    start_agent(stack, sdwebui.url)
    assert_finished_once(stack, "term-next", "completed")


def test_sigterm_past_the_grace_period_interrupts_and_releases(stack, sdwebui,
                                                              start_agent) -> None:
    sdwebui.seconds_per_image = 30.0
    agent = start_agent(stack, sdwebui.url, AGENT_SHUTDOWN_GRACE_SECONDS="1",
                        AGENT_TASK_TIMEOUT_SECONDS="60", AGENT_VISIBILITY_TIMEOUT_SECONDS="60",
                        AGENT_HEARTBEAT_SECONDS="5")
    stack.publish(task("term-grace", content=CONTENT))
    wait_for(lambda: sdwebui.generations, 10, "the generation to start")
    assert agent.terminate() == 0
    assert sdwebui.state.interrupts == 1
    # the 30 s generation was cut short by the interrupt, not waited for
    (generation,) = sdwebui.state.generations
    wait_for(lambda: generation.interrupted, 10, "the generation to end interrupted")
    assert stack.queue_counts() == (1, 0)
    assert stack.results_for("term-grace") == []
    sdwebui.seconds_per_image = 0.05
    start_agent(stack, sdwebui.url)
    assert_finished_once(stack, "term-grace", "completed")
    assert stack.record("term-grace")["attempts"] == 2
    assert_outputs_match_clean_run(stack, sdwebui, "term-grace")


def test_sigkill_mid_task_a_second_agent_completes_it(stack, sdwebui, start_agent) -> None:
    sdwebui.seconds_per_image = 2.0
    first = start_agent(stack, sdwebui.url)
    stack.publish(task("killed", content=CONTENT))
    wait_for(lambda: sdwebui.generations, 10, "the generation to start")
    first.kill()
    killed_at = time.monotonic()
    sdwebui.seconds_per_image = 0.05
    second = start_agent(stack, sdwebui.url)
    assert_finished_once(stack, "killed", "completed", timeout=40)
    received = second.events("task_received")
    assert [e["receive_count"] for e in received] == [2]
    assert time.monotonic() - killed_at >= 3  # it reappeared after the visibility timeout
    assert stack.record("killed")["attempts"] == 2
    assert_outputs_match_clean_run(stack, sdwebui, "killed")


def test_duplicate_delivery_runs_the_task_once(stack, sdwebui, start_agent) -> None:
    sdwebui.seconds_per_image = 0.5
    body = task("dup", content=CONTENT)
    stack.publish(body)
    stack.publish(body)
    agent = start_agent(stack, sdwebui.url)
    assert_finished_once(stack, "dup", "completed")
    for late in (1, 2):  # late duplicates, after completion: dropped without running
        assert wait_for(lambda: stack.queue_counts() == (0, 0), 20, "an empty queue")
        before = len(agent.events("duplicate_ignored"))
        stack.publish(body)
        wait_for(lambda n=before: len(agent.events("duplicate_ignored")) == n + 1, 20,
                 f"late duplicate {late} to be ignored")
    assert wait_for(lambda: stack.queue_counts() == (0, 0), 20, "an empty queue")
    assert len(stack.results_for("dup")) == 1
    assert len(sdwebui.completed_generations()) == 1
    assert stack.record("dup")["attempts"] == 1


def test_poison_message_reaches_the_dlq_and_fails_once(stack, sdwebui, start_agent) -> None:
    sdwebui.fail_next("/sdapi/v1/txt2img", 500, times=100)
    agent = start_agent(stack, sdwebui.url)
    stack.publish(task("poison", content=CONTENT))
    result = assert_finished_once(stack, "poison", "failed", timeout=40)
    assert result["error"]["code"] == "runtime_error"
    assert "gave up after 3 deliveries" in result["error"]["message"]
    record = stack.record("poison")
    assert record["attempts"] == 3
    dlq = wait_for(stack.dlq_bodies, 15, "the message in the DLQ")
    assert json.loads(json.loads(dlq[0])["Message"])["metadata"]["id"] == "poison"
    assert len(agent.events("task_retry_scheduled")) == 2


SSRF_URLS = {
    "ssrf-imds": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "ssrf-imds-https": "https://169.254.169.254/latest/meta-data/",
    "ssrf-private": "https://10.0.0.1/x.png",
    "ssrf-file": "file:///etc/passwd",
}


def test_ssrf_inputs_are_refused(stack, sdwebui, image_host, start_agent) -> None:
    start_agent(stack, sdwebui.url)  # default configuration: https and s3 only, public only
    urls = {**SSRF_URLS, "ssrf-loopback": f"https://127.0.0.1:{image_host.port}/img.png"}
    for task_id, url in urls.items():
        stack.publish(task(task_id, "image-to-image", {**CONTENT, "init_images": [url]}))
    for task_id in urls:
        result = assert_finished_once(stack, task_id, "failed", settle=0)
        assert result["error"]["code"] == "input_refused", result
        assert stack.record(task_id)["attempts"] == 1
    assert image_host.hits() == 0
    assert sdwebui.generations == []


def test_ssrf_redirect_to_private_address_is_refused(stack, sdwebui, image_host,
                                                     start_agent) -> None:
    from tests.fakes.images import FakeImageHost

    inner = FakeImageHost(host="127.0.0.2").start()
    try:
        start_agent(stack, sdwebui.url, AGENT_ALLOW_HTTP="true",
                    AGENT_INPUT_ALLOW_ADDRESSES="127.0.0.1/32")
        targets = {"redir-loop": f"{inner.url}/img.png",
                   "redir-imds": "http://169.254.169.254/latest/meta-data/"}
        for task_id, target in targets.items():
            url = f"{image_host.url}/redirect?to={target}"
            stack.publish(task(task_id, "image-to-image", {**CONTENT, "init_images": [url]}))
        stack.publish(task("redir-ok", "image-to-image",
                           {**CONTENT, "init_images": [f"{image_host.url}/redirect?to=/img.png"]}))
        for task_id in targets:
            result = assert_finished_once(stack, task_id, "failed", settle=0)
            assert result["error"]["code"] == "input_refused"
        assert_finished_once(stack, "redir-ok", "completed", settle=0)
        assert inner.hits() == 0
        assert image_host.hits("/redirect") == 3
    finally:
        inner.stop()


def test_duplicates_on_two_agents_end_once_with_identical_outputs(stack, sdwebui,
                                                                  start_agent) -> None:
    sdwebui.seconds_per_image = 0.5
    body = task("dup2", content=CONTENT)
    first = start_agent(stack, sdwebui.url)
    second = start_agent(stack, sdwebui.url)
    stack.publish(body)
    stack.publish(body)
    assert_finished_once(stack, "dup2", "completed", settle=3)
    # Each agent may have started it once (both copies received before either finished),
    # and each that started ran one generation.
    started = first.events("task_received") + second.events("task_received")
    assert len(started) in (1, 2)
    assert len(sdwebui.completed_generations()) == len(started)
    # The record counts the attempts; the agents saw the counter rise with each start.
    assert stack.record("dup2")["attempts"] == max(e["attempt"] for e in started)
    finished = first.events("task_finished") + second.events("task_finished")
    assert len(finished) == 1  # only one agent reported it
    assert_outputs_match_clean_run(stack, sdwebui, "dup2")
