"""Compatibility with the reference implementation's clients: its example requests
(``fixtures/``) are accepted, answered in its response shape and routed to the right runtime.
"""

from __future__ import annotations

import pytest

from .support import BUCKET, DOMAIN, Account, fixture

V1ALPHA2 = [
    # fixture, runtime it names, tasktype, prefix used
    ("v1alpha2/t2i.json", "sdruntime", "text-to-image", "output"),
    ("v1alpha2/i2i.json", "sdruntime", "image-to-image", "output"),
    ("v1alpha2/i2i-image-link.json", "sdwebui", "image-to-image", "output"),
    ("v1alpha2/extra-single-image.json", "sdruntime", "extra-single-image", "output"),
    ("v1alpha2/pipeline.json", "sd1-5-comfyui", "pipeline", "output"),
]


@pytest.mark.parametrize(("name", "runtime", "tasktype", "prefix"), V1ALPHA2)
def test_v1alpha2_examples(
    account: Account, name: str, runtime: str, tasktype: str, prefix: str
) -> None:
    body = fixture(name)
    task_id = body["task"]["metadata"]["id"]
    response = account.post(body)

    assert response.status == 202
    assert response.body == {
        "id": task_id,
        "runtime": runtime,
        "output_location": f"s3://{BUCKET}/{prefix}/{task_id}",
        "status_url": f"https://{DOMAIN}/prod/v1alpha2/tasks/{task_id}",
    }
    queues = account.all_messages()
    assert list(queues) == [runtime]
    (message,) = queues[runtime]
    assert message.attributes == {"runtime": runtime}
    # Published as the reference publishes it: the task itself (prefix filled in).
    expected = body["task"]
    expected["metadata"]["prefix"] = prefix
    assert message.body == expected
    assert message.body["metadata"]["context"] == ""

    status = account.get(task_id).body
    assert (status["status"], status["tasktype"], status["runtime"]) == (
        "queued",
        tasktype,
        runtime,
    )


def test_v1alpha2_image_to_image_keeps_the_url_for_the_agent(account: Account) -> None:
    body = fixture("v1alpha2/i2i.json")
    assert account.post(body).status == 202
    (message,) = account.messages("sdruntime")
    assert message.body["content"]["init_images"] == body["task"]["content"]["init_images"]


V1ALPHA1 = [
    # fixture, runtime serving its checkpoint, save_dir used as prefix
    ("v1alpha1/t2i.json", "sdruntime", "outputs"),
    ("v1alpha1/i2i.json", "sdruntime", "output"),
    ("v1alpha1/t2i-sd21.json", "sd21", "outputs"),
]


@pytest.mark.parametrize(("name", "runtime", "prefix"), V1ALPHA1)
def test_v1alpha1_examples(account: Account, name: str, runtime: str, prefix: str) -> None:
    body = fixture(name)
    scripts = body["alwayson_scripts"]
    task_id = scripts["id_task"]
    response = account.post(body, resource="/v1alpha1")

    assert response.status == 200  # the reference's status code, for drop-in clients
    assert response.body == {
        "id_task": task_id,
        "sd_model_checkpoint": scripts["sd_model_checkpoint"],
        "output_location": f"s3://{BUCKET}/{prefix}/{task_id}",
    }
    queues = account.all_messages()
    assert list(queues) == [runtime]
    (message,) = queues[runtime]
    assert message.attributes == {"runtime": runtime}
    assert message.body["metadata"] == {
        "id": task_id,
        "runtime": runtime,
        "tasktype": scripts["task"],
        "prefix": prefix,
        "context": {},
    }
    content = message.body["content"]
    # The WebUI body travels unchanged (routing keys included, as in the reference) ...
    assert {k: v for k, v in content.items() if k != "init_images"} == body
    # ... and an image-to-image link also fills init_images, the v1alpha2 way.
    if scripts["task"] == "image-to-image":
        assert content["init_images"] == [scripts["image_link"]]
    else:
        assert "init_images" not in content

    record = account.record(task_id)
    assert (record["source"], record["runtime"], record["published"]) == ("v1alpha1", runtime, True)


def test_v1alpha1_checkpoint_served_by_nobody_goes_to_the_dynamic_runtime(
    account: Account,
) -> None:
    body = fixture("v1alpha1/t2i.json")
    body["alwayson_scripts"]["sd_model_checkpoint"] = "sd_xl_base_1.0.safetensors"
    assert account.post(body, resource="/v1alpha1").status == 200
    assert list(account.all_messages()) == ["sdwebui"]


def test_v1alpha1_resubmission_is_idempotent_and_conflicts_are_409(account: Account) -> None:
    body = fixture("v1alpha1/t2i.json")
    first = account.post(body, resource="/v1alpha1")
    again = account.post(body, resource="/v1alpha1")
    assert (first.status, again.status) == (200, 200)
    assert again.body == first.body
    body["prompt"] = "A cat"
    conflict = account.post(body, resource="/v1alpha1")
    assert (conflict.status, conflict.error_code) == (409, "id_conflict")
    assert conflict.detail_paths == ["alwayson_scripts.id_task"]
    assert len(account.messages("sdruntime")) == 1


def test_v1alpha1_invalid_body_is_a_json_400(account: Account) -> None:
    body = fixture("v1alpha1/t2i.json")
    del body["alwayson_scripts"]["id_task"]
    body["alwayson_scripts"]["task"] = "pipeline"
    response = account.post(body, resource="/v1alpha1")
    assert (response.status, response.error_code) == (400, "invalid_request")
    assert response.detail_paths == ["alwayson_scripts.task", "alwayson_scripts.id_task"]
    assert account.all_messages() == {}


def test_v1alpha2_body_on_the_v1alpha1_route_is_400(account: Account) -> None:
    response = account.post(fixture("v1alpha2/t2i.json"), resource="/v1alpha1")
    assert response.status == 400
    assert account.all_messages() == {}
