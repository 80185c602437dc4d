"""Unit tests: parsing message bodies into tasks (the contract's rules, applied by the agent)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.messages import InvalidMessage, parse_task

TASK = {"metadata": {"id": "abc-1", "runtime": "sdruntime", "tasktype": "text-to-image",
                     "prefix": "out/run1", "context": {"k": [1, 2]}},
        "content": {"prompt": "a cat", "steps": 4}}
CLAIM = "s3://bucket/_requests/abc-1/0f.json"


def parse(body: Any, runtime_type: str = "sdwebui", claims: dict[str, str] | None = None):
    text = body if isinstance(body, str) else json.dumps(body)

    def load(url: str) -> str:
        return (claims or {})[url]

    return parse_task(text, runtime_type, "sdruntime", load, "bucket")


def test_raw_and_sns_enveloped_bodies_give_the_same_task() -> None:
    raw = parse(TASK)
    enveloped = parse({"Type": "Notification", "MessageId": "m", "TopicArn": "arn",
                       "Message": json.dumps(TASK)})
    assert raw == enveloped
    assert raw.id == "abc-1" and raw.prefix == "out/run1" and raw.context == {"k": [1, 2]}
    assert raw.key("image-0.png") == "out/run1/abc-1/image-0.png"


def test_claim_checked_content_is_loaded_from_the_output_bucket() -> None:
    body = {"metadata": TASK["metadata"], "content_ref": CLAIM}
    task = parse(body, claims={CLAIM: json.dumps(TASK)})
    assert task.content == {"prompt": "a cat", "steps": 4}


@pytest.mark.parametrize("ref", [
    "s3://other/_requests/abc-1/0f.json",  # another bucket
    "s3://bucket/x.json",  # not a claim check
    "s3://bucket/output/abc-1/result.json",  # an output
    "s3://bucket/_requests/other-task/0f.json",  # another task's request
    "s3://bucket/_requests/abc-1/",
    "https://bucket.s3.amazonaws.com/_requests/abc-1/0f.json",
    5,
])
def test_claim_check_outside_the_tasks_own_claim_checks_is_refused(ref: Any) -> None:
    body = {"metadata": TASK["metadata"], "content_ref": ref}
    with pytest.raises(InvalidMessage) as info:
        parse(body, claims={ref: json.dumps(TASK)} if isinstance(ref, str) else None)
    assert info.value.task_id == "abc-1"
    assert "output bucket" in info.value.message
    assert info.value.details == [{"path": "content_ref", "message": info.value.details[0][
        "message"]}]


def test_claimed_content_is_checked_like_inline_content() -> None:
    stored = {"metadata": TASK["metadata"], "content": {"prompt": "a cat", "steps": "16"}}
    with pytest.raises(InvalidMessage) as info:
        parse({"metadata": TASK["metadata"], "content_ref": CLAIM},
              claims={CLAIM: json.dumps(stored)})
    assert info.value.details == [{"path": "content.steps",
                                   "message": "must be an integer (got string)"}]


def test_claim_check_of_another_task_is_refused() -> None:
    stored = {"metadata": {**TASK["metadata"], "id": "someone-else"}, "content": {}}
    with pytest.raises(InvalidMessage, match="belongs to task"):
        parse({"metadata": TASK["metadata"], "content_ref": CLAIM},
              claims={CLAIM: json.dumps(stored)})


@pytest.mark.parametrize(("body", "task_id", "fragment"), [
    ("not json", None, "not valid JSON"),
    ('{"metadata": {"id": "n1"}, "content": {"steps": NaN}}', None, "NaN is not valid JSON"),
    ("[" * 70 + "]" * 70, None, "nests deeper than 64 levels"),
    ([1, 2], None, "JSON object"),
    ({"metadata": {"id": "x/../y", "tasktype": "text-to-image", "runtime": "sdruntime"},
      "content": {}}, None, "metadata.id: must be 1-64 characters"),
    ({"metadata": {"id": "a\n", "tasktype": "text-to-image", "runtime": "sdruntime"},
      "content": {}}, None, "metadata.id: must be 1-64 characters"),
    ({"metadata": {"id": "ok1", "tasktype": "pipeline", "runtime": "sdruntime"}, "content": {}},
     "ok1", "metadata.tasktype: \"pipeline\" is not valid for runtime 'sdruntime' (sdwebui)"),
    ({"metadata": {"id": "ok2", "tasktype": "text-to-image", "runtime": "other"},
      "content": {}}, "ok2", "serves runtime 'sdruntime'"),
    ({"metadata": {"id": "ok3", "tasktype": "text-to-image", "runtime": "sdruntime",
                   "prefix": "../etc"}, "content": {}}, "ok3", "metadata.prefix"),
    ({"metadata": {"id": "ok4", "tasktype": "text-to-image", "runtime": "sdruntime"},
      "content": "x"}, "ok4", "content: must be an object (got string)"),
    ({"metadata": {"id": "ok5", "tasktype": "text-to-image"}, "content": {}}, "ok5",
     "metadata.runtime: is required"),
])
def test_invalid_bodies_name_the_problem_and_the_id_when_known(body, task_id, fragment) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert info.value.task_id == task_id
    assert fragment in info.value.message
    assert info.value.permanent


def test_all_problems_are_reported_together_with_their_paths() -> None:
    body = {"metadata": {"id": "ok5", "tasktype": "nope", "prefix": "/abs"}, "content": []}
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert [d["path"] for d in info.value.details] == [
        "metadata.runtime", "metadata.tasktype", "metadata.prefix", "content"]


@pytest.mark.parametrize(("prefix", "path"), [
    # Accepted by the agent before it shared ingest's rules; each could reach S3.
    ("_requests/abc-1", "metadata.prefix"),  # claim-checked request bodies
    ("_requests", "metadata.prefix"),
    ("a b", "metadata.prefix"),
    ("out(1)", "metadata.prefix"),
    ("", "metadata.prefix"),
    (" out", "metadata.prefix"),
])
def test_prefixes_ingest_refuses_are_refused(prefix: str, path: str) -> None:
    body = json.loads(json.dumps(TASK))
    body["metadata"]["prefix"] = prefix
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert [d["path"] for d in info.value.details] == [path]


@pytest.mark.parametrize(("prefix", "expected"), [
    (None, "output"), ("a/b", "a/b"), ("a/b/", "a/b"), ("x/_requests", "x/_requests")])
def test_prefix_normalising(prefix, expected) -> None:
    body = json.loads(json.dumps(TASK))
    body["metadata"]["prefix"] = prefix
    assert parse(body).prefix == expected


@pytest.mark.parametrize(("content", "paths"), [
    ({"steps": "16"}, ["content.steps"]),
    ({"steps": -1, "width": 100_000}, ["content.steps", "content.width"]),
    ({"prompt": "x" * 10_001}, ["content.prompt"]),
    ({"init_images": "s3://in/a.png"}, ["content.init_images"]),
])
def test_sdwebui_content_is_checked(content: dict[str, Any], paths: list[str]) -> None:
    body = json.loads(json.dumps(TASK))
    body["content"] = content
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert [d["path"] for d in info.value.details] == paths


def test_comfyui_workflow_is_checked() -> None:
    body = {"metadata": {**TASK["metadata"], "tasktype": "pipeline"},
            "content": {"3": {"inputs": {}}}}
    with pytest.raises(InvalidMessage) as info:
        parse(body, runtime_type="comfyui")
    assert [d["path"] for d in info.value.details] == ["content.3.class_type"]


def test_legacy_v1alpha1_body() -> None:
    body = {"prompt": "a ship", "steps": 4,
            "alwayson_scripts": {"task": "image-to-image", "id_task": "legacy-1",
                                 "sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors",
                                 "save_dir": "legacy", "image_link": "s3://in/x.png",
                                 "controlnet": {"args": []}}}
    task = parse(body)
    assert (task.id, task.tasktype, task.prefix, task.source, task.context) == (
        "legacy-1", "image-to-image", "legacy", "v1alpha1", {})
    assert task.checkpoint == "v1-5-pruned-emaonly.safetensors"
    # The routing keys are not WebUI script arguments: removed before the WebUI is called.
    assert task.content == {"prompt": "a ship", "steps": 4, "init_images": ["s3://in/x.png"],
                            "alwayson_scripts": {"controlnet": {"args": []}}}
    assert parse({"task": body}) == task  # the early reference clients' wrapped form


def test_legacy_body_on_a_comfyui_queue_is_refused() -> None:
    body = {"prompt": "a ship", "alwayson_scripts": {
        "task": "text-to-image", "id_task": "legacy-2", "sd_model_checkpoint": "m"}}
    with pytest.raises(InvalidMessage) as info:
        parse(body, runtime_type="comfyui")
    assert info.value.task_id == "legacy-2"
    assert info.value.details[0]["path"] == "alwayson_scripts.sd_model_checkpoint"


def test_older_image_link_form_of_v1alpha2_fills_init_images() -> None:
    body = json.loads(json.dumps(TASK))
    body["metadata"]["tasktype"] = "image-to-image"
    body["content"]["alwayson_scripts"] = {"image_link": "https://h/cat.png"}
    assert parse(body).content == {"prompt": "a cat", "steps": 4,
                                   "init_images": ["https://h/cat.png"]}


def test_checkpoint_named_in_override_settings() -> None:
    body = json.loads(json.dumps(TASK))
    body["content"]["override_settings"] = {"sd_model_checkpoint": "sd_xl_turbo_1.0"}
    assert parse(body).checkpoint == "sd_xl_turbo_1.0"
