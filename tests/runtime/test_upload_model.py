"""``make upload-model`` (sdaas/upload_model.py) against the local S3 emulator:
multipart uploads with SHA-256 checksums, verified, to where each runtime type reads."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import shutil
from pathlib import Path

import boto3
import pytest

from sdaas import terraform, upload_model
from sdaas.config import EXAMPLE_CONFIG, load_config
from sdaas.upload_model import (
    MIB,
    Destination,
    Progress,
    UploadError,
    destination_key,
    destinations_for,
    file_digests,
    main,
    part_size_for,
    upload,
)

pytestmark = pytest.mark.emulator

PART = 5 * MIB
MODEL = "sd_xl_turbo_1.0.safetensors"


@pytest.fixture(scope="module")
def s3(emulator):
    return boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-west-2")


@pytest.fixture
def bucket(s3, request) -> str:
    name = "models-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return name


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """12 MiB + 123 bytes of seeded random data: three parts of 5 MiB (the last short)."""
    path = tmp_path_factory.mktemp("model") / MODEL
    path.write_bytes(random.Random(20240607).randbytes(12 * MIB + 123))  # noqa: S311 - test data
    return path


def run(emulator, *args: str) -> int:
    return main([*args, "--endpoint-url", emulator.endpoint, "--config", str(EXAMPLE_CONFIG)])


def composite(data: bytes, part: int) -> str:
    parts = [data[i:i + part] for i in range(0, len(data), part)]
    digest = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    return f"{base64.b64encode(digest).decode()}-{len(parts)}"


def test_multipart_upload_reaches_every_runtime_and_verifies(emulator, s3, bucket, checkpoint,
                                                             capsys):
    assert run(emulator, str(checkpoint), "--bucket", bucket, "--part-size-mib", "5") == 0
    out, err = capsys.readouterr()
    assert out.split() == [f"s3://{bucket}/sdruntime/Stable-diffusion/{MODEL}",
                           f"s3://{bucket}/comfyui/checkpoints/{MODEL}"]
    data = checkpoint.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    for key in (f"sdruntime/Stable-diffusion/{MODEL}", f"comfyui/checkpoints/{MODEL}"):
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ContentLength"] == len(data)
        assert head["Metadata"] == {"sha256": sha}
        assert head["ChecksumSHA256"].split("-")[0] == composite(data, PART).split("-")[0]
        assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                              ).hexdigest() == sha
    first = s3.head_object(Bucket=bucket, Key=f"sdruntime/Stable-diffusion/{MODEL}")
    assert first["ETag"].strip('"').endswith("-3")  # three parts
    assert f"sha256 {sha}" in err
    assert "3 part(s) of 5 MiB" in err
    assert "100.0%" in err  # the progress bar finished, on stderr
    assert err.count("verified (SHA-256 ") == 2


def test_one_runtime_only_and_unchanged_files_are_skipped(emulator, s3, bucket, checkpoint,
                                                          capsys):
    args = (str(checkpoint), "--bucket", bucket, "--part-size-mib", "5", "--runtime", "comfyui")
    assert run(emulator, *args) == 0
    assert capsys.readouterr().out.split() == [f"s3://{bucket}/comfyui/checkpoints/{MODEL}"]
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"comfyui/checkpoints/{MODEL}"]

    assert run(emulator, *args) == 0
    assert "already holds this file (sha256 verified), skipped" in capsys.readouterr().err
    assert run(emulator, *args, "--force") == 0
    assert "skipped" not in capsys.readouterr().err


def test_small_file_single_put_has_a_whole_object_checksum(emulator, s3, bucket, tmp_path,
                                                           capsys):
    small = tmp_path / "tiny.safetensors"
    small.write_bytes(b"x" * 1000)
    assert run(emulator, str(small), "--bucket", bucket, "--runtime", "sdruntime") == 0
    capsys.readouterr()
    head = s3.head_object(Bucket=bucket, Key="sdruntime/Stable-diffusion/tiny.safetensors",
                          ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(
        hashlib.sha256(b"x" * 1000).digest()).decode()
    assert "-" not in head["ETag"]


def test_an_object_that_does_not_match_fails_the_upload(emulator, s3, bucket, checkpoint):
    class CorruptingClient:
        """Uploads other bytes than the file's, as a broken transfer would."""

        def __init__(self, real):
            self._real = real

        def upload_file(self, filename, bucket_name, key, **kwargs):
            self._real.put_object(Bucket=bucket_name, Key=key, Body=b"not the model",
                                  Metadata=kwargs["ExtraArgs"]["Metadata"],
                                  ChecksumAlgorithm="SHA256")

        def __getattr__(self, name):
            return getattr(self._real, name)

    destination = Destination(runtime="sdruntime", runtime_type="sdwebui",
                              key=f"sdruntime/Stable-diffusion/{MODEL}")
    with pytest.raises(UploadError, match="does not match") as info:
        upload(CorruptingClient(s3), checkpoint, bucket, [destination], part_size=PART,
               stream=io.StringIO())
    message = str(info.value)
    assert f"size 13 instead of {12 * MIB + 123}" in message
    assert "SHA-256 checksum" in message and "--force" in message


def test_unknown_runtime_and_missing_outputs_are_usage_errors(emulator, checkpoint, tmp_path,
                                                              capsys):
    assert run(emulator, str(checkpoint), "--bucket", "b", "--runtime", "nope") == 2
    assert "unknown runtime(s) nope; configured: sdruntime, comfyui" in capsys.readouterr().err
    assert run(emulator, str(checkpoint), "--stack-dir", str(tmp_path / "none")) == 2
    assert "pass --bucket" in capsys.readouterr().err
    assert run(emulator, str(tmp_path / "absent.safetensors"), "--bucket", "b") == 2
    assert "no such file" in capsys.readouterr().err
    assert run(emulator, str(checkpoint), "--bucket", "b", "--part-size-mib", "1") == 2
    assert "--part-size-mib must be >= 5" in capsys.readouterr().err


def test_bucket_from_terraform_reads_the_model_bucket_output(tmp_path, monkeypatch):
    calls = []

    class Done:
        returncode, stdout, stderr = 0, '"sdaas-models-123456789012-us-west-2"\n', ""

    def fake_run(args, **kwargs):
        calls.append(args)
        return Done()

    monkeypatch.setattr(terraform.subprocess, "run", fake_run)
    assert upload_model.bucket_from_terraform(tmp_path) == "sdaas-models-123456789012-us-west-2"
    assert calls == [["terraform", f"-chdir={tmp_path}", "output", "-no-color", "-json",
                      "model_bucket"]]


def test_no_credentials_is_said_before_any_work(checkpoint, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(checkpoint.parent / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(checkpoint.parent / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main([str(checkpoint), "--bucket", "b", "--endpoint-url", "http://127.0.0.1:9",
                 "--config", str(EXAMPLE_CONFIG)]) == 1
    captured = capsys.readouterr()
    assert "upload-model: no AWS credentials: set AWS_PROFILE" in captured.err
    assert "refused" not in captured.err and "sha256" not in captured.out + captured.err


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_reading_the_bucket_before_apply_says_so_without_terminal_codes(tmp_path, capsys,
                                                                       checkpoint):
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "main.tf.json").write_text(json.dumps(
        {"terraform": {"backend": {"local": {"path": "terraform.tfstate"}}}}))
    assert main([str(checkpoint), "--stack-dir", str(stack),
                 "--config", str(EXAMPLE_CONFIG)]) == 2
    err = capsys.readouterr().err
    assert "\x1b[" not in err and "\u2502" not in err
    assert err.startswith(f"upload-model: cannot read the model_bucket output in {stack} "
                          "(has the stack been applied?): ")
    assert err.rstrip().endswith('Error: Backend initialization required, please run '
                                 '"terraform init": pass --bucket')


# --- units -------------------------------------------------------------------------------


def test_destination_keys_follow_the_runtime_type():
    assert destination_key("sdruntime", "sdwebui", "m.safetensors") == (
        "sdruntime/Stable-diffusion/m.safetensors")
    assert destination_key("models/comfy/", "comfyui", "m.ckpt") == (
        "models/comfy/checkpoints/m.ckpt")
    with pytest.raises(UploadError, match="unknown runtime type"):
        destination_key("x", "invokeai", "m")
    with pytest.raises(UploadError, match="not a file name"):
        destination_key("x", "sdwebui", "a/b")


def test_destinations_use_each_runtimes_model_prefix():
    config = load_config(EXAMPLE_CONFIG)
    assert destinations_for(config, MODEL) == [
        Destination("sdruntime", "sdwebui", f"sdruntime/Stable-diffusion/{MODEL}"),
        Destination("comfyui", "comfyui", f"comfyui/checkpoints/{MODEL}"),
    ]
    custom = config.model_copy(update={"runtimes": [
        config.runtimes[0].model_copy(update={"model_prefix": "shared/webui"})]})
    assert destinations_for(custom, MODEL)[0].key == f"shared/webui/Stable-diffusion/{MODEL}"


def test_part_size_follows_s3_limits():
    assert part_size_for(10 * MIB, 1 * MIB) == 5 * MIB  # S3's minimum part
    assert part_size_for(100 * MIB, 64 * MIB) == 64 * MIB
    size = 10_000 * 8 * MIB + 1  # one byte too many for 10,000 parts of 8 MiB
    assert part_size_for(size, 8 * MIB) == 16 * MIB


def test_digests_match_what_s3_computes(tmp_path):
    data = random.Random(1).randbytes(11 * MIB)  # noqa: S311 - test data
    path = tmp_path / "m.bin"
    path.write_bytes(data)
    digests = file_digests(path, PART)
    assert digests.sha256_hex == hashlib.sha256(data).hexdigest()
    assert digests.multipart and digests.checksum == composite(data, PART)
    small = file_digests(path, 16 * MIB)
    assert not small.multipart
    assert small.checksum == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_progress_bar_writes_tenths_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress("upload", 100, stream)
    for _ in range(100):
        bar(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    # the start, then 10 %, 20 %, ... 100 %: not one line per callback
    assert len(lines) == 11
    assert lines[0].startswith("upload [..............................]   1.0%")
    assert lines[-1].startswith("upload [##############################] 100.0%")


def test_an_empty_model_prefix_puts_the_model_at_the_top_level():
    config = load_config(EXAMPLE_CONFIG)
    top = config.model_copy(update={"runtimes": [
        config.runtimes[0].model_copy(update={"model_prefix": ""})]})
    assert destinations_for(top, MODEL)[0].key == f"Stable-diffusion/{MODEL}"
