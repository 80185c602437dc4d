"""The output bucket: outputs and the result document under ``<prefix>/<id>/``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from agent.errors import PermanentError, TransientError
from agent.images import UNKNOWN_MEDIA, media_type


@dataclass(frozen=True)
class StoredOutput:
    """One stored output file, as the result lists it (docs/contracts.md)."""

    url: str
    content_type: str
    animated: bool = False

    @property
    def is_image(self) -> bool:
        """Still and animated images; the rest (videos) are listed in ``outputs`` only."""
        return not self.content_type.startswith("video/")

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "content_type": self.content_type, "animated": self.animated}


class OutputStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_outputs(self, key: Callable[[str], str], files: Sequence[bytes],
                    animated: Sequence[bool] = ()) -> list[StoredOutput]:
        """Store a task's outputs in order: images as ``image-<n>.<ext>``, videos as
        ``video-<n>.<ext>`` (each numbered from 0), extension and content type from the bytes.
        ``animated[i]`` is what the runtime said of file ``i`` (else the bytes tell)."""
        counts = {"image": 0, "video": 0}
        stored = []
        for index, data in enumerate(files):
            media = media_type(data) or UNKNOWN_MEDIA
            name = f"{media.kind}-{counts[media.kind]}.{media.ext}"
            counts[media.kind] += 1
            object_key = key(name)
            self._s3.put_object(Bucket=self.bucket, Key=object_key, Body=data,
                                ContentType=media.content_type)
            stored.append(StoredOutput(
                self.uri(object_key), media.content_type,
                animated[index] if index < len(animated) else media.animated))
        return stored

    def put_json(self, key: str, document: Any) -> str:
        body = json.dumps(document, sort_keys=True, indent=1, default=str).encode()
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body,
                            ContentType="application/json")
        return self.uri(key)

    def read_claim_check(self, url: str, max_bytes: int) -> str:
        """The text of a claim-checked task body (``s3://<bucket>/<key>``)."""
        parts = urlsplit(url)
        try:
            response = self._s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))
            data = response["Body"].read(max_bytes + 1)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "AccessDenied"):
                raise PermanentError("invalid_task",
                                     f"claim-checked body {url} cannot be read: {code}") from exc
            raise TransientError("storage_error", f"reading claim check: {code}") from exc
        except BotoCoreError as exc:
            raise TransientError("storage_error", f"reading claim check: {exc}") from exc
        if len(data) > max_bytes:
            raise PermanentError("invalid_task", f"claim-checked body is above {max_bytes} bytes")
        return data.decode("utf-8", errors="replace")
