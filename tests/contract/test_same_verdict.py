"""Ingest and the agent reach the same verdict on the same task (hypothesis).

The same generated metadata (ids, runtimes, task types, prefixes, contexts, webhooks),
contents and legacy (v1alpha1) bodies go to the ingest validation (``POST /v1alpha2`` and
``/v1alpha1`` bodies) and to the agent's message parser (the same task as a queue
message). Both must accept or both refuse, and an accepted task must be the same normalised
task: id, runtime, task type and prefix. Anything one side lets through and the other
refuses is a task that can reach S3 without passing ingest's rules (a message published
straight to the topic).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.messages import InvalidMessage, parse_task
from lambda_src import validation
from lambda_src.api import ApiError
from lambda_src.config import Runtime

RUNTIME = "sdruntime"
# One runtime on each side: ingest knows it as configured, the agent serves its queue. A
# dynamic sdwebui runtime takes every v1alpha1 checkpoint, as the agent's queue does.
SIDES = {
    "sdwebui": Runtime(name=RUNTIME, type="sdwebui", dynamic_model=True),
    "comfyui": Runtime(name=RUNTIME, type="comfyui"),
}
ABSENT = object()


def _no_claim_check(url: str) -> str:
    raise AssertionError(f"no claim check expected, got {url}")


def ingest_verdict(route: str, body: Any, runtime_type: str) -> tuple[str, ...] | None:
    runtimes = {RUNTIME: SIDES[runtime_type]}
    check = validation.v1alpha2 if route == "v1alpha2" else validation.v1alpha1
    try:
        task = check(body, runtimes)
    except ApiError as err:
        assert err.status == 400
        return None
    return task.id, task.runtime, task.tasktype, task.prefix


def agent_verdict(message: Any, runtime_type: str) -> tuple[str, ...] | None:
    try:
        task = parse_task(json.dumps(message), runtime_type, RUNTIME, _no_claim_check, "bucket")
    except InvalidMessage as exc:
        assert exc.permanent and exc.details
        return None
    return task.id, task.runtime, task.tasktype, task.prefix


# --- strategies ---------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False,
                                                                     allow_infinity=False)
json_values = st.recursive(
    scalars | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.sampled_from(["", "a b", "a\n", "x" * 65, "../x", "é", "a/b", "a.b"]),
    scalars,
)
segments = st.from_regex(r"[A-Za-z0-9._-]{1,10}", fullmatch=True)
prefixes = st.one_of(
    st.lists(segments, min_size=1, max_size=3).map("/".join),
    st.lists(segments, min_size=1, max_size=3).map(lambda s: "/".join(s) + "/"),
    st.sampled_from(["", "/", "_requests", "_requests/x", "x/_requests", "a b", "out(1)",
                     "a//b", "/abs", "..", "a/../b", ".", "a\\b", "x" * 513, " out", "out ",
                     "o:1", "a=b", "@x", "a+b"]),
    st.text(max_size=12),
    scalars,
)
tasktypes = st.sampled_from(["text-to-image", "image-to-image", "extra-single-image",
                             "extra-batch-images", "pipeline", "", "txt2img"]) | scalars
runtimes = st.sampled_from([RUNTIME, "other", ""]) | scalars
IMAGE = "https://example.com/in.png"
webui_values = {
    "steps": st.sampled_from([1, 16, 150, 0, 151, -1, "16", 1.5, True, None]),
    "width": st.sampled_from([64, 512, 2048, 100, 2056, 100_000, "512", 56]),
    "cfg_scale": st.sampled_from([1, 7.5, 30, 0.5, 31, "7"]),
    "seed": st.sampled_from([-1, 0, 2**32 - 1, 2**32, -2, None, "5"]),
    "denoising_strength": st.sampled_from([0, 0.5, 1, 1.01, -0.1]),
    "sampler_name": st.sampled_from(["Euler a", None, 3]),
    "prompt": st.sampled_from(["a dog", "", "x" * 10_000, "x" * 10_001, None, 5]),
    "init_images": st.sampled_from([[IMAGE], [], IMAGE, [5], None]),
    "image": st.sampled_from([IMAGE, "", 5]),
    "imageList": st.sampled_from([[{"data": IMAGE}], [], [{"data": 5}], ["x"]]),
    "mask": st.sampled_from([IMAGE, None, 7]),
    "alwayson_scripts": st.sampled_from([{}, {"image_link": IMAGE}, {"image_link": ""}, []]),
    "override_settings": st.sampled_from([{"sd_model_checkpoint": "m"}, "m", {}]),
}
webui_contents = st.fixed_dictionaries({}, optional=webui_values)
workflows = st.one_of(
    st.just({"9": {"class_type": "SaveImage", "inputs": {}}}),
    st.dictionaries(st.text(min_size=1, max_size=3),
                    st.fixed_dictionaries({}, optional={"class_type": st.text(max_size=5),
                                                        "inputs": json_values}),
                    max_size=3),
)
contents = st.one_of(webui_contents, workflows, json_values)
webhooks = st.one_of(
    st.fixed_dictionaries(
        {"url": st.sampled_from(["https://hooks.example.com/x", "http://hooks.example.com/x",
                                 "https://10.0.0.1/x", "https://[::1]/x", "https://u@h.io/",
                                 "https://localhost/x", "https:///x", "", 5])},
        optional={"events": st.sampled_from([["completed"], [], ["done"], "failed", None,
                                             ["failed", "cancelled", "failed"]]),
                  "extra": st.just(1)}),
    st.sampled_from(["https://hooks.example.com/x", [], None]),
    json_values,
)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(ABSENT) | strategy


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A task ``{"metadata", "content"}``: each metadata key absent, valid or not."""
    metadata: dict[str, Any] = {}
    for key, strategy in (("id", ids), ("runtime", runtimes), ("tasktype", tasktypes),
                          ("prefix", prefixes), ("context", json_values),
                          ("webhook", webhooks)):
        value = draw(_optional(strategy))
        if value is not ABSENT:
            metadata[key] = value
    message: dict[str, Any] = {"metadata": metadata}
    content = draw(_optional(contents))
    if content is not ABSENT:
        message["content"] = content
    return message


@st.composite
def legacy_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A v1alpha1 body: routing keys in ``alwayson_scripts``, each absent, valid or not."""
    scripts: dict[str, Any] = {}
    for key, strategy in (("task", tasktypes), ("id_task", ids),
                          ("sd_model_checkpoint", st.sampled_from(["m.safetensors", ""])
                           | scalars),
                          ("save_dir", prefixes), ("image_link", st.sampled_from([IMAGE, ""])
                                                   | scalars), ("uid", json_values)):
        value = draw(_optional(strategy))
        if value is not ABSENT:
            scripts[key] = value
    body = {**draw(webui_contents), "alwayson_scripts": scripts}
    return {"task": body} if draw(st.booleans()) else body


# --- the properties -------------------------------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(message=messages(), runtime_type=st.sampled_from(sorted(SIDES)))
@example(message={"metadata": {"id": "a", "runtime": RUNTIME, "tasktype": "text-to-image",
                               "prefix": "_requests/other-task"}, "content": {}},
         runtime_type="sdwebui")
def test_tasks_get_the_same_verdict(message: dict[str, Any], runtime_type: str) -> None:
    assert agent_verdict(message, runtime_type) == ingest_verdict(
        "v1alpha2", {"task": message}, runtime_type)


@settings(max_examples=1000, deadline=None)
@given(body=legacy_bodies(), runtime_type=st.sampled_from(sorted(SIDES)))
def test_legacy_bodies_get_the_same_verdict(body: dict[str, Any], runtime_type: str) -> None:
    assert agent_verdict(body, runtime_type) == ingest_verdict("v1alpha1", body, runtime_type)


def _valid(prefix: Any) -> dict[str, Any]:
    metadata = {"id": "t-1", "runtime": RUNTIME, "tasktype": "text-to-image", "prefix": prefix}
    return {"metadata": metadata, "content": {"prompt": "a dog", "steps": 16}}


@pytest.mark.parametrize("prefix", ["_requests/other-task", "_requests", "a b", "out(1)", "",
                                    "o:1", " out"])
def test_prefixes_the_agent_used_to_accept_are_refused_by_both(prefix: str) -> None:
    assert ingest_verdict("v1alpha2", {"task": _valid(prefix)}, "sdwebui") is None
    assert agent_verdict(_valid(prefix), "sdwebui") is None


@pytest.mark.parametrize("content", [{"steps": "16"}, {"steps": -1}, {"width": 100_000},
                                     {"prompt": "x" * 9_000_000}])
def test_content_ingest_refuses_is_refused_by_the_agent(content: dict[str, Any]) -> None:
    message = {**_valid("output"), "content": content}
    assert ingest_verdict("v1alpha2", {"task": message}, "sdwebui") is None
    assert agent_verdict(message, "sdwebui") is None


def test_a_valid_task_is_the_same_task_on_both_sides() -> None:
    message = _valid("out/run-1/")
    expected = ("t-1", RUNTIME, "text-to-image", "out/run-1")
    assert ingest_verdict("v1alpha2", {"task": message}, "sdwebui") == expected
    assert agent_verdict(message, "sdwebui") == expected
