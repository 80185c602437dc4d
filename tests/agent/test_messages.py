"""Unit tests: parsing message bodies into tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.messages import InvalidMessage, parse_task, sanitise_prefix

TASK = {"metadata": {"id": "abc-1", "runtime": "sdruntime", "tasktype": "text-to-image",
                     "prefix": "out/run1", "context": {"k": [1, 2]}},
        "content": {"prompt": "a cat", "steps": 4}}


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
    ref = "s3://bucket/_requests/abc-1/0f.json"
    body = {"metadata": TASK["metadata"], "content_ref": ref}
    task = parse(body, claims={ref: json.dumps(TASK)})
    assert task.content == {"prompt": "a cat", "steps": 4}


def test_claim_check_outside_the_output_bucket_is_refused() -> None:
    body = {"metadata": TASK["metadata"], "content_ref": "s3://other/x.json"}
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert info.value.task_id == "abc-1"
    assert "output bucket" in info.value.message


@pytest.mark.parametrize(("body", "task_id", "fragment"), [
    ("not json", None, "not JSON"),
    ([1, 2], None, "JSON object"),
    ({"metadata": {"id": "x/../y", "tasktype": "text-to-image"}, "content": {}}, None,
     "metadata.id"),
    ({"metadata": {"id": "ok1", "tasktype": "pipeline"}, "content": {}}, "ok1",
     "metadata.tasktype must be one of"),
    ({"metadata": {"id": "ok2", "tasktype": "text-to-image", "runtime": "other"},
      "content": {}}, "ok2", "serves runtime 'sdruntime'"),
    ({"metadata": {"id": "ok3", "tasktype": "text-to-image", "prefix": "../etc"},
      "content": {}}, "ok3", "metadata.prefix"),
    ({"metadata": {"id": "ok4", "tasktype": "text-to-image"}, "content": "x"}, "ok4",
     "'content' must be a JSON object"),
])
def test_invalid_bodies_name_the_problem_and_the_id_when_known(body, task_id, fragment) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert info.value.task_id == task_id
    assert fragment in info.value.message
    assert info.value.permanent


def test_all_problems_are_reported_together() -> None:
    body = {"metadata": {"id": "ok5", "tasktype": "nope", "prefix": "/abs"}, "content": []}
    with pytest.raises(InvalidMessage) as info:
        parse(body)
    assert len(info.value.details) == 3


def test_legacy_v1alpha1_body() -> None:
    body = {"prompt": "a ship", "steps": 4,
            "alwayson_scripts": {"task": "image-to-image", "id_task": "legacy-1",
                                 "sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors",
                                 "save_dir": "legacy", "image_link": "s3://in/x.png",
                                 "controlnet": {"args": []}}}
    task = parse(body)
    assert (task.id, task.tasktype, task.prefix, task.source) == (
        "legacy-1", "image-to-image", "legacy", "v1alpha1")
    assert task.checkpoint == "v1-5-pruned-emaonly.safetensors"
    assert task.content == {"prompt": "a ship", "steps": 4, "init_images": ["s3://in/x.png"],
                            "alwayson_scripts": {"controlnet": {"args": []}}}


def test_checkpoint_named_in_override_settings() -> None:
    body = json.loads(json.dumps(TASK))
    body["content"]["override_settings"] = {"sd_model_checkpoint": "sd_xl_turbo_1.0"}
    assert parse(body).checkpoint == "sd_xl_turbo_1.0"


@pytest.mark.parametrize(("prefix", "expected"), [
    (None, "output"), ("", "output"), ("a/b", "a/b"), ("a/b/", "a/b")])
def test_prefix_sanitising(prefix, expected) -> None:
    assert sanitise_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["/a", "a/../b", "a//b", "..", 5, "a\\b"])
def test_bad_prefixes(prefix) -> None:
    with pytest.raises(ValueError):
        sanitise_prefix(prefix)
