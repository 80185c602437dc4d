"""The contract's rules, each written once: content limits, the result message, the log line,
and the agent's defaults as the library checks them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from task_contract.content import check_content
from task_contract.delivery import LONG_POLL_SECONDS, VISIBILITY_TIMEOUT_SECONDS
from task_contract.problems import Problems
from task_contract.record import FINAL_STATUSES, STATUSES, not_final
from task_contract.result import message_attributes, message_from_record
from task_contract.task import check_task, check_v1alpha1

# The reference implementation's example requests (tests/lambda/fixtures/README.md).
REFERENCE = sorted((Path(__file__).parents[1] / "lambda" / "fixtures").glob("v1alpha*/*.json"))

# --- SD WebUI content -----------------------------------------------------------------------


def problems_of(content: dict[str, Any], tasktype: str = "text-to-image") -> list[dict]:
    problems = Problems()
    check_content(content, tasktype, "task.content", problems)
    return problems.items


@pytest.mark.parametrize(("content", "path", "message"), [
    ({"steps": "16"}, "task.content.steps", "must be an integer (got string)"),
    ({"steps": -1}, "task.content.steps", "must be an integer from 1 to 150 (got -1)"),
    ({"steps": 16.0}, "task.content.steps", "must be an integer (got 16.0)"),
    ({"width": 100_000}, "task.content.width", "must be an integer from 64 to 2048 (got 100000)"),
    ({"height": 100}, "task.content.height", "must be a multiple of 8 (got 100)"),
    ({"batch_size": 9}, "task.content.batch_size", "must be an integer from 1 to 8 (got 9)"),
    ({"n_iter": 0}, "task.content.n_iter", "must be an integer from 1 to 100 (got 0)"),
    ({"cfg_scale": 31}, "task.content.cfg_scale", "must be a number from 1 to 30 (got 31)"),
    ({"cfg_scale": True}, "task.content.cfg_scale", "must be a number (got boolean)"),
    ({"seed": 2**32}, "task.content.seed",
     "must be an integer from -1 to 4294967295 (got 4294967296)"),
    ({"denoising_strength": 1.5}, "task.content.denoising_strength",
     "must be a number from 0 to 1 (got 1.5)"),
    ({"sampler_name": 3}, "task.content.sampler_name", "must be a string (got number)"),
    ({"scheduler": ["x"]}, "task.content.scheduler", "must be a string (got array)"),
    ({"prompt": "x" * 9_000_000}, "task.content.prompt",
     "must be at most 10000 characters (got 9000000)"),
    ({"negative_prompt": None}, "task.content.negative_prompt", "must be a string (got null)"),
    ({"init_images": ["ok", 5]}, "task.content.init_images[1]",
     "must be a non-empty string: base64 image data, a data: URI or a URL (got number)"),
    ({"mask": ""}, "task.content.mask",
     "must be a non-empty string: base64 image data, a data: URI or a URL (got string)"),
    ({"alwayson_scripts": []}, "task.content.alwayson_scripts", "must be an object (got array)"),
    ({"override_settings": {"sd_model_checkpoint": 1}},
     "task.content.override_settings.sd_model_checkpoint", "must be a string (got number)"),
])
def test_each_field_rule_names_its_path(content: dict, path: str, message: str) -> None:
    assert problems_of(content) == [{"path": path, "message": message}]


def test_every_problem_is_listed_and_unknown_fields_pass() -> None:
    content = {"steps": "16", "width": 100_000, "prompt": 7, "enable_hr": "anything",
               "script_args": [1, {"x": None}], "styles": "not checked"}
    assert [p["path"] for p in problems_of(content)] == [
        "task.content.steps", "task.content.width", "task.content.prompt"]


@pytest.mark.parametrize(("content", "ok"), [
    ({"steps": 1, "width": 64, "height": 2048, "batch_size": 8, "n_iter": 100,
      "cfg_scale": 1, "seed": -1, "subseed": 4294967295, "denoising_strength": 0,
      "sampler_name": None, "scheduler": None, "prompt": "x" * 10_000}, True),
    ({"seed": None, "cfg_scale": 7.5, "denoising_strength": 1.0}, True),
    ({"steps": 151}, False),
    ({"width": 2056}, False),
])
def test_bounds_are_inclusive(content: dict, ok: bool) -> None:
    assert (problems_of(content) == []) is ok


@pytest.mark.parametrize(("tasktype", "content", "path"), [
    ("image-to-image", {}, "task.content.init_images"),
    ("image-to-image", {"init_images": []}, "task.content.init_images"),
    ("extra-single-image", {}, "task.content.image"),
    ("extra-batch-images", {"imageList": []}, "task.content.imageList"),
    ("extra-batch-images", {"imageList": [{"name": "a"}]}, "task.content.imageList[0].data"),
])
def test_image_tasks_need_their_input_image(tasktype: str, content: dict, path: str) -> None:
    assert [p["path"] for p in problems_of(content, tasktype)] == [path]


@pytest.mark.parametrize("tasktype", ["image-to-image", "extra-single-image"])
def test_image_link_counts_as_the_input_image(tasktype: str) -> None:
    assert problems_of({"alwayson_scripts": {"image_link": "https://h/x.png"}}, tasktype) == []


@pytest.mark.parametrize("path", REFERENCE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_reference_requests_pass(path: Path) -> None:
    body = json.loads(path.read_text())
    problems = Problems()
    if path.parent.name == "v1alpha2":
        metadata = body["task"]["metadata"]
        runtime_type = "comfyui" if metadata["tasktype"] == "pipeline" else "sdwebui"
        task = check_task(body["task"], "task", {metadata["runtime"]: runtime_type}, problems,
                          lambda name: "unknown")
    else:
        task = check_v1alpha1(body, lambda checkpoint: "sdruntime", lambda c: "none", problems)
    assert problems.items == []
    assert task is not None


# --- the result message ---------------------------------------------------------------------


def test_result_message_from_a_record() -> None:
    record = {"id": "r1", "runtime": "sdruntime", "status": "failed",
              "output_location": "s3://b/out/r1", "context": '{"a":1}',
              "error": {"code": "x", "message": "m", "details": []},
              "timings": {"total": 1.5}, "images": []}
    message = message_from_record(record, "b")
    assert message == {"runtime": "sdruntime", "id": "r1", "result": False, "status": "failed",
                       "image_url": [], "outputs": [],
                       "output_url": "s3://b/out/r1/result.json",
                       "context": {"a": 1}, "error": record["error"],
                       "timings": {"total": 1.5}}
    outputs = [{"url": "s3://b/out/r2/video-0.webm", "content_type": "video/webm",
                "animated": True}]
    done = {**record, "id": "r2", "status": "completed", "error": None,
            "images": [], "outputs": outputs}
    assert message_from_record(done, "b")["outputs"] == outputs
    older = {**done, "images": ["s3://b/out/r2/image-0.png"]}
    del older["outputs"]  # written before outputs were recorded
    assert message_from_record(older, "b")["outputs"] == [
        {"url": "s3://b/out/r2/image-0.png", "content_type": "image/png", "animated": False}]
    bare = message_from_record({"id": "r2", "status": "completed", "context": "not json"}, "b")
    assert (bare["output_url"], bare["context"], bare["result"]) == (
        "s3://b/output/r2/result.json", "not json", True)


def test_a_cancelled_record_gives_a_cancelled_message_without_outputs() -> None:
    record = {"id": "c1", "runtime": "sdruntime", "status": "cancelled", "prefix": "out",
              "output_location": "s3://b/out/c1", "context": '{"a":1}'}
    message = message_from_record(record, "b")
    assert message == {"runtime": "sdruntime", "id": "c1", "result": False,
                       "status": "cancelled", "image_url": [], "outputs": [],
                       "output_url": "s3://b/out/c1/result.json", "context": {"a": 1},
                       "error": None, "timings": {}}
    assert message_attributes(message) == {
        "runtime": {"DataType": "String", "StringValue": "sdruntime"},
        "status": {"DataType": "String", "StringValue": "cancelled"}}


def test_cancelled_is_final_and_the_not_final_condition_names_every_final_status() -> None:
    assert set(FINAL_STATUSES) == {"completed", "failed", "cancelled"} < set(STATUSES)
    expression, values = not_final("#s")
    assert sorted(values.values()) == sorted(FINAL_STATUSES)
    assert expression == ("attribute_not_exists(#s) OR NOT (#s IN "
                          f"({', '.join(values)}))")


# --- one log line format --------------------------------------------------------------------


def test_both_programs_write_the_same_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    from agent import logs
    from lambda_src.jsonlog import log

    log("WARNING", "lambda_event", id="t-1", skipped=None)
    logs.setup("INFO")
    logs.warning("agent_event", task_id="t-1", skipped=None)
    logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [list(line)[:3] for line in lines] == [["time", "level", "event"]] * 2
    assert [(line["level"], line["event"]) for line in lines] == [
        ("WARNING", "lambda_event"), ("WARNING", "agent_event")]
    assert all(line["time"].endswith("Z") and len(line["time"]) == 24 for line in lines)
    assert all("skipped" not in line for line in lines)


# --- the agent's defaults, as the agent reads them and as the library checks them ------------


def test_the_agent_defaults_are_the_contracts() -> None:
    from agent.config import load_config

    env = {"SQS_QUEUE_URL": "q", "SNS_TOPIC_ARN": "t", "S3_BUCKET": "b",
           "RUNTIME_TYPE": "sdwebui", "RUNTIME_NAME": "r"}
    config = load_config(env)
    assert (config.wait_time_seconds, config.visibility_timeout_seconds) == (
        LONG_POLL_SECONDS, VISIBILITY_TIMEOUT_SECONDS)
    short = load_config({**env, "AGENT_VISIBILITY_TIMEOUT_SECONDS": "40"})
    assert short.heartbeat_seconds == 10.0  # a quarter of a short visibility timeout


def test_the_library_checks_chart_values_against_the_agents_own_defaults() -> None:
    from constructs_lib.runtime import runtime_problems

    values = {"terminationGracePeriodSeconds": 690, "maxTaskSeconds": 600,
              "shutdownMarginSeconds": 30, "serviceAccount": {"name": "sa"},
              "agent": {"env": {"AGENT_VISIBILITY_TIMEOUT_SECONDS": 40}, "image": {"tag": "1"}}}
    problems = runtime_problems(values, pool=None, queue_visibility_timeout_seconds=120,
                                association={"namespace": "n", "service_account": "sa"},
                                release_namespace="n")
    # The agent heartbeats every 10 s there (a quarter of 40 s): nothing to report.
    assert problems == []
