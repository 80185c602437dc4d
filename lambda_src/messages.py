"""The input-topic message for a task: canonical form, size accounting, claim check.

The message body is the task ``{"metadata", "content"}``; when that message (plus its
attributes, as SNS counts them) would exceed ``SNS_MAX_BYTES``, the task is stored in the
output bucket at ``_requests/<id>/<request_sha256>.json`` and the message becomes
``{"metadata", "content_ref": "s3://<bucket>/<key>"}``. The key is deterministic, so
publishing the same task again overwrites the same object with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from task_contract.layout import claim_check_key


def canonical_json(task: dict[str, Any]) -> str:
    """The form hashed for idempotency (docs/contracts.md): sorted keys, no spaces, ASCII."""
    return json.dumps(task, sort_keys=True, separators=(",", ":"))


def request_sha256(task: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(task).encode("ascii")).hexdigest()


def message_attributes(runtime: str) -> dict[str, dict[str, str]]:
    return {"runtime": {"DataType": "String", "StringValue": runtime}}


def attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    """SNS counts each attribute's name, data type and value towards the message size."""
    return sum(
        len(name.encode("utf-8"))
        + len(spec["DataType"].encode("utf-8"))
        + len(spec["StringValue"].encode("utf-8"))
        for name, spec in attributes.items()
    )


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """What to publish, and the object to store first when the task is claim-checked."""

    message: str
    attributes: dict[str, dict[str, str]]
    size: int  # message + attributes, in bytes, as SNS counts them
    claim_check_key: str | None = None
    claim_check_body: bytes | None = None


def build(task: dict[str, Any], runtime: str, sha256: str, bucket: str, max_bytes: int) -> Outgoing:
    """The message for ``task``, claim-checked when it would exceed ``max_bytes``.

    Messages are ASCII JSON (non-ASCII escaped), so SNS's character rules can never reject
    one and byte size equals character count.
    """
    attributes = message_attributes(runtime)
    overhead = attributes_size(attributes)
    inline = json.dumps(task, separators=(",", ":"))
    if len(inline) + overhead <= max_bytes:
        return Outgoing(message=inline, attributes=attributes, size=len(inline) + overhead)
    key = claim_check_key(task["metadata"]["id"], sha256)
    pointer = json.dumps(
        {"metadata": task["metadata"], "content_ref": f"s3://{bucket}/{key}"},
        separators=(",", ":"),
    )
    return Outgoing(
        message=pointer,
        attributes=attributes,
        size=len(pointer) + overhead,
        claim_check_key=key,
        claim_check_body=canonical_json(task).encode("ascii"),
    )
