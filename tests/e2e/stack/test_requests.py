"""The reference Guidance's request shapes: HTTP POST in, images in the bucket, status
``completed`` through the status API, one result message on the result topic.

The bodies are the reference's own (``tests/lambda/fixtures``), with only what this machine
cannot reach replaced: input images by ``s3://`` objects in the emulated bucket (no
internet), the ComfyUI runtime and v1alpha1 checkpoint by the example configuration's.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from tests.e2e.stack.conftest import Deployed
from tests.e2e.support import image_format, image_size, png, png_text, reference_request

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]

INPUT_SIZE = (64, 48)


@pytest.fixture(scope="module")
def input_image(deployed: Deployed) -> str:
    """An input image in the emulated bucket, as a client would upload it."""
    key = "inputs/e2e/cat.png"
    deployed.s3.put_object(Bucket=deployed.outputs["output_bucket"], Key=key,
                           Body=png(*INPUT_SIZE), ContentType="image/png")
    return f"s3://{deployed.outputs['output_bucket']}/{key}"


def _check_completed(deployed: Deployed, task_id: str, prefix: str, runtime: str,
                     context: Any) -> tuple[dict[str, Any], list[bytes]]:
    """The task completed: record, bucket objects, presigned URLs and the result message."""
    record = deployed.wait_final(task_id)
    assert record["status"] == "completed", record
    assert record["runtime"] == runtime
    assert record["attempts"] == 1
    bucket = deployed.outputs["output_bucket"]
    assert record["output_location"] == f"s3://{bucket}/{prefix}/{task_id}"
    objects = deployed.objects(f"{prefix}/{task_id}/")
    image_keys = sorted(k for k in objects if not k.endswith("result.json"))
    assert set(objects) == {*image_keys, f"{prefix}/{task_id}/result.json"}
    assert image_keys, "no image in the bucket"
    assert record["images"] == [f"s3://{bucket}/{key}" for key in image_keys]
    images = [objects[key] for key in image_keys]
    for key, data in zip(image_keys, images, strict=True):
        assert image_format(data) == "PNG"
        assert deployed.content_type(key) == "image/png"
        assert "PREVIEW - not a model" in png_text(data)["parameters"]
    # The presigned URLs the status API hands out serve exactly the stored bytes.
    assert len(record["image_urls"]) == len(images)
    for url, data in zip(record["image_urls"], images, strict=True):
        fetched = requests.get(url, timeout=30)
        assert fetched.status_code == 200
        assert fetched.content == data
    assert {"queue_wait", "inference", "total"} <= set(record["timings"])
    results = deployed.results.for_id(task_id)
    assert len(results) == 1, results
    result = results[0]
    assert result["attributes"] == {"runtime": runtime, "status": "completed"}
    assert result["body"]["result"] is True
    assert result["body"]["status"] == "completed"
    assert result["body"]["image_url"] == record["images"]
    assert result["body"]["output_url"] == f"s3://{bucket}/{prefix}/{task_id}/result.json"
    assert result["body"]["context"] == context
    return record, images


def test_v1alpha2_text_to_image(deployed: Deployed) -> None:
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = "e2e-t2i"
    body["task"]["content"]["batch_size"] = 2
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["id"] == "e2e-t2i"
    assert accepted["runtime"] == "sdruntime"
    _, images = _check_completed(deployed, "e2e-t2i", "output", "sdruntime", "")
    assert len(images) == 2
    assert [image_size(i) for i in images] == [(512, 512), (512, 512)]
    assert images[0] != images[1]  # two seeds, two pictures


def test_v1alpha2_image_to_image_with_s3_input(deployed: Deployed, input_image: str) -> None:
    body = reference_request("v1alpha2/i2i.json")
    body["task"]["metadata"]["id"] = "e2e-i2i"
    body["task"]["content"]["init_images"] = [input_image]
    body["task"]["metadata"]["context"] = {"user": "u1", "tags": ["a", "b"]}
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 202, response.text
    _, images = _check_completed(deployed, "e2e-i2i", "output", "sdruntime",
                                 {"user": "u1", "tags": ["a", "b"]})
    assert [image_size(i) for i in images] == [(512, 512)]


def test_v1alpha2_extra_single_image(deployed: Deployed, input_image: str) -> None:
    body = reference_request("v1alpha2/extra-single-image.json")
    body["task"]["metadata"]["id"] = "e2e-extra"
    body["task"]["content"]["image"] = input_image
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 202, response.text
    _, images = _check_completed(deployed, "e2e-extra", "output", "sdruntime", "")
    # upscaling_resize 4 of the 64x48 input: the input really reached the runtime.
    assert [image_size(i) for i in images] == [(INPUT_SIZE[0] * 4, INPUT_SIZE[1] * 4)]


def test_v1alpha2_comfyui_pipeline(deployed: Deployed) -> None:
    body = reference_request("v1alpha2/pipeline.json")
    body["task"]["metadata"]["id"] = "e2e-pipeline"
    body["task"]["metadata"]["runtime"] = "comfyui"
    body["task"]["content"]["5"]["inputs"]["width"] = 320
    response = deployed.post("/v1alpha2", body)
    assert response.status_code == 202, response.text
    assert response.json()["output_location"].endswith("/output/e2e-pipeline")  # no prefix
    _, images = _check_completed(deployed, "e2e-pipeline", "output", "comfyui", "")
    assert [image_size(i) for i in images] == [(320, 512)]


def test_v1alpha1_text_to_image(deployed: Deployed) -> None:
    checkpoint = deployed.stack.config.runtime("sdruntime").models[0]
    body = reference_request("v1alpha1/t2i.json")
    body["alwayson_scripts"]["id_task"] = "e2e-legacy"
    body["alwayson_scripts"]["sd_model_checkpoint"] = checkpoint
    response = deployed.post("/v1alpha1", body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id_task": "e2e-legacy", "sd_model_checkpoint": checkpoint,
        "output_location": f"s3://{deployed.outputs['output_bucket']}/outputs/e2e-legacy"}
    record, _ = _check_completed(deployed, "e2e-legacy", "outputs", "sdruntime", {})
    assert record["tasktype"] == "text-to-image"


def test_resubmitting_the_same_body_is_idempotent(deployed: Deployed) -> None:
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = "e2e-again"
    first = deployed.post("/v1alpha2", body)
    assert first.status_code == 202, first.text
    deployed.wait_final("e2e-again")
    again = deployed.post("/v1alpha2", copy.deepcopy(body))
    assert again.status_code == 202
    assert again.json() == first.json()
    other = copy.deepcopy(body)
    other["task"]["content"]["prompt"] = "A cat"
    conflict = deployed.post("/v1alpha2", other)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "id_conflict"
    assert len(deployed.published.for_id("e2e-again", "metadata.id")) == 1
    assert deployed.status("e2e-again")["attempts"] == 1
