"""Unit tests of request validation and the v1alpha1 mapping (pure functions, no AWS)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lambda_src import config, validation
from lambda_src.api import ApiError
from task_contract.metadata import check_id, check_prefix

from .support import RUNTIMES, fixture, t2i

CONFIGURED = config.parse_runtimes(json.dumps(RUNTIMES), [])


def problems_of(fn: Any, body: Any) -> list[dict[str, str]]:
    with pytest.raises(ApiError) as caught:
        fn(body, CONFIGURED)
    err = caught.value
    assert (err.status, err.code) == (400, "invalid_request")
    if len(err.details) <= validation.MAX_DETAILS:
        noun = "problem" if len(err.details) == 1 else "problems"
        assert err.message == f"the request has {len(err.details)} {noun}"
    return err.details


def paths_of(fn: Any, body: Any) -> list[str]:
    return [d["path"] for d in problems_of(fn, body)]


# --- ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "A-z_0-9", "x" * 64, "123", "-", "_"])
def test_valid_ids(value: str) -> None:
    problems = validation.Problems()
    assert check_id(value, "p", problems) == value
    assert not problems


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "1-64 characters"),
        ("x" * 65, "1-64 characters"),
        ("a b", "1-64 characters"),
        ("a/b", "1-64 characters"),
        ("a.b", "1-64 characters"),
        ("../etc", "1-64 characters"),
        ("é", "1-64 characters"),
        ("a\n", "1-64 characters"),
        (123, "must be a string (got number)"),
        (True, "must be a string (got boolean)"),
        ([], "must be a string (got array)"),
        (None, "is required"),
    ],
)
def test_invalid_ids(value: Any, fragment: str) -> None:
    problems = validation.Problems()
    assert check_id(value, "task.metadata.id", problems) is None
    assert problems.items == [{"path": "task.metadata.id", "message": problems.items[0]["message"]}]
    assert fragment in problems.items[0]["message"]


def test_long_invalid_values_are_truncated_in_messages() -> None:
    problems = validation.Problems()
    check_id("!" * 10_000, "id", problems)
    assert len(problems.items[0]["message"]) < 150


# --- prefixes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "output"),
        ("output", "output"),
        ("output/", "output"),
        ("output///", "output"),
        ("a/b/c", "a/b/c"),
        ("my-prefix_1.0/2024-01-01", "my-prefix_1.0/2024-01-01"),
        ("...", "..."),
        ("a..b/c", "a..b/c"),
        ("x" * 512, "x" * 512),
    ],
)
def test_prefix_normalisation(value: Any, expected: str) -> None:
    problems = validation.Problems()
    assert check_prefix(value, "p", problems) == expected
    assert not problems


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "must not be empty"),
        ("/", "must not be empty"),
        ("/output", "without a leading '/'"),
        ("//output", "without a leading '/'"),
        ("..", "'..' segments"),
        ("a/../b", "'..' segments"),
        ("a/..", "'..' segments"),
        ("./a", "'..' segments"),
        ("a/./b", "'..' segments"),
        ("a//b", "empty"),
        ("a b", "may contain only"),
        ("a\\b", "may contain only"),
        ("a%2e%2e", "may contain only"),
        ("a?b", "may contain only"),
        ("a#b", "may contain only"),
        ("a\nb", "may contain only"),
        ("a\x00b", "may contain only"),
        ("ünïcode", "may contain only"),
        ("s3://bucket/x", "empty"),
        ("s3:bucket", "may contain only"),
        ("~/x", "may contain only"),
        ("x" * 513, "at most 512"),
        ("_requests", "reserved"),
        ("_requests/abc", "reserved"),
        (42, "must be a string (got number)"),
        ({"a": 1}, "must be a string (got object)"),
    ],
)
def test_invalid_prefixes(value: Any, fragment: str) -> None:
    problems = validation.Problems()
    assert check_prefix(value, "task.metadata.prefix", problems) is None
    assert len(problems.items) == 1
    assert fragment in problems.items[0]["message"]


# --- v1alpha2 ---------------------------------------------------------------------------------


def test_valid_task_is_normalised() -> None:
    body = t2i("abc", prefix="out/sub/", context={"user": [1, 2]}, extra="kept")
    sub = validation.v1alpha2(body, CONFIGURED)
    assert (sub.id, sub.runtime, sub.tasktype, sub.prefix, sub.source) == (
        "abc",
        "sdruntime",
        "text-to-image",
        "out/sub",
        "v1alpha2",
    )
    assert sub.task == {
        "metadata": {
            "id": "abc",
            "runtime": "sdruntime",
            "tasktype": "text-to-image",
            "prefix": "out/sub",
            "context": {"user": [1, 2]},
            "extra": "kept",
        },
        "content": {"prompt": "A dog", "steps": 16},
    }
    assert sub.has_context and sub.context == {"user": [1, 2]}


def test_absent_and_null_prefix_default_to_output() -> None:
    absent = t2i()
    del absent["task"]["metadata"]["prefix"]
    assert validation.v1alpha2(absent, CONFIGURED).task["metadata"]["prefix"] == "output"
    assert validation.v1alpha2(t2i(prefix=None), CONFIGURED).prefix == "output"


def test_input_is_not_mutated() -> None:
    body = t2i(prefix="a/")
    before = copy.deepcopy(body)
    validation.v1alpha2(body, CONFIGURED)
    assert body == before


@pytest.mark.parametrize("context", ["", 0, None, [], {"a": {"b": [None, True, 1.5]}}, "text"])
def test_any_json_context_is_kept(context: Any) -> None:
    sub = validation.v1alpha2(t2i(context=context), CONFIGURED)
    assert sub.task["metadata"]["context"] == context
    assert sub.has_context


def test_absent_context_stays_absent() -> None:
    sub = validation.v1alpha2(t2i(), CONFIGURED)
    assert "context" not in sub.task["metadata"]
    assert not sub.has_context


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [
        ([], "", "the body must be a JSON object (got array)"),
        ("task", "", "got string"),
        (None, "", "got null"),
        ({}, "task", "is required"),
        ({"task": None}, "task", "is required"),
        ({"task": []}, "task", "must be an object (got array)"),
        ({"task": {"content": {}}}, "task.metadata", "is required"),
        ({"task": {"metadata": "x", "content": {}}}, "task.metadata", "got string"),
    ],
)
def test_structural_problems(body: Any, path: str, fragment: str) -> None:
    details = problems_of(validation.v1alpha2, body)
    assert details[0]["path"] == path
    assert fragment in details[0]["message"]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda m: m.pop("id"), "task.metadata.id", "is required"),
        (lambda m: m.update(id="bad id"), "task.metadata.id", "1-64 characters"),
        (lambda m: m.pop("runtime"), "task.metadata.runtime", "is required"),
        (lambda m: m.update(runtime=""), "task.metadata.runtime", "must not be empty"),
        (lambda m: m.update(runtime=7), "task.metadata.runtime", "must be a string"),
        (lambda m: m.update(runtime="nope"), "task.metadata.runtime", 'unknown runtime "nope"'),
        (lambda m: m.pop("tasktype"), "task.metadata.tasktype", "is required"),
        (lambda m: m.update(tasktype="txt2img"), "task.metadata.tasktype", "not valid"),
        (lambda m: m.update(tasktype="pipeline"), "task.metadata.tasktype", "(sdwebui)"),
        (lambda m: m.update(tasktype=["x"]), "task.metadata.tasktype", "must be a string"),
        (lambda m: m.update(prefix="../x"), "task.metadata.prefix", "'..' segments"),
        (lambda m: m.update(context="x" * 70_000), "task.metadata", "at most 65536"),
        (lambda m: m.update(image_link="y" * 70_000), "task.metadata", "at most 65536"),
    ],
)
def test_each_metadata_rule(mutate: Any, path: str, fragment: str) -> None:
    body = t2i()
    mutate(body["task"]["metadata"])
    details = problems_of(validation.v1alpha2, body)
    assert [d["path"] for d in details] == [path]
    assert fragment in details[0]["message"]


def test_unknown_runtime_lists_configured_runtimes() -> None:
    (detail,) = problems_of(validation.v1alpha2, t2i(runtime="sd3"))
    assert detail["message"] == (
        'unknown runtime "sd3"; configured: sd1-5-comfyui, sd21, sdruntime, sdwebui'
    )


@pytest.mark.parametrize(
    ("runtime", "tasktype", "ok"),
    [
        ("sdruntime", "text-to-image", True),
        ("sdruntime", "image-to-image", True),
        ("sdruntime", "extra-single-image", True),
        ("sdruntime", "extra-batch-images", True),
        ("sdruntime", "pipeline", False),
        ("sdwebui", "pipeline", False),
        ("sd1-5-comfyui", "pipeline", True),
        ("sd1-5-comfyui", "text-to-image", False),
        ("sd1-5-comfyui", "extra-batch-images", False),
    ],
)
def test_tasktype_must_fit_runtime_type(runtime: str, tasktype: str, ok: bool) -> None:
    body = t2i(runtime=runtime, tasktype=tasktype)
    if tasktype == "pipeline":
        body["task"]["content"] = {"1": {"class_type": "SaveImage", "inputs": {}}}
    else:  # every input image field, so that each SD WebUI task type has its input
        body["task"]["content"].update(init_images=["s3://in/a.png"], image="s3://in/b.png",
                                       imageList=[{"data": "s3://in/c.png"}])
    if ok:
        assert validation.v1alpha2(body, CONFIGURED).tasktype == tasktype
    else:
        assert paths_of(validation.v1alpha2, body) == ["task.metadata.tasktype"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "is required"),
        ([], "must be an object (got array)"),
        ("prompt", "must be an object (got string)"),
        (1, "must be an object (got number)"),
    ],
)
def test_content_must_be_an_object(content: Any, fragment: str) -> None:
    body = t2i()
    body["task"]["content"] = content
    (detail,) = problems_of(validation.v1alpha2, body)
    assert detail["path"] == "task.content"
    assert fragment in detail["message"]


def test_missing_content_is_reported() -> None:
    body = t2i()
    del body["task"]["content"]
    assert paths_of(validation.v1alpha2, body) == ["task.content"]


def test_every_problem_is_listed_in_document_order() -> None:
    body = {
        "task": {
            "metadata": {"id": "no spaces please", "tasktype": "paint", "prefix": "/abs"},
            "content": "not an object",
        }
    }
    assert paths_of(validation.v1alpha2, body) == [
        "task.metadata.id",
        "task.metadata.runtime",
        "task.metadata.tasktype",
        "task.metadata.prefix",
        "task.content",
    ]


def test_tasktype_checked_against_all_types_when_runtime_is_unknown() -> None:
    ok = t2i(runtime="nope", tasktype="pipeline")
    ok["task"]["content"] = {"1": {"class_type": "X", "inputs": {}}}
    assert paths_of(validation.v1alpha2, ok) == ["task.metadata.runtime"]
    assert paths_of(validation.v1alpha2, t2i(runtime="nope", tasktype="x")) == [
        "task.metadata.runtime",
        "task.metadata.tasktype",
    ]


# --- ComfyUI workflows -----------------------------------------------------------------------


def pipeline(content: Any) -> dict[str, Any]:
    return {
        "task": {
            "metadata": {"id": "p1", "runtime": "sd1-5-comfyui", "tasktype": "pipeline"},
            "content": content,
        }
    }


def test_reference_workflow_is_valid() -> None:
    sub = validation.v1alpha2(fixture("v1alpha2/pipeline.json"), CONFIGURED)
    assert sub.tasktype == "pipeline"
    assert sub.prefix == "output"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({}, [("task.content", "API format")]),
        (
            {"nodes": [], "links": [], "version": 0.4},
            [("task.content", "Save (API Format)")],
        ),
        ({"3": "KSampler"}, [("task.content.3", "node object (got string)")]),
        ({"3": {"inputs": {}}}, [("task.content.3.class_type", "is required")]),
        ({"3": {"class_type": "", "inputs": {}}}, [("task.content.3.class_type", "is required")]),
        ({"3": {"class_type": "K"}}, [("task.content.3.inputs", "(got nothing)")]),
        ({"3": {"class_type": "K", "inputs": [1]}}, [("task.content.3.inputs", "(got array)")]),
        (
            {"1": 5, "2": {"class_type": 3, "inputs": None}},
            [
                ("task.content.1", "got number"),
                ("task.content.2.class_type", "is required"),
                ("task.content.2.inputs", "got null"),
            ],
        ),
    ],
)
def test_workflow_problems(content: Any, expected: list[tuple[str, str]]) -> None:
    details = problems_of(validation.v1alpha2, pipeline(content))
    assert [d["path"] for d in details] == [path for path, _ in expected]
    for detail, (_, fragment) in zip(details, expected, strict=True):
        assert fragment in detail["message"]


def test_long_node_ids_are_truncated_in_paths() -> None:
    (detail,) = problems_of(validation.v1alpha2, pipeline({"n" * 5000: 1}))
    assert detail["path"] == "task.content." + "n" * 61 + "..."


def test_sdwebui_content_is_not_checked_as_a_workflow() -> None:
    body = t2i()
    body["task"]["content"] = {"3": "anything"}
    assert validation.v1alpha2(body, CONFIGURED).task["content"] == {"3": "anything"}


def test_problem_list_is_capped() -> None:
    with pytest.raises(ApiError) as caught:
        validation.v1alpha2(pipeline({str(i): i for i in range(500)}), CONFIGURED)
    assert caught.value.message == "the request has 500 problems"
    details = caught.value.details
    assert len(details) == validation.MAX_DETAILS + 1
    assert details[0]["path"] == "task.content.0"
    assert details[-1] == {"path": "", "message": "400 more problems not shown"}


# --- v1alpha1 ---------------------------------------------------------------------------------


def test_v1alpha1_maps_to_the_task_shape() -> None:
    body = fixture("v1alpha1/t2i.json")
    sub = validation.v1alpha1(body, CONFIGURED)
    assert sub.source == "v1alpha1"
    assert sub.checkpoint == "v1-5-pruned-emaonly.safetensors"
    assert sub.task == {
        "metadata": {
            "id": "test-t2i",
            "runtime": "sdruntime",
            "tasktype": "text-to-image",
            "prefix": "outputs",
            "context": {},
        },
        "content": body,
    }
    assert sub.task["content"] is not body  # a copy: the request is never mutated


def test_v1alpha1_image_link_fills_init_images() -> None:
    body = fixture("v1alpha1/i2i.json")
    sub = validation.v1alpha1(body, CONFIGURED)
    link = body["alwayson_scripts"]["image_link"]
    assert sub.task["content"]["init_images"] == [link]
    assert sub.task["content"]["alwayson_scripts"] == body["alwayson_scripts"]
    assert "init_images" not in body
    assert sub.prefix == "output"  # no save_dir


def test_v1alpha1_image_link_fills_image_for_extra_single_image() -> None:
    body = fixture("v1alpha1/i2i.json")
    body["alwayson_scripts"]["task"] = "extra-single-image"
    sub = validation.v1alpha1(body, CONFIGURED)
    assert sub.task["content"]["image"] == body["alwayson_scripts"]["image_link"]
    assert "init_images" not in sub.task["content"]
    del body["alwayson_scripts"]["image_link"]
    details = problems_of(validation.v1alpha1, body)
    assert details == [
        {
            "path": "image",
            "message": "is required for extra-single-image: the input image "
            "(or alwayson_scripts.image_link, a URL)",
        }
    ]
    body["image"] = "https://example.com/in.png"
    assert validation.v1alpha1(body, CONFIGURED).task["content"]["image"] == body["image"]


def test_v1alpha1_image_link_not_copied_for_text_to_image() -> None:
    body = fixture("v1alpha1/t2i.json")
    body["alwayson_scripts"]["image_link"] = "https://example.com/x.png"
    content = validation.v1alpha1(body, CONFIGURED).task["content"]
    assert "init_images" not in content and "image" not in content


def test_v1alpha1_existing_init_images_win() -> None:
    body = fixture("v1alpha1/i2i.json")
    body["init_images"] = ["s3://bucket/in.png"]
    sub = validation.v1alpha1(body, CONFIGURED)
    assert sub.task["content"]["init_images"] == ["s3://bucket/in.png"]


def test_v1alpha1_accepts_the_task_wrapped_form() -> None:
    body = fixture("v1alpha1/t2i.json")
    assert validation.v1alpha1({"task": body}, CONFIGURED).task["content"] == body


@pytest.mark.parametrize(
    ("checkpoint", "runtime"),
    [
        ("v1-5-pruned-emaonly.safetensors", "sdruntime"),
        ("v1-5-pruned-emaonly.safetensors [6ce0161689]", "sdruntime"),
        ("v2-1_768-ema-pruned.safetensors", "sd21"),
        ("some-other-model.ckpt", "sdwebui"),  # no static runtime has it: the dynamic one
    ],
)
def test_v1alpha1_routing(checkpoint: str, runtime: str) -> None:
    body = fixture("v1alpha1/t2i.json")
    body["alwayson_scripts"]["sd_model_checkpoint"] = checkpoint
    sub = validation.v1alpha1(body, CONFIGURED)
    assert sub.runtime == runtime
    assert sub.task["metadata"]["runtime"] == runtime


def test_v1alpha1_routing_without_a_dynamic_runtime() -> None:
    static_only = {n: r for n, r in CONFIGURED.items() if not r.dynamic_model}
    body = fixture("v1alpha1/t2i.json")
    body["alwayson_scripts"]["sd_model_checkpoint"] = "unknown.safetensors"
    with pytest.raises(ApiError) as caught:
        validation.v1alpha1(body, static_only)
    (detail,) = caught.value.details
    assert detail["path"] == "alwayson_scripts.sd_model_checkpoint"
    assert "no sdwebui runtime serves" in detail["message"]


def test_v1alpha1_never_routes_to_comfyui() -> None:
    runtimes = {
        "a-comfy": config.Runtime(name="a-comfy", type="comfyui", models=("m.safetensors",)),
        "z-webui": config.Runtime(name="z-webui", type="sdwebui", dynamic_model=True),
    }
    assert validation.runtime_for_checkpoint("m.safetensors", runtimes).name == "z-webui"


def test_v1alpha1_static_match_beats_dynamic_and_ties_break_by_name() -> None:
    runtimes = {
        "b": config.Runtime(name="b", type="sdwebui", models=("m",)),
        "a": config.Runtime(name="a", type="sdwebui", dynamic_model=True),
        "c": config.Runtime(name="c", type="sdwebui", models=("m",)),
    }
    assert validation.runtime_for_checkpoint("m", runtimes).name == "b"
    assert validation.runtime_for_checkpoint("other", runtimes).name == "a"


@pytest.mark.parametrize(
    ("mutate", "paths"),
    [
        (lambda b: b.pop("alwayson_scripts"), ["alwayson_scripts"]),
        (lambda b: b.update(alwayson_scripts=[]), ["alwayson_scripts"]),
        (lambda b: b["alwayson_scripts"].pop("task"), ["alwayson_scripts.task"]),
        (lambda b: b["alwayson_scripts"].update(task="pipeline"), ["alwayson_scripts.task"]),
        (lambda b: b["alwayson_scripts"].pop("id_task"), ["alwayson_scripts.id_task"]),
        (lambda b: b["alwayson_scripts"].update(id_task="a b"), ["alwayson_scripts.id_task"]),
        (lambda b: b["alwayson_scripts"].update(id_task=123), ["alwayson_scripts.id_task"]),
        (
            lambda b: b["alwayson_scripts"].pop("sd_model_checkpoint"),
            ["alwayson_scripts.sd_model_checkpoint"],
        ),
        (
            lambda b: b["alwayson_scripts"].update(sd_model_checkpoint=None),
            ["alwayson_scripts.sd_model_checkpoint"],
        ),
        (lambda b: b["alwayson_scripts"].update(save_dir="/abs"), ["alwayson_scripts.save_dir"]),
        (lambda b: b["alwayson_scripts"].update(save_dir="a/../b"), ["alwayson_scripts.save_dir"]),
        (lambda b: b["alwayson_scripts"].update(image_link=5), ["alwayson_scripts.image_link"]),
        (lambda b: b["alwayson_scripts"].update(task="image-to-image"), ["init_images"]),
        (lambda b: b.update(steps="16"), ["steps"]),
        (lambda b: b.update(width=100_000, n_iter=0), ["width", "n_iter"]),
        (
            lambda b: b.update(alwayson_scripts={}),
            [
                "alwayson_scripts.task",
                "alwayson_scripts.id_task",
                "alwayson_scripts.sd_model_checkpoint",
            ],
        ),
    ],
)
def test_v1alpha1_each_rule(mutate: Any, paths: list[str]) -> None:
    body = fixture("v1alpha1/t2i.json")
    mutate(body)
    assert paths_of(validation.v1alpha1, body) == paths


@pytest.mark.parametrize("body", [[], "x", None, 3])
def test_v1alpha1_body_must_be_an_object(body: Any) -> None:
    assert paths_of(validation.v1alpha1, body) == [""]
