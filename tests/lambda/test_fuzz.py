"""Property-based fuzzing of the handlers (hypothesis) against one emulated account.

Bodies are generated valid tasks, the same tasks with targeted mutations (each known to make
a named field invalid), legacy v1alpha1 bodies, arbitrary JSON, arbitrary text and bytes,
and bodies over the size limits. For every one:

* the response is JSON with ``Content-Type: application/json``; errors use the envelope;
  every answer is one the OpenAPI document describes for its operation;
* a client mistake is never a 5xx, never writes to the table and never publishes;
* a body mutated to break field X is a 400 that names X; broken JSON is a 400;
* a valid body is accepted exactly once: new id -> 202 and one publish routed to its
  runtime; same id and body -> the same 202 and no publish; same id, other body -> 409.

One account (and one set of clients) serves all examples; the limits are lowered so that
413 and claim checks are reached with small bodies.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from lambda_src import aws, ingest, status

from .openapi_support import assert_conforms, operation_of
from .support import RUNTIMES, Account, emulated_account, event

MAX_BODY_BYTES = 65_536
SNS_MAX_BYTES = 4_096
SNS_HARD_LIMIT = 262_144

TASKTYPES = {
    "sdwebui": ["text-to-image", "image-to-image", "extra-single-image", "extra-batch-images"],
    "comfyui": ["pipeline"],
}
ALL_TASKTYPES = {t for types in TASKTYPES.values() for t in types}
STATIC_MODELS = {
    model: name
    for name, spec in sorted(RUNTIMES.items())
    if spec["type"] == "sdwebui"
    for model in spec.get("models", [])
}
DYNAMIC_RUNTIME = "sdwebui"
MISSING = object()


# --- recording what the handler does with AWS ---------------------------------------------


@dataclass
class Recorder:
    """Counts the handler's writes and keeps the messages it publishes."""

    put_items: int = 0
    s3_keys: list[str] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)

    # botocore's before-parameter-build hooks see each call's API parameters.
    def on_put_item(self, **_: Any) -> None:
        self.put_items += 1

    def on_put_object(self, params: dict[str, Any], **_: Any) -> None:
        self.s3_keys.append(params["Key"])

    def on_publish(self, params: dict[str, Any], **_: Any) -> None:
        self.published.append(dict(params))

    def snapshot(self) -> tuple[int, int, int]:
        return self.put_items, len(self.s3_keys), len(self.published)


@dataclass
class Fuzz:
    account: Account
    recorder: Recorder
    seen: dict[str, str] = field(default_factory=dict)  # id -> canonical task accepted
    counter: Iterator[int] = field(default_factory=itertools.count)

    def refresh_id(self, case: Case) -> None:
        """Replace the case's id with one no earlier example used."""
        holder = (
            case.body["alwayson_scripts"]
            if case.route == "/v1alpha1"
            else case.body["task"]["metadata"]
        )
        key = "id_task" if case.route == "/v1alpha1" else "id"
        holder[key] = f"fresh-{next(self.counter)}-{holder[key]}"[:64]


@pytest.fixture(scope="module")
def fuzz() -> Iterator[Fuzz]:
    with emulated_account(
        MAX_BODY_BYTES=str(MAX_BODY_BYTES), SNS_MAX_BYTES=str(SNS_MAX_BYTES)
    ) as account:
        recorder = Recorder()
        hooks = [
            ("dynamodb", "before-parameter-build.dynamodb.PutItem", recorder.on_put_item),
            ("s3", "before-parameter-build.s3.PutObject", recorder.on_put_object),
            ("sns", "before-parameter-build.sns.Publish", recorder.on_publish),
        ]
        for service, name, hook in hooks:
            aws.client(service).meta.events.register(name, hook)
        # Routing itself is proven in test_ingest with filtered queues; here the queues would
        # only slow every publish down, so the subscriptions are removed.
        for sub in account.sns.list_subscriptions()["Subscriptions"]:
            account.sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        yield Fuzz(account, recorder)
        for service, name, hook in hooks:
            aws.client(service).meta.events.unregister(name, hook)


# --- strategies ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
segments = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True).filter(
    lambda s: s not in (".", "..")
)
given_prefixes = st.one_of(
    st.none(),
    st.lists(segments, min_size=1, max_size=4).map("/".join),
    st.lists(segments, min_size=1, max_size=3).map(lambda s: "/".join(s) + "/"),
).filter(lambda p: p is None or p.split("/")[0] != "_requests")
valid_prefixes = st.one_of(st.just(MISSING), given_prefixes)
runtime_tasktypes = st.sampled_from(
    [(name, t) for name, spec in sorted(RUNTIMES.items()) for t in TASKTYPES[spec["type"]]]
)
IMAGE_URL = "https://example.com/in.png"
# Fields whose types and ranges the contract checks (task_contract.content); generated
# free-form keys stay clear of them.
WEBUI_FIELDS = {"steps", "width", "height", "batch_size", "n_iter", "cfg_scale", "seed",
                "subseed", "denoising_strength", "sampler_name", "scheduler", "prompt",
                "negative_prompt", "init_images", "image", "mask", "imageList",
                "alwayson_scripts", "override_settings"}
INPUTS = {  # the input image each task type needs
    "image-to-image": {"init_images": [IMAGE_URL]},
    "extra-single-image": {"image": IMAGE_URL},
    "extra-batch-images": {"imageList": [{"data": IMAGE_URL, "name": "a"}]},
}
sizes = st.integers(8, 256).map(lambda n: n * 8)
webui_fields = st.fixed_dictionaries({}, optional={
    "steps": st.integers(1, 150), "width": sizes, "height": sizes,
    "batch_size": st.integers(1, 8), "n_iter": st.integers(1, 100),
    "cfg_scale": st.floats(1, 30), "seed": st.integers(-1, 2**32 - 1),
    "denoising_strength": st.floats(0, 1), "sampler_name": st.text(max_size=20),
    "prompt": st.text(max_size=60), "negative_prompt": st.text(max_size=20),
    "scheduler": st.none() | st.text(max_size=10),
})
webui_content = st.builds(
    lambda free, known: {**free, **known},
    st.dictionaries(st.text(max_size=10).filter(lambda k: k not in WEBUI_FIELDS), json_values,
                    max_size=5),
    webui_fields,
)
workflow = st.dictionaries(
    st.text(min_size=1, max_size=4),
    st.fixed_dictionaries(
        {
            "class_type": st.text(min_size=1, max_size=12),
            "inputs": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        }
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def valid_tasks(draw: st.DrawFn) -> dict[str, Any]:
    runtime, tasktype = draw(runtime_tasktypes)
    metadata: dict[str, Any] = {"id": draw(ids), "runtime": runtime, "tasktype": tasktype}
    prefix = draw(valid_prefixes)
    if prefix is not MISSING:
        metadata["prefix"] = prefix
    if draw(st.booleans()):
        metadata["context"] = draw(json_values)
    content = draw(workflow if tasktype == "pipeline" else webui_content)
    content.update(json.loads(json.dumps(INPUTS.get(tasktype, {}))))
    return {"task": {"metadata": metadata, "content": content}}


not_strings = st.one_of(
    st.integers(),
    st.booleans(),
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), json_scalars, max_size=2),
)
bad_ids = st.one_of(
    not_strings,
    st.just(""),
    st.text(min_size=65, max_size=80, alphabet="abc"),
    st.tuples(ids, st.sampled_from(list(" ./\\:é\n\x00?#%+"))).map(lambda t: t[0][:63] + t[1]),
)
bad_runtimes = st.one_of(
    not_strings, st.just(""), st.text(min_size=1, max_size=20).filter(lambda s: s not in RUNTIMES)
)
bad_tasktypes = st.one_of(
    not_strings,
    st.just(""),
    st.text(min_size=1, max_size=20).filter(lambda s: s not in ALL_TASKTYPES),
)
bad_prefixes = st.one_of(
    not_strings,
    st.sampled_from(["", "/", "//", "..", "../x", "x/..", "./x", "x/./y", "_requests"]),
    st.tuples(segments, segments).map(lambda t: f"{t[0]}//{t[1]}"),
    st.tuples(segments, segments).map(lambda t: f"{t[0]}/../{t[1]}"),
    segments.map(lambda s: "/" + s),
    st.tuples(segments, st.sampled_from(list(" \\:é\n\x00?#%+*'\"<>|~"))).map(
        lambda t: t[0] + t[1]
    ),
)
bad_contents = st.one_of(
    st.lists(json_scalars, max_size=3), st.text(max_size=5), st.integers(), st.booleans()
)

FIELD_PATHS = {
    "id": "task.metadata.id",
    "runtime": "task.metadata.runtime",
    "tasktype": "task.metadata.tasktype",
    "prefix": "task.metadata.prefix",
    "content": "task.content",
}


@dataclass
class Case:
    """One generated request and what the handler must do with it."""

    route: str = "/v1alpha2"
    body: Any = MISSING  # a JSON value to encode, or...
    raw: str | None = None  # ...a raw body
    base64_body: bool = False
    valid: bool = False  # a valid body: accepted or (same id, other body) 409
    fresh_id: bool = False  # give it an id never used before (generated ids repeat a lot)
    status: int | None = None  # exact status expected, when known
    paths: frozenset[str] = frozenset()  # detail paths a 400 must name


@st.composite
def mutated_tasks(draw: st.DrawFn) -> Case:
    """A valid task with 1-5 fields broken independently: a 400 naming each of them."""
    body = draw(valid_tasks())
    metadata, task = body["task"]["metadata"], body["task"]
    broken = draw(st.sets(st.sampled_from(sorted(FIELD_PATHS)), min_size=1, max_size=5))
    for name in broken:
        if name == "content":
            task["content"] = draw(bad_contents)
        elif draw(st.integers(0, 4)) == 0 and name != "prefix":
            metadata.pop(name)
        else:
            strategy = {
                "id": bad_ids,
                "runtime": bad_runtimes,
                "tasktype": bad_tasktypes,
                "prefix": bad_prefixes,
            }[name]
            metadata[name] = draw(strategy)
    return Case(body=body, status=400, paths=frozenset(FIELD_PATHS[n] for n in broken))


@st.composite
def mismatched_tasktypes(draw: st.DrawFn) -> Case:
    body = draw(valid_tasks())
    metadata = body["task"]["metadata"]
    kind = RUNTIMES[metadata["runtime"]]["type"]
    other = "comfyui" if kind == "sdwebui" else "sdwebui"
    metadata["tasktype"] = draw(st.sampled_from(TASKTYPES[other]))
    return Case(body=body, status=400, paths=frozenset({"task.metadata.tasktype"}))


@st.composite
def broken_workflows(draw: st.DrawFn) -> Case:
    runtime = "sd1-5-comfyui"
    content = draw(workflow)
    node_id = draw(st.sampled_from(sorted(content)))
    breakage = draw(st.sampled_from(["not-object", "no-class", "bad-inputs"]))
    if breakage == "not-object":
        content[node_id] = draw(st.one_of(json_scalars, st.lists(json_scalars, max_size=2)))
        path = f"task.content.{node_id}"
    elif breakage == "no-class":
        content[node_id].pop("class_type")
        path = f"task.content.{node_id}.class_type"
    else:
        content[node_id]["inputs"] = draw(st.one_of(json_scalars, st.lists(json_scalars)))
        path = f"task.content.{node_id}.inputs"
    body = {
        "task": {
            "metadata": {"id": draw(ids), "runtime": runtime, "tasktype": "pipeline"},
            "content": content,
        }
    }
    return Case(body=body, status=400, paths=frozenset({path}))


@st.composite
def structural_breaks(draw: st.DrawFn) -> Case:
    body = draw(valid_tasks())
    choice = draw(st.sampled_from(["unwrap", "no-task", "task-type", "no-meta", "meta-type"]))
    if choice == "unwrap":
        return Case(body=body["task"], status=400, paths=frozenset({"task"}))
    if choice == "no-task":
        return Case(body={"tasks": body["task"]}, status=400, paths=frozenset({"task"}))
    if choice == "task-type":
        body["task"] = draw(st.one_of(json_scalars, st.lists(json_scalars, max_size=2)))
        return Case(body=body, status=400, paths=frozenset({"task"}))
    if choice == "no-meta":
        del body["task"]["metadata"]
    else:
        body["task"]["metadata"] = draw(st.one_of(json_scalars, st.lists(json_scalars)))
    return Case(body=body, status=400, paths=frozenset({"task.metadata"}))


BAD_WEBUI_VALUES: dict[str, list[Any]] = {
    "steps": ["16", -1, 0, 151, 1.5, True, None],
    "width": [100_000, 100, 56, 2056, "512", 512.0],
    "height": [0, 4096, 513],
    "batch_size": [0, 9, "2"],
    "n_iter": [0, 101, [1]],
    "cfg_scale": [0.5, 31, "7", None],
    "seed": [-2, 2**32, "1", 1.5],
    "subseed": [2**40, False],
    "denoising_strength": [-0.1, 1.5, "0.5"],
    "sampler_name": [5, ["Euler"]],
    "scheduler": [{"name": "x"}],
    "prompt": ["x" * 10_001, 7, None],
    "negative_prompt": [["no"]],
    "init_images": ["data", {"a": 1}],
    "image": [5, ""],
    "mask": [[], 1],
    "imageList": ["x", {"data": "d"}],
    "alwayson_scripts": [[], "x"],
    "override_settings": ["v1-5"],
}


@st.composite
def broken_webui_contents(draw: st.DrawFn) -> Case:
    """A valid SD WebUI task with 1-3 content fields of the wrong type or out of range."""
    body = draw(valid_tasks().filter(lambda b: b["task"]["metadata"]["tasktype"] != "pipeline"))
    content = body["task"]["content"]
    paths = set()
    for name in draw(st.sets(st.sampled_from(sorted(BAD_WEBUI_VALUES)), min_size=1, max_size=3)):
        content[name] = draw(st.sampled_from(BAD_WEBUI_VALUES[name]))
        paths.add(f"task.content.{name}")
    return Case(body=body, status=400, paths=frozenset(paths))


@st.composite
def broken_images(draw: st.DrawFn) -> Case:
    """A valid image task whose input image is missing or not a string: the path names it."""
    tasktype = draw(st.sampled_from(sorted(INPUTS)))
    content: dict[str, Any] = draw(webui_content)
    breakage = draw(st.sampled_from(["missing", "empty", "not-string"]))
    field_name = next(iter(INPUTS[tasktype]))
    path = f"task.content.{field_name}"
    if breakage == "empty":
        content[field_name] = [] if field_name != "image" else ""
    elif breakage == "not-string":
        bad = draw(st.one_of(st.integers(), st.booleans(), st.just("")))
        if field_name == "init_images":
            content[field_name], path = [IMAGE_URL, bad], path + "[1]"
        elif field_name == "imageList":
            content[field_name], path = [{"data": bad, "name": "x"}], path + "[0].data"
        else:
            content[field_name] = bad
    body = {"task": {"metadata": {"id": draw(ids), "runtime": "sdruntime", "tasktype": tasktype},
                     "content": content}}
    return Case(body=body, status=400, paths=frozenset({path}))


def pad(body: dict[str, Any], size: int) -> None:
    """Grow a valid task by ``size`` bytes without making it invalid."""
    content = body["task"]["content"]
    if body["task"]["metadata"]["tasktype"] == "pipeline":
        content = next(iter(content.values()))["inputs"]
    content["padding"] = "p" * size


@st.composite
def valid_cases(draw: st.DrawFn) -> Case:
    body = draw(valid_tasks())
    if draw(st.integers(0, 9)) == 0:  # large enough to be claim-checked, within the limit
        pad(body, draw(st.integers(SNS_MAX_BYTES, 20_000)))
    return Case(body=body, valid=True, fresh_id=draw(st.booleans()))


@st.composite
def v1alpha1_cases(draw: st.DrawFn) -> Case:
    tasktype = draw(st.sampled_from(TASKTYPES["sdwebui"]))
    scripts: dict[str, Any] = {
        "task": tasktype,
        "id_task": draw(ids),
        "sd_model_checkpoint": draw(st.sampled_from([*STATIC_MODELS, "any-model.ckpt"])),
    }
    if draw(st.booleans()):
        scripts["save_dir"] = draw(given_prefixes)
    if tasktype in ("image-to-image", "extra-single-image") or draw(st.booleans()):
        scripts["image_link"] = "https://example.com/" + draw(segments)
    body = {"alwayson_scripts": scripts, **draw(webui_content)}
    if tasktype == "extra-batch-images":
        body.update(json.loads(json.dumps(INPUTS[tasktype])))
    broken = draw(st.sampled_from([None, None, "task", "id_task", "save_dir", "image_link"]))
    if broken is None:
        return Case(route="/v1alpha1", body=body, valid=True, fresh_id=draw(st.booleans()))
    bad = {
        "task": st.one_of(bad_tasktypes, st.just("pipeline")),
        "id_task": bad_ids,
        "save_dir": bad_prefixes.filter(lambda p: p is not None),
        "image_link": st.one_of(st.just(""), st.integers(), st.lists(st.text(), max_size=1)),
    }
    scripts[broken] = draw(bad[broken])
    return Case(
        route="/v1alpha1", body=body, status=400, paths=frozenset({f"alwayson_scripts.{broken}"})
    )


@st.composite
def not_json(draw: st.DrawFn) -> Case:
    """A valid task whose text is broken: non-finite numbers, truncation, bad UTF-8."""
    text = json.dumps(draw(valid_tasks()))
    choice = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "cut", "bytes"]))
    if choice == "cut":
        return Case(raw=text[: draw(st.integers(0, len(text) - 1))], status=400)
    if choice == "bytes":
        raw = text.encode()[:-2] + b'\xc3"}'  # a lone UTF-8 lead byte
        return Case(raw=base64.b64encode(raw).decode(), base64_body=True, status=400)
    return Case(raw=text.replace('"task"', f'"n": {choice}, "task"', 1), status=400)


@st.composite
def junk(draw: st.DrawFn) -> Case:
    choice = draw(st.sampled_from(["json", "text", "bytes", "bad-base64", "v1alpha1-json"]))
    if choice == "json":
        return Case(body=draw(json_values))
    if choice == "v1alpha1-json":
        return Case(route="/v1alpha1", body=draw(json_values))
    if choice == "text":
        return Case(raw=draw(st.text(max_size=200)))
    if choice == "bytes":
        raw = base64.b64encode(draw(st.binary(max_size=200))).decode()
        return Case(raw=raw, base64_body=True)
    return Case(raw=draw(st.text(min_size=1, max_size=20)) + "!", base64_body=True, status=400)


@st.composite
def oversized(draw: st.DrawFn) -> Case:
    body = draw(valid_tasks())
    pad(body, draw(st.integers(MAX_BODY_BYTES, MAX_BODY_BYTES + 5_000)))
    return Case(body=body, status=413, base64_body=draw(st.booleans()))


cases = st.one_of(
    valid_cases(),
    valid_cases(),
    mutated_tasks(),
    mutated_tasks(),
    mismatched_tasktypes(),
    broken_workflows(),
    broken_webui_contents(),
    broken_images(),
    structural_breaks(),
    v1alpha1_cases(),
    v1alpha1_cases(),
    junk(),
    junk(),
    not_json(),
    oversized(),
)


# --- the oracle ---------------------------------------------------------------------------


def expected_task(case: Case) -> tuple[str, str, str]:
    """(id, runtime, canonical task) of a valid case, computed independently of the handler."""
    body = case.body
    if case.route == "/v1alpha1":
        scripts = body["alwayson_scripts"]
        runtime = STATIC_MODELS.get(scripts["sd_model_checkpoint"], DYNAMIC_RUNTIME)
        prefix = scripts.get("save_dir")
        content = json.loads(json.dumps(body))
        if scripts["task"] == "image-to-image":
            content["init_images"] = [scripts["image_link"]]
        if scripts["task"] == "extra-single-image" and not content.get("image"):
            content["image"] = scripts["image_link"]
        metadata = {
            "id": scripts["id_task"],
            "runtime": runtime,
            "tasktype": scripts["task"],
            "context": {},
        }
        task = {"metadata": metadata, "content": content}
    else:
        task = json.loads(json.dumps(body["task"]))
        metadata = task["metadata"]
        prefix = metadata.get("prefix")
    metadata["prefix"] = prefix.rstrip("/") if isinstance(prefix, str) else "output"
    return metadata["id"], metadata["runtime"], json.dumps(task, sort_keys=True)


def check_envelope(result: dict[str, Any], operation: str | None) -> tuple[int, Any]:
    assert isinstance(result["statusCode"], int)
    assert result["headers"]["Content-Type"] == "application/json"
    body = json.loads(result["body"])
    assert isinstance(body, dict)
    if result["statusCode"] >= 400:
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert all(
            isinstance(d, dict) and isinstance(d["path"], str) and isinstance(d["message"], str)
            for d in error["details"]
        )
    assert_conforms(operation, result["statusCode"], body)
    return result["statusCode"], body


def submit(case: Case) -> dict[str, Any]:
    raw = case.raw if case.raw is not None else json.dumps(case.body)
    if case.base64_body and case.raw is None:
        raw = base64.b64encode(raw.encode()).decode()
    evt = event("POST", case.route, raw_body=raw)
    evt["isBase64Encoded"] = case.base64_body
    return ingest.handler(evt, None)


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases)
def test_ingest_fuzz(fuzz: Fuzz, case: Case) -> None:
    recorder = fuzz.recorder
    put_items, s3_puts, publishes = recorder.snapshot()
    if case.fresh_id:
        fuzz.refresh_id(case)
    code, body = check_envelope(submit(case), operation_of(case.route, "POST"))
    label(f"{'valid' if case.valid else 'invalid'} {case.route} -> {code}")

    assert code < 500, body
    if case.status is not None and not case.valid:
        assert code == case.status, body
    if code == 400 and case.paths:
        named = {d["path"] for d in body["error"]["details"]}
        assert case.paths <= named, (case.paths, named)

    published = recorder.published[publishes:]
    if code >= 400:
        assert published == []
        assert len(recorder.s3_keys) == s3_puts
        if code != 409:  # 409 is decided by the conditional write itself
            assert recorder.put_items == put_items
    if not case.valid:
        # Generated junk is judged only by the properties above (it is invalid in practice).
        return

    task_id, runtime, canonical = expected_task(case)
    previous = fuzz.seen.get(task_id)
    if previous is not None and previous != canonical:
        assert code == 409, body
        return
    assert code == (200 if case.route == "/v1alpha1" else 202), body
    if previous is None:
        fuzz.seen[task_id] = canonical
        (params,) = published
        assert params["MessageAttributes"] == {
            "runtime": {"DataType": "String", "StringValue": runtime}
        }
        message = json.loads(params["Message"])
        assert len(params["Message"]) + len("runtime") + len("String") + len(runtime) <= (
            SNS_HARD_LIMIT
        )
        if "content_ref" in message:
            (key,) = recorder.s3_keys[s3_puts:]
            assert message["content_ref"].endswith(key)
            assert set(message) == {"metadata", "content_ref"}
        else:
            assert json.dumps(message, sort_keys=True) == canonical
            assert len(recorder.s3_keys) == s3_puts
    else:
        assert published == []  # idempotent resubmission: nothing published again


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    task_id=st.one_of(ids, st.text(max_size=80), st.none(), st.integers()),
    method=st.sampled_from(["GET", "GET", "GET", "POST", "HEAD", ""]),
)
def test_status_fuzz(fuzz: Fuzz, task_id: Any, method: str) -> None:
    evt = event(method, "/v1alpha2/tasks/{id}", path_parameters={"id": task_id})
    code, body = check_envelope(status.handler(evt, None),
                                operation_of("/v1alpha2/tasks/{id}", method))
    assert code < 500, body
    if method != "GET":
        assert code == 405
    elif isinstance(task_id, str) and task_id in fuzz.seen:
        assert code == 200 and body["id"] == task_id and body["status"] == "queued"
    else:
        assert code in (400, 404)
