"""SQS message move tasks for the local emulator: ``StartMessageMoveTask`` and
``ListMessageMoveTasks``, which moto 5.2 lacks.

:class:`MessageMoveTasks` wraps the emulator's WSGI application and answers these two
actions (JSON protocol, as boto3 speaks it) from moto's own SQS backend in the same process;
every other request goes to moto unchanged. AWS's rules that matter to a redrive are kept:

* the source must exist and be some queue's dead-letter queue (its ``RedrivePolicy``
  names it), else ``ResourceNotFoundException`` / ``UnsupportedOperation``;
* without ``DestinationArn`` the messages go back to the queue that uses the source as its
  dead-letter queue (AWS: their original source queues; this needs that queue to be the
  only one);
* the messages visible when the task starts are moved, body and attributes unchanged, as new
  messages (their receive count starts again); messages in flight stay.

Differences, on purpose: a task runs to its end inside the start call (``ListMessageMoveTasks``
then shows it ``COMPLETED``), so there is nothing to cancel and
``MaxNumberOfMessagesPerSecond`` is only echoed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

TARGET_PREFIX = "AmazonSQS."
ACTIONS = ("StartMessageMoveTask", "ListMessageMoveTasks")
LIST_MAX_RESULTS = 10
_JSON = "application/x-amz-json-1.0"


class _Refused(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class _Task:
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started_ms: int
    to_move: int
    moved: int = 0
    status: str = "RUNNING"
    failure: str | None = None

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "Status": self.status, "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == "RUNNING":
            result["TaskHandle"] = self.handle
        if self.destination_arn:
            result["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            result["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            result["FailureReason"] = self.failure
        return result


def _split_arn(arn: Any) -> tuple[str, str, str]:
    """``arn:aws:sqs:<region>:<account>:<name>`` -> (region, account, name)."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[2] != "sqs" or not all(parts[3:]):
        raise _Refused("InvalidParameterValue", f"{arn!r} is not an SQS queue ARN")
    return parts[3], parts[4], parts[5]


class MessageMoveTasks:
    """WSGI middleware: message move tasks over moto's SQS backend."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._tasks: list[_Task] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        action = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
        if action not in ACTIONS:
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b"{}"
        try:
            request = json.loads(raw or b"{}")
            if not isinstance(request, dict):
                raise _Refused("InvalidParameterValue", "the request body is not an object")
            answer = (self.start(request) if action == "StartMessageMoveTask"
                      else self.list(request))
            status, body = "200 OK", answer
        except _Refused as exc:
            status = f"{exc.status} Error"
            body = {"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}
        except ValueError as exc:
            status, body = "400 Error", {"__type": "com.amazonaws.sqs#InvalidParameterValue",
                                         "message": str(exc)}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", _JSON), ("Content-Length", str(len(data))),
                                ("x-amzn-RequestId", str(uuid.uuid4()))])
        return [data]

    # -- actions ---------------------------------------------------------------------------
    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 - the emulator's process

        source_arn = request.get("SourceArn")
        region, account, source_name = _split_arn(source_arn)
        backend = sqs_backends[account][region]
        source = backend.queues.get(source_name)
        if source is None:
            raise _Refused("ResourceNotFoundException", f"queue {source_arn} does not exist")
        uses = [q for q in backend.queues.values()
                if (q.redrive_policy or {}).get("deadLetterTargetArn") == source_arn]
        if not uses:
            raise _Refused("UnsupportedOperation",
                           "Source queue must be configured as a Dead Letter Queue.")
        destination_arn = request.get("DestinationArn")
        if destination_arn is None:
            if len(uses) != 1:
                raise _Refused("UnsupportedOperation",
                               "this emulator moves messages without DestinationArn only "
                               "when one queue uses the source as its dead-letter queue")
            destination = uses[0]
        else:
            d_region, d_account, d_name = _split_arn(destination_arn)
            destination = sqs_backends[d_account][d_region].queues.get(d_name)
            if destination is None:
                raise _Refused("ResourceNotFoundException",
                               f"queue {destination_arn} does not exist")
        rate = request.get("MaxNumberOfMessagesPerSecond")
        task = _Task(handle=uuid.uuid4().hex, source_arn=source_arn,
                     destination_arn=destination_arn, rate=rate,
                     started_ms=int(time.time() * 1000),
                     to_move=int(source.approximate_number_of_messages))
        with self._lock:
            self._tasks.append(task)
        try:
            self._move(backend, source_name, sqs_backends[destination.account_id][
                destination.region], destination.name, task)
            task.status = "COMPLETED"
        except Exception as exc:  # reported the way AWS reports a failed task
            task.status, task.failure = "FAILED", f"{type(exc).__name__}: {exc}"
        return {"TaskHandle": task.handle}

    @staticmethod
    def _move(source_backend: Any, source_name: str, destination_backend: Any,
              destination_name: str, task: _Task) -> None:
        while task.moved < task.to_move:
            batch = source_backend.receive_message(source_name, 10, 0, 60,
                                                   message_attribute_names=["All"])
            if not batch:
                return
            for message in batch:
                destination_backend.send_message(
                    destination_name, message.body,
                    message_attributes=dict(message.message_attributes or {}))
                source_backend.delete_message(source_name, message.receipt_handle)
                task.moved += 1

    def list(self, request: dict[str, Any]) -> dict[str, Any]:
        source_arn = request.get("SourceArn")
        _split_arn(source_arn)
        limit = request.get("MaxResults", 1)
        if not isinstance(limit, int) or not 1 <= limit <= LIST_MAX_RESULTS:
            raise _Refused("InvalidParameterValue",
                           f"MaxResults must be 1..{LIST_MAX_RESULTS} (got {limit!r})")
        with self._lock:
            tasks = [t for t in self._tasks if t.source_arn == source_arn]
        return {"Results": [t.as_result() for t in reversed(tasks[-limit:])]}

