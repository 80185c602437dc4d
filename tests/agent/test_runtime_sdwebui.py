"""The SD WebUI adapter against the fake WebUI over real HTTP."""

from __future__ import annotations

import threading

import pytest

from agent.config import load_config
from agent.errors import PermanentError, TransientError
from agent.images import b64encode
from agent.messages import Task
from agent.runtimes.sdwebui import SdWebUiAdapter, derived_seed, replace_image_urls
from tests.fakes.base import render_png
from tests.fakes.sdwebui import FakeSdWebUI, checkpoint

PNG = render_png("input", 16, 16)


def adapter(fake: FakeSdWebUI, **env: str) -> SdWebUiAdapter:
    return SdWebUiAdapter(load_config({
        "SQS_QUEUE_URL": "http://127.0.0.1/q", "SNS_TOPIC_ARN": "arn:aws:sns:us-west-2:1:t",
        "S3_BUCKET": "b", "RUNTIME_TYPE": "sdwebui", "RUNTIME_NAME": "sdruntime",
        "API_BASE_URL": fake.url, "AGENT_TASK_TIMEOUT_SECONDS": "2", **env}))


def fetch(url: str) -> bytes:
    assert url.startswith("s3://")
    return PNG


def run(sd: SdWebUiAdapter, task: Task):
    return sd.run(sd.prepare(task, fetch), threading.Event())


def t2i(task_id: str = "t", **content) -> Task:
    return Task(id=task_id, runtime="sdruntime", tasktype="text-to-image",
                content={"prompt": "a dog", "width": 64, "height": 64, **content})


def test_urls_are_replaced_only_in_image_fields() -> None:
    content = {
        "prompt": "see s3://bucket/not-an-input.png and http://169.254.169.254/",
        "negative_prompt": "https://example.com/x.png",
        "init_images": ["s3://in/a.png", "data:image/png;base64,AAAA"],
        "mask": "s3://in/m.png",
        "alwayson_scripts": {"controlnet": {"args": [
            {"image": "s3://in/c.png", "module": "canny", "model": "https://x/y"},
            {"image": {"image": "s3://in/d.png", "mask": "s3://in/e.png"}},
            {"input_image": "s3://in/f.png"}, "s3://in/not-an-arg-dict.png"]}},
    }
    seen: list[str] = []
    count = replace_image_urls(content, lambda url: seen.append(url) or "B64")
    assert count == 6
    assert seen == ["s3://in/a.png", "s3://in/m.png", "s3://in/c.png", "s3://in/d.png",
                    "s3://in/e.png", "s3://in/f.png"]
    assert content["prompt"].startswith("see s3://bucket/not-an-input.png")
    assert content["negative_prompt"] == "https://example.com/x.png"
    assert content["init_images"] == ["B64", "data:image/png;base64,AAAA"]
    assert content["alwayson_scripts"]["controlnet"]["args"][0]["model"] == "https://x/y"
    assert content["alwayson_scripts"]["controlnet"]["args"][3] == "s3://in/not-an-arg-dict.png"


def test_extras_batch_image_list() -> None:
    content = {"imageList": [{"data": "s3://in/1.png", "name": "s3://not/a/field"}]}
    assert replace_image_urls(content, lambda url: "B64") == 1
    assert content["imageList"] == [{"data": "B64", "name": "s3://not/a/field"}]


def test_text_to_image_with_derived_seed_is_reproducible(sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui)
    first = run(sd, t2i("same-id"))
    second = run(sd, t2i("same-id"))
    assert first.images == second.images and len(first.images) == 1
    assert sdwebui.generations[0].seed == derived_seed("same-id", "seed")
    assert first.seeds == [derived_seed("same-id", "seed")]
    explicit = run(sd, t2i("other", seed=42, batch_size=2))
    assert explicit.seeds == [42, 43] and len(explicit.images) == 2


def test_image_to_image_and_extras(sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui)
    i2i = Task(id="i", runtime="sdruntime", tasktype="image-to-image",
               content={"prompt": "x", "init_images": ["s3://in/a.png"], "width": 64,
                        "height": 64})
    out = run(sd, i2i)
    assert len(out.images) == 1 and out.parameters["init_images"] is None
    single = Task(id="s", runtime="sdruntime", tasktype="extra-single-image",
                  content={"image": "s3://in/a.png", "upscaler_1": "Lanczos"})
    assert len(run(sd, single).images) == 1
    batch = Task(id="b", runtime="sdruntime", tasktype="extra-batch-images",
                 content={"imageList": [{"data": "s3://in/a.png", "name": "a"},
                                        {"data": b64encode(PNG), "name": "b"}]})
    assert len(run(sd, batch).images) == 2


def test_model_switches_only_when_a_different_checkpoint_is_named(
        sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui, DYNAMIC_SD_MODEL="true")
    run(sd, t2i("a", override_settings={"sd_model_checkpoint": "v1-5-pruned-emaonly"}))
    run(sd, t2i("b"))
    assert sdwebui.state.switches == []
    turbo = Task(id="c", runtime="sdruntime", tasktype="text-to-image",
                 content={"prompt": "x"}, checkpoint="sd_xl_turbo_1.0.safetensors")
    run(sd, turbo)
    run(sd, turbo)
    assert sdwebui.state.switches == [checkpoint("sd_xl_turbo_1.0").title]
    assert sdwebui.generations[-1].model == checkpoint("sd_xl_turbo_1.0").title


def test_override_settings_checkpoint_is_not_sent_to_the_runtime(sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui, DYNAMIC_SD_MODEL="true")
    task = t2i("o", override_settings={"sd_model_checkpoint": "sd_xl_turbo_1.0",
                                       "CLIP_stop_at_last_layers": 2})
    prepared = sd.prepare(task, fetch)
    assert prepared.body["override_settings"] == {"CLIP_stop_at_last_layers": 2}


def test_unknown_checkpoint_lists_what_is_available(sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui, DYNAMIC_SD_MODEL="true")
    task = Task(id="u", runtime="sdruntime", tasktype="text-to-image",
                content={"prompt": "x"}, checkpoint="dreamshaper_8")
    with pytest.raises(PermanentError) as info:
        run(sd, task)
    assert info.value.code == "unknown_model"
    assert "v1-5-pruned-emaonly.safetensors" in info.value.message
    assert "sd_xl_turbo_1.0.safetensors" in info.value.message
    assert sdwebui.generations == []


def test_new_checkpoint_is_found_after_a_refresh(sdwebui: FakeSdWebUI) -> None:
    sdwebui.state.hidden.append(checkpoint("dreamshaper_8"))
    sd = adapter(sdwebui, DYNAMIC_SD_MODEL="true")
    task = Task(id="n", runtime="sdruntime", tasktype="text-to-image",
                content={"prompt": "x"}, checkpoint="dreamshaper_8")
    run(sd, task)
    assert sdwebui.state.switches == [checkpoint("dreamshaper_8").title]


def test_static_runtime_refuses_another_checkpoint(sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui)
    task = Task(id="s", runtime="sdruntime", tasktype="text-to-image",
                content={"prompt": "x"}, checkpoint="sd_xl_turbo_1.0")
    with pytest.raises(PermanentError) as info:
        run(sd, task)
    assert "does not switch models" in info.value.message
    same = Task(id="s2", runtime="sdruntime", tasktype="text-to-image",
                content={"prompt": "x"}, checkpoint="v1-5-pruned-emaonly.safetensors")
    assert len(run(sd, same).images) == 1
    assert sdwebui.state.switches == []


def test_validation_errors_are_permanent_with_details(sdwebui: FakeSdWebUI) -> None:
    with pytest.raises(PermanentError) as info:
        run(adapter(sdwebui), t2i(bogus_field=1))
    assert info.value.code == "runtime_validation"
    assert "HTTP 422" in info.value.message
    assert info.value.details["detail"][0]["loc"] == ["body", "bogus_field"]
    with pytest.raises(PermanentError) as missing:
        run(adapter(sdwebui), t2i(sampler_name="Nope"))
    assert "HTTP 404" in missing.value.message


def test_server_errors_are_transient(sdwebui: FakeSdWebUI) -> None:
    sdwebui.fail_next("/sdapi/v1/txt2img", 500)
    with pytest.raises(TransientError) as info:
        run(adapter(sdwebui), t2i())
    assert "CUDA out of memory" in str(info.value.details)


def test_timeout_interrupts_the_generation(sdwebui: FakeSdWebUI) -> None:
    sdwebui.hang_next("/sdapi/v1/txt2img")
    with pytest.raises(TransientError) as info:
        run(adapter(sdwebui, AGENT_TASK_TIMEOUT_SECONDS="1"), t2i())
    assert info.value.code == "runtime_timeout"
    assert sdwebui.state.interrupts == 1


def test_connection_refused_is_transient(sdwebui: FakeSdWebUI) -> None:
    sd = adapter(sdwebui)
    sdwebui.die()
    assert sd.ready() is False
    with pytest.raises(TransientError) as info:
        run(sd, t2i())
    assert info.value.code == "runtime_unavailable"
