"""Unit tests of the input-topic message: canonical hash, SNS size accounting, claim check."""

from __future__ import annotations

import hashlib
import json

from lambda_src import messages

TASK = {
    "metadata": {"id": "t1", "runtime": "sdruntime", "tasktype": "text-to-image", "prefix": "o"},
    "content": {"prompt": "猫 and a dog", "steps": 16},
}


def test_canonical_json_matches_the_contract() -> None:
    text = messages.canonical_json(TASK)
    assert text == json.dumps(TASK, sort_keys=True, separators=(",", ":"))
    assert text.isascii()
    reordered = {"content": dict(reversed(TASK["content"].items())), "metadata": TASK["metadata"]}
    assert messages.request_sha256(reordered) == messages.request_sha256(TASK)
    assert messages.request_sha256(TASK) == hashlib.sha256(text.encode()).hexdigest()


def test_attribute_size_counts_name_type_and_value() -> None:
    attributes = messages.message_attributes("sdruntime")
    assert attributes == {"runtime": {"DataType": "String", "StringValue": "sdruntime"}}
    assert messages.attributes_size(attributes) == len("runtime") + len("String") + len("sdruntime")


def test_small_task_is_inline() -> None:
    out = messages.build(TASK, "sdruntime", "abc", "bucket", 262_144)
    assert json.loads(out.message) == TASK
    assert out.message.isascii()
    assert out.claim_check_key is None and out.claim_check_body is None
    assert out.size == len(out.message) + messages.attributes_size(out.attributes)


def test_claim_check_boundary_is_exact() -> None:
    inline = messages.build(TASK, "sdruntime", "abc", "bucket", 262_144)
    at_limit = messages.build(TASK, "sdruntime", "abc", "bucket", inline.size)
    assert at_limit.claim_check_key is None
    over = messages.build(TASK, "sdruntime", "abc", "bucket", inline.size - 1)
    assert over.claim_check_key == "_requests/t1/abc.json"


def test_claim_checked_message_points_at_the_canonical_task() -> None:
    sha = messages.request_sha256(TASK)
    out = messages.build(TASK, "sdruntime", sha, "bucket", 10)
    assert json.loads(out.message) == {
        "metadata": TASK["metadata"],
        "content_ref": f"s3://bucket/_requests/t1/{sha}.json",
    }
    assert out.claim_check_body is not None
    assert json.loads(out.claim_check_body) == TASK
    # The stored bytes are the canonical form, so they hash to the key's name.
    assert hashlib.sha256(out.claim_check_body).hexdigest() == sha
    assert out.size == len(out.message) + messages.attributes_size(out.attributes)
