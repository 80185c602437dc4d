"""The output bucket: images and the result document under ``<prefix>/<id>/``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from agent.errors import PermanentError, TransientError
from agent.images import sniff


class OutputStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_image(self, key_stem: str, data: bytes) -> str:
        """Store one image as ``<key_stem>.<ext>``; the extension and type come from the bytes."""
        ext, content_type = sniff(data)
        key = f"{key_stem}.{ext}"
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return self.uri(key)

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
