"""``make upload-model``: put a checkpoint where each runtime reads it.

    python -m sdaas.upload_model FILE [--runtime NAME ...] [--bucket BUCKET]

A runtime mounts ``s3://<model bucket>/<model prefix>/`` at its models directory, so a
checkpoint goes to

    sdwebui   <model prefix>/Stable-diffusion/<file name>
    comfyui   <model prefix>/checkpoints/<file name>

for every runtime named with ``--runtime`` (default: every configured runtime). The model
prefix of a runtime is ``runtimes[].model_prefix`` in the configuration file (default: its
name; empty: the bucket's top level). The bucket is ``--bucket``, else the stack's
Terraform output ``model_bucket``.

The file is read once before the upload to compute its SHA-256 (stored as the object's
``sha256`` metadata, so anyone can check a download with ``sha256sum``) and the SHA-256 of
each part. The upload is multipart (``--part-size-mib``) with S3 SHA-256 checksums
(``ChecksumAlgorithm=SHA256``: S3 checks every part as it arrives); afterwards the object's
checksum as S3 reports it is compared with the one computed locally, and its size and
``sha256`` metadata too. Further runtimes get a server-side copy, verified the same way.
A destination that already holds the same bytes (same ``sha256`` metadata and a matching
checksum) is left alone unless ``--force``.

Progress goes to stderr; the destinations, one ``s3://`` URI a line, to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from constructs_lib.models import CHECKPOINT_DIRS
from sdaas.terraform import TerraformError, read_output

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB  # S3's smallest part (but the last)
MAX_PARTS = 10_000
DEFAULT_PART_MIB = 64
READ_BYTES = 4 * MIB


class UploadError(Exception):
    """The upload could not be done or did not verify; the message says what to do."""


@dataclass(frozen=True)
class Destination:
    runtime: str
    runtime_type: str
    key: str


@dataclass(frozen=True)
class Digests:
    """What S3 must report for the file uploaded in parts of ``part_size`` bytes."""

    size: int
    part_size: int
    sha256_hex: str
    part_sha256: tuple[bytes, ...]
    full_sha256: bytes

    @property
    def multipart(self) -> bool:
        # s3transfer uploads in parts from multipart_threshold (= part_size) up.
        return self.size >= self.part_size

    @property
    def checksum(self) -> str:
        """The ``ChecksumSHA256`` S3 reports: of the whole object for a single PUT, of the
        concatenated part checksums (``-<parts>``) for a multipart upload."""
        if not self.multipart:
            return base64.b64encode(self.full_sha256).decode()
        composite = hashlib.sha256(b"".join(self.part_sha256)).digest()
        return f"{base64.b64encode(composite).decode()}-{len(self.part_sha256)}"


def destination_key(prefix: str, runtime_type: str, filename: str) -> str:
    """Where a runtime of ``runtime_type`` with model prefix ``prefix`` reads ``filename``."""
    try:
        directory = CHECKPOINT_DIRS[runtime_type]
    except KeyError:
        raise UploadError(
            f"unknown runtime type {runtime_type!r}: expected one of "
            f"{', '.join(sorted(CHECKPOINT_DIRS))}"
        ) from None
    if "/" in filename or filename in ("", ".", ".."):
        raise UploadError(f"not a file name: {filename!r}")
    prefix = prefix.strip("/")
    return f"{prefix}/{directory}/{filename}" if prefix else f"{directory}/{filename}"


def part_size_for(size: int, requested: int) -> int:
    """The part size s3transfer will really use: at least 5 MiB, doubled until the file
    fits in 10,000 parts (its own adjustment, repeated here so the local part checksums
    line up with the uploaded parts)."""
    part = max(requested, MIN_PART_BYTES)
    while -(-size // part) > MAX_PARTS:
        part *= 2
    return part


class Progress:
    """A progress bar on a stream (stderr): redrawn in place on a terminal, a line per
    tenth otherwise (logs, CI)."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None,
                 width: int = 30) -> None:
        self._label = label
        self._total = max(total, 1)
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._width = width
        self._done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_tenth = -1

    def __call__(self, amount: int) -> None:
        with self._lock:
            self._done = min(self._done + amount, self._total)
            self._draw()

    def _draw(self) -> None:
        fraction = self._done / self._total
        tenth = int(fraction * 10)
        if not self._tty and tenth == self._last_tenth:
            return
        self._last_tenth = tenth
        filled = int(fraction * self._width)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._done / elapsed / MIB
        line = (f"{self._label} [{'#' * filled}{'.' * (self._width - filled)}] "
                f"{fraction:6.1%} {self._done / MIB:,.1f}/{self._total / MIB:,.1f} MiB "
                f"{rate:,.1f} MiB/s")
        self._stream.write(("\r" + line) if self._tty else line + "\n")
        self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._tty:
                self._stream.write("\n")
                self._stream.flush()


def file_digests(path: Path, part_size: int,
                 progress: Callable[[int], None] | None = None) -> Digests:
    """Read ``path`` once: its SHA-256 and the SHA-256 of each ``part_size`` part."""
    size = path.stat().st_size
    whole = hashlib.sha256()
    parts: list[bytes] = []
    with path.open("rb") as handle:
        while True:
            part = hashlib.sha256()
            remaining = part_size
            read_any = False
            while remaining:
                chunk = handle.read(min(READ_BYTES, remaining))
                if not chunk:
                    break
                read_any = True
                whole.update(chunk)
                part.update(chunk)
                remaining -= len(chunk)
                if progress:
                    progress(len(chunk))
            if not read_any:
                break
            parts.append(part.digest())
    return Digests(size=size, part_size=part_size, sha256_hex=whole.hexdigest(),
                   part_sha256=tuple(parts), full_sha256=whole.digest())


def _same_checksum(reported: str | None, expected: str) -> bool:
    """S3 reports a multipart checksum with its ``-<parts>`` suffix (HeadObject) or
    without (some APIs and emulators); compare the suffix only when both have one."""
    if not reported:
        return False
    got, _, got_parts = reported.partition("-")
    want, _, want_parts = expected.partition("-")
    return got == want and (not got_parts or not want_parts or got_parts == want_parts)


def verify_object(s3: Any, bucket: str, key: str, digests: Digests) -> list[str]:
    """Problems with ``s3://bucket/key`` as a copy of the file ``digests`` describes."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    problems = []
    if head.get("ContentLength") != digests.size:
        problems.append(f"size {head.get('ContentLength')} instead of {digests.size}")
    reported = head.get("ChecksumSHA256")
    if not _same_checksum(reported, digests.checksum):
        problems.append(f"SHA-256 checksum {reported or 'missing'} instead of {digests.checksum}")
    stored = (head.get("Metadata") or {}).get("sha256")
    if stored != digests.sha256_hex:
        problems.append(f"sha256 metadata {stored or 'missing'} instead of {digests.sha256_hex}")
    return problems


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def upload(s3: Any, path: Path, bucket: str, destinations: Sequence[Destination], *,
           part_size: int = DEFAULT_PART_MIB * MIB, force: bool = False,
           max_concurrency: int = 8, stream: IO[str] | None = None) -> list[str]:
    """Upload ``path`` to every destination and verify each; return their ``s3://`` URIs.

    Raises :class:`UploadError` when a destination does not verify.
    """
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415

    if not destinations:
        raise UploadError("no destination: name at least one runtime")
    stream = stream if stream is not None else sys.stderr
    size = path.stat().st_size
    part = part_size_for(size, part_size)
    hashing = Progress(f"sha256  {path.name}", size, stream)
    digests = file_digests(path, part, hashing)
    hashing.close()
    stream.write(f"sha256 {digests.sha256_hex}  {path.name} ({size:,} bytes, "
                 f"{len(digests.part_sha256)} part(s) of {part // MIB} MiB)\n")

    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                            max_concurrency=max_concurrency, use_threads=True)
    extra = {
        "ChecksumAlgorithm": "SHA256",
        "ContentType": "application/octet-stream",
        "Metadata": {"sha256": digests.sha256_hex},
    }
    uris: list[str] = []
    source: Destination | None = None
    for dest in destinations:
        uri = f"s3://{bucket}/{dest.key}"
        if not force and _exists(s3, bucket, dest.key) and not verify_object(
            s3, bucket, dest.key, digests
        ):
            stream.write(f"{uri}: already holds this file (sha256 verified), skipped\n")
        elif source is None:
            bar = Progress(f"upload  {dest.runtime}", size, stream)
            s3.upload_file(str(path), bucket, dest.key, ExtraArgs=extra, Config=config,
                           Callback=bar)
            bar.close()
        else:
            bar = Progress(f"copy    {dest.runtime}", size, stream)
            s3.copy({"Bucket": bucket, "Key": source.key}, bucket, dest.key,
                    ExtraArgs={**extra, "MetadataDirective": "REPLACE"}, Config=config,
                    Callback=bar)
            bar.close()
        problems = verify_object(s3, bucket, dest.key, digests)
        if problems:
            raise UploadError(
                f"{uri} does not match {path} after the upload: {'; '.join(problems)}. "
                "Run the upload again with --force."
            )
        stream.write(f"{uri}: verified (SHA-256 {digests.checksum})\n")
        source = source or dest
        uris.append(uri)
    return uris


# --- where to --------------------------------------------------------------------------


def destinations_for(config: Any, filename: str,
                     runtimes: Sequence[str] | None = None) -> list[Destination]:
    """The destination of ``filename`` for each named runtime (default: all), in the
    configuration's order; the same key is listed once."""
    configured = {r.name: r for r in config.runtimes}
    wanted = list(runtimes) if runtimes else list(configured)
    unknown = [name for name in wanted if name not in configured]
    if unknown:
        raise UploadError(
            f"unknown runtime(s) {', '.join(unknown)}; configured: {', '.join(configured)}"
        )
    out: list[Destination] = []
    seen: set[str] = set()
    for name, spec in configured.items():
        if name not in wanted:
            continue
        prefix = spec.name if spec.model_prefix is None else spec.model_prefix
        key = destination_key(prefix, spec.type, filename)
        if key not in seen:
            seen.add(key)
            out.append(Destination(runtime=name, runtime_type=spec.type, key=key))
    return out


def bucket_from_terraform(stack_dir: Path) -> str:
    """The ``model_bucket`` output of the applied stack in ``stack_dir``."""
    if not stack_dir.is_dir():
        raise UploadError(
            f"no synthesized stack in {stack_dir}: pass --bucket, or run `make synth` and "
            "`make apply` first"
        )
    try:
        value = read_output(stack_dir, "model_bucket")
    except TerraformError as exc:
        raise UploadError(f"{exc}: pass --bucket") from None
    if not isinstance(value, str) or not value:
        raise UploadError(f"terraform output model_bucket is not a bucket name: {value!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upload-model",
        description="Upload a checkpoint to the model bucket where each runtime reads it "
        "(sdwebui: <prefix>/Stable-diffusion/, comfyui: <prefix>/checkpoints/).",
    )
    parser.add_argument("file", type=Path, help="the checkpoint (.safetensors, .ckpt, ...)")
    parser.add_argument("--runtime", action="append", default=[],
                        help="a configured runtime (repeatable; default: every runtime)")
    parser.add_argument("--bucket", help="model bucket (default: Terraform output model_bucket)")
    parser.add_argument("--config", type=Path,
                        help="configuration file (default: SD_CONFIG, config.yaml, the example)")
    parser.add_argument("--stack-dir", type=Path,
                        help="synthesized stack to read outputs from "
                        "(default: $CDKTF_OUTDIR or cdktf.out, then stacks/<name>)")
    parser.add_argument("--part-size-mib", type=int, default=DEFAULT_PART_MIB,
                        help=f"multipart part size in MiB (>= 5; default {DEFAULT_PART_MIB})")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel part uploads")
    parser.add_argument("--force", action="store_true",
                        help="upload even where the same file already is")
    parser.add_argument("--region", help="AWS region (default: the configuration's)")
    parser.add_argument("--endpoint-url", help="S3 endpoint (a local emulator)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``make upload-model``; returns the exit status (0, 1 failed, 2 usage)."""
    from sdaas.config import ConfigError, load_config  # noqa: PLC0415

    args = _parser().parse_args(argv)
    try:
        path: Path = args.file
        if not path.is_file():
            raise UploadError(f"{path}: no such file")
        if args.part_size_mib < 5:
            raise UploadError(f"--part-size-mib must be >= 5 (got {args.part_size_mib})")
        if args.concurrency < 1:
            raise UploadError(f"--concurrency must be >= 1 (got {args.concurrency})")
        config = load_config(args.config)
        destinations = destinations_for(config, path.name, args.runtime)
        bucket = args.bucket or bucket_from_terraform(
            args.stack_dir
            or Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out")) / "stacks" / config.name
        )
    except (UploadError, ConfigError) as exc:
        print(f"upload-model: {exc}", file=sys.stderr)
        return 2

    import boto3  # noqa: PLC0415
    from botocore.config import Config as BotoConfig  # noqa: PLC0415
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    session = boto3.Session()
    no_credentials = ("upload-model: no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID "
                      "and AWS_SECRET_ACCESS_KEY (or run `aws configure`), then try again")
    if session.get_credentials() is None:  # before hashing a checkpoint of gigabytes
        print(no_credentials, file=sys.stderr)
        return 1
    s3 = session.client(
        "s3",
        region_name=args.region or os.environ.get("AWS_REGION") or config.region,
        endpoint_url=args.endpoint_url,
        config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"},
                          connect_timeout=10, read_timeout=120),
    )
    try:
        for uri in upload(s3, path, bucket, destinations,
                          part_size=args.part_size_mib * MIB, force=args.force,
                          max_concurrency=args.concurrency):
            print(uri)
    except UploadError as exc:
        print(f"upload-model: {exc}", file=sys.stderr)
        return 1
    except (NoCredentialsError, PartialCredentialsError):
        print(no_credentials, file=sys.stderr)
        return 1
    except ClientError as exc:
        print(f"upload-model: S3 refused the upload: {exc}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"upload-model: could not reach S3: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
