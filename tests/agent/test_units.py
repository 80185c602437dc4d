"""Unit tests: image sniffing, redaction, heartbeat against the emulator, exit on bad config."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import boto3
import pytest
from PIL import Image

from agent.heartbeat import Heartbeat
from agent.images import media_type, sniff
from agent.report import redact_images
from tests.agent.harness import REPO, Stack, wait_for


def _encode(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "ext", "content_type"), [
    ("PNG", "png", "image/png"), ("JPEG", "jpeg", "image/jpeg"),
    ("WEBP", "webp", "image/webp"), ("GIF", "gif", "image/gif")])
def test_format_is_sniffed_from_the_bytes(fmt: str, ext: str, content_type: str) -> None:
    assert sniff(_encode(fmt)) == (ext, content_type)


def test_unknown_bytes_are_octet_stream() -> None:
    assert sniff(b"hello") == ("bin", "application/octet-stream")


def test_inline_image_data_is_removed_from_parameters() -> None:
    big = "iVBORw0KGgo" + "A" * 5000
    params = {"prompt": "a cat " * 100, "init_images": [big], "mask": None,
              "alwayson_scripts": {"controlnet": {"args": [{"image": big, "weight": 1}]}},
              "seed": 3}
    clean = redact_images(params)
    assert clean["init_images"] == "<image>"
    assert clean["alwayson_scripts"]["controlnet"]["args"][0] == {"image": "<image>",
                                                                  "weight": 1}
    assert clean["prompt"] == params["prompt"] and clean["seed"] == 3 and clean["mask"] is None
    assert len(json.dumps(clean)) < 1000


def test_output_formats_are_told_by_their_bytes() -> None:
    webp_animated = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02" + bytes(10)
    assert media_type(webp_animated).animated is True
    webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm"
    assert (media_type(webm).ext, media_type(webm).kind) == ("webm", "video")
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00"
    assert (media_type(mp4).content_type, media_type(mp4).kind) == ("video/mp4", "video")
    assert media_type(_encode("PNG")).animated is False
    assert media_type(_encode("JPEG")).content_type == "image/jpeg"
    assert media_type(b"glTF binary") is None


def test_heartbeat_extends_held_messages_and_stops_when_dropped(agent_emulator) -> None:
    stack = Stack(agent_emulator.endpoint, queue_visibility=2)
    sqs = boto3.client("sqs", endpoint_url=agent_emulator.endpoint, region_name="us-west-2")
    stack.send_raw("held")
    message = sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=2)["Messages"][0]
    beat = Heartbeat(sqs, stack.queue_url, visibility_seconds=2, interval_seconds=0.5)
    beat.start()
    try:
        beat.hold(message["MessageId"], message["ReceiptHandle"])
        time.sleep(4)  # twice the visibility timeout: without the heartbeat it reappears
        assert stack.queue_counts() == (0, 1)
        beat.drop(message["MessageId"])
        assert beat.held_count() == 0
        wait_for(lambda: stack.queue_counts() == (1, 0), 6, "the message to reappear")
    finally:
        beat.stop()


def test_bad_configuration_exits_2_listing_every_problem() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "RUNTIME_TYPE": "nope",
           "AGENT_WAIT_TIME_SECONDS": "99"}
    done = subprocess.run([sys.executable, "-m", "agent"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    for fragment in ("SQS_QUEUE_URL is required", "RUNTIME_TYPE must be one of",
                     "AGENT_WAIT_TIME_SECONDS must be between 0 and 20"):
        assert fragment in done.stderr


def test_error_details_are_bounded() -> None:
    from agent.errors import MAX_DETAILS_CHARS, PermanentError

    echoed = {"detail": [{"loc": ["body", "init_images", 0], "input": "A" * 500_000,
                          "msg": "Input should be a valid string"}] * 50}
    error = PermanentError("runtime_validation", "x" * 10_000, echoed)
    assert len(error.message) <= 600
    assert len(json.dumps(error.details)) <= MAX_DETAILS_CHARS
    assert error.details["detail"][0]["msg"] == "Input should be a valid string"
    small = PermanentError("c", "m", {"node_errors": {"3": {"class_type": "KSampler"}}})
    assert small.details == {"node_errors": {"3": {"class_type": "KSampler"}}}
