"""Ingest Lambda: ``POST /v1alpha2`` and the legacy ``POST /v1alpha1``.

Handler string: ``lambda_src.ingest.handler``. Validate the body, record the task with a
conditional write, publish it to the input topic (claim-checking large tasks through the
output bucket), mark it published, answer 202 (v1alpha1: 200, as the reference did).

Order matters for retries: the record is written with ``published`` false before the
publish, so a request that failed after the write (SNS or S3 down) is completed by sending
the same request again; a different body under the same id is a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambda_src import api, aws, config, messages, tasks, validation
from lambda_src.api import ApiError
from lambda_src.aws import DependencyError
from lambda_src.jsonlog import log
from task_contract.layout import output_location
from task_contract.record import QUEUED, Fields

V1ALPHA2 = "/v1alpha2"
V1ALPHA1 = "/v1alpha1"
STATUS_PATH = "/v1alpha2/tasks/"


@dataclass(frozen=True)
class Acceptance:
    id: str
    runtime: str
    output_location: str


def handler(event: Any, context: Any) -> dict[str, Any]:
    return api.run("ingest", _handle, event, context)


def status_url(event: dict[str, Any], task_id: str) -> str:
    """Absolute when the event names the domain the client called, else relative."""
    return f"{api.base_url(event)}{STATUS_PATH}{task_id}"


def _handle(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    route = api.route(event)
    if route not in (V1ALPHA2, V1ALPHA1):
        raise ApiError(404, "not_found", "no such resource; POST to /v1alpha2 or /v1alpha1")
    fields["route"] = route
    if api.method(event) != "POST":
        raise ApiError(
            405, "method_not_allowed", f"{route} accepts POST", headers={"Allow": "POST"}
        )
    cfg = config.ingest_config()
    raw = api.read_body(event, cfg.max_body_bytes)
    fields["body_bytes"] = len(raw)
    document = api.parse_json(raw)
    if route == V1ALPHA2:
        submission = validation.v1alpha2(
            document, cfg.runtimes, allow_loopback_webhooks=cfg.webhook_allow_loopback)
    else:
        submission = validation.v1alpha1(document, cfg.runtimes)
    fields.update(id=submission.id, runtime=submission.runtime, tasktype=submission.tasktype)
    accepted = submit(submission, cfg, fields)
    if route == V1ALPHA1:
        return api.response(
            200,
            {
                "id_task": accepted.id,
                "sd_model_checkpoint": submission.checkpoint,
                "output_location": accepted.output_location,
            },
        )
    return api.response(
        202,
        {
            "id": accepted.id,
            "runtime": accepted.runtime,
            "output_location": accepted.output_location,
            "status_url": status_url(event, accepted.id),
        },
    )


def _dependency_failure(
    exc: DependencyError, code: str, what: str, fields: dict[str, Any]
) -> ApiError:
    fields.update(dependency=f"{exc.service}:{exc.operation}", dependency_error=exc.code)
    return api.dependency_error(exc, code, what)


def submit(
    submission: validation.Submission, cfg: config.IngestConfig, fields: dict[str, Any]
) -> Acceptance:
    """Record, publish and mark published; idempotent for the same id and body."""
    now = datetime.now(UTC)
    sha256 = messages.request_sha256(submission.task)
    record = tasks.new_record(
        submission,
        sha256,
        output_location=output_location(cfg.bucket, submission.prefix, submission.id),
        now=now,
        ttl_days=cfg.task_ttl_days,
    )
    try:
        existing = tasks.create(cfg.table, record, now)
    except DependencyError as exc:
        raise _dependency_failure(exc, "task_table_failed", "the task table", fields) from exc

    outcome = "accepted"
    if existing is not None:
        if existing.get(Fields.REQUEST_SHA256) != sha256:
            fields["outcome"] = "id_conflict"
            raise ApiError(
                409,
                "id_conflict",
                f"task id '{submission.id}' was already submitted with a different body; "
                "use a new id (the same body again returns the original acceptance)",
                [{"path": _id_path(submission), "message": "already used by another request"}],
            )
        record = existing
        # Published, or already picked up by an agent (which proves it was): nothing to do.
        if existing.get(Fields.PUBLISHED) is True or existing.get(Fields.STATUS) != QUEUED:
            fields["outcome"] = "duplicate"
            return _acceptance(record)
        outcome = "republished"

    outgoing = messages.build(
        submission.task, submission.runtime, sha256, cfg.bucket, cfg.sns_max_bytes
    )
    fields.update(message_bytes=outgoing.size, claim_check=outgoing.claim_check_key is not None)
    if outgoing.claim_check_key is not None:
        try:
            aws.call(
                "s3",
                "PutObject",
                aws.client("s3").put_object,
                Bucket=cfg.bucket,
                Key=outgoing.claim_check_key,
                Body=outgoing.claim_check_body,
                ContentType="application/json",
            )
        except DependencyError as exc:
            raise _dependency_failure(
                exc, "claim_check_failed", "storing the request body", fields
            ) from exc
    try:
        aws.call(
            "sns",
            "Publish",
            aws.client("sns").publish,
            TopicArn=cfg.topic_arn,
            Message=outgoing.message,
            MessageAttributes=outgoing.attributes,
        )
    except DependencyError as exc:
        raise _dependency_failure(exc, "publish_failed", "publishing the task", fields) from exc
    try:
        tasks.mark_published(cfg.table, submission.id, sha256)
    except DependencyError as exc:
        # The task is on its way: answer success. The record keeps published=false, so a
        # resubmission publishes it again (the agent tolerates duplicate delivery).
        log(
            "WARNING",
            "published_not_marked",
            id=submission.id,
            dependency=f"{exc.service}:{exc.operation}",
            dependency_error=exc.code,
        )
        fields["mark_published_failed"] = True
    fields["outcome"] = outcome
    return _acceptance(record)


def _id_path(submission: validation.Submission) -> str:
    return "alwayson_scripts.id_task" if submission.source == "v1alpha1" else "task.metadata.id"


def _acceptance(record: dict[str, Any]) -> Acceptance:
    return Acceptance(
        id=str(record[Fields.ID]),
        runtime=str(record.get(Fields.RUNTIME, "")),
        output_location=str(record.get(Fields.OUTPUT_LOCATION, "")),
    )
