"""The output bucket's keys: a task's outputs under ``<prefix>/<id>/``, claim checks under
``_requests/<id>/`` (docs/contracts.md, "Output bucket keys")."""

from __future__ import annotations

from urllib.parse import urlsplit

# Key prefix of claim-checked request bodies in the output bucket: written by ingest only,
# never an output prefix.
CLAIM_CHECK_PREFIX = "_requests/"
# The output prefix of a task that names none.
DEFAULT_PREFIX = "output"
# The result document beside a task's images.
RESULT_DOCUMENT = "result.json"


def output_key(prefix: str, task_id: str, name: str) -> str:
    """The key of one of a task's outputs: ``<prefix>/<id>/<name>``."""
    return f"{prefix}/{task_id}/{name}"


def output_location(bucket: str, prefix: str, task_id: str) -> str:
    """``s3://<bucket>/<prefix>/<id>``: where a task's outputs go (the record's location)."""
    return f"s3://{bucket}/{prefix}/{task_id}"


def result_url(output_location_: str) -> str:
    """The result document's URI under a task's output location."""
    return f"{output_location_}/{RESULT_DOCUMENT}"


def claim_check_key(task_id: str, sha256: str) -> str:
    """``_requests/<id>/<request_sha256>.json``: deterministic, so a re-publish overwrites."""
    return f"{CLAIM_CHECK_PREFIX}{task_id}/{sha256}.json"


def claim_check_problem(ref: object, bucket: str, task_id: str) -> str | None:
    """Why ``ref`` is not a claim check of task ``task_id`` in ``bucket``; ``None`` if it is.

    Only ingest writes claim checks, always at :func:`claim_check_key`: a reference elsewhere
    (another bucket, another task's objects, outputs) is refused, never read.
    """
    parts = urlsplit(ref) if isinstance(ref, str) else None
    key = parts.path[1:] if parts is not None else ""
    expected = f"{CLAIM_CHECK_PREFIX}{task_id}/"
    if (parts is None or parts.scheme != "s3" or parts.netloc != bucket
            or not key.startswith(expected) or len(key) == len(expected)
            or parts.query or parts.fragment):
        return (f"must be an s3:// URL of the task's claim check in the output bucket: "
                f"s3://{bucket}/{expected}<request_sha256>.json")
    return None
