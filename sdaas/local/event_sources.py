"""The Lambda service's SQS event source mappings, for the stack deployed to the emulator.

moto stores event source mappings but does not run them here (``sdaas.local.emulator``), so
local mode runs this poller: for every enabled mapping of an SQS queue it reads the mapped
function (``Handler``, environment, timeout) from the emulator, and then, as the Lambda
service does,

* receives up to ``BatchSize`` messages (system and message attributes included; the
  queue's own visibility timeout applies),
* calls the function's real handler in this process with the SQS event Lambda would send
  (``Records`` of ``messageId``, ``receiptHandle``, ``body``, ``attributes``,
  ``messageAttributes``, ``md5OfBody``, ``eventSource``, ``eventSourceARN``, ``awsRegion``),
* deletes the batch when the handler returns — except, for a mapping with
  ``FunctionResponseTypes: ["ReportBatchItemFailures"]`` (the webhook deliverer), the
  messages the handler lists in ``batchItemFailures`` — and leaves it when the handler raises
  or outlives the function's timeout: the messages come back after the visibility timeout
  (or the backoff the handler set), and the queue's redrive policy ends their retries.

Differences, on purpose: one poller thread per mapping (Lambda scales pollers with the
queue), a short long poll so a stop is quick, no batching window, and every function runs in
this one process (their environments merged; ``--set NAME=VALUE`` overrides a variable, which
is how local mode passes its own settings).

``python -m sdaas.local.event_sources --emulator URL --region R [--set NAME=VALUE ...]`` runs
it until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from sdaas.local._serve import serve_until_signalled, write_ready_file
from sdaas.local.functions import (
    FunctionError,
    enter_runtime,
    lambda_context,
    load_handler,
    merged_environment,
)

POLL_WAIT_SECONDS = 2  # long poll of each receive; a stop waits at most this long


@dataclass(frozen=True)
class EventSource:
    """One enabled SQS event source mapping and the function it invokes."""

    uuid: str
    queue_arn: str
    queue_url: str
    batch_size: int
    function_name: str
    handler: str
    timeout_seconds: float
    environment: dict[str, str] = field(compare=False)
    report_batch_item_failures: bool = False


def queue_url(sqs: Any, arn: str) -> str:
    """The URL of the queue ``arn`` names (``arn:aws:sqs:<region>:<account>:<name>``)."""
    _, _, _, _, account, name = arn.split(":", 5)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def discover(lambda_client: Any, sqs: Any) -> list[EventSource]:
    """Every enabled event source mapping of an SQS queue, with its function's settings."""
    mappings: list[EventSource] = []
    marker = None
    while True:
        page = lambda_client.list_event_source_mappings(**({"Marker": marker} if marker else {}))
        for item in page.get("EventSourceMappings", []):
            arn = str(item.get("EventSourceArn", ""))
            if not arn.startswith("arn:aws:sqs:") or item.get("State") not in (None, "Enabled"):
                continue
            function = lambda_client.get_function_configuration(FunctionName=item["FunctionArn"])
            mappings.append(EventSource(
                uuid=item["UUID"], queue_arn=arn, queue_url=queue_url(sqs, arn),
                batch_size=int(item.get("BatchSize") or 10),
                function_name=function["FunctionName"], handler=function["Handler"],
                timeout_seconds=float(function.get("Timeout") or 3),
                environment=dict((function.get("Environment") or {}).get("Variables") or {}),
                report_batch_item_failures="ReportBatchItemFailures" in (
                    item.get("FunctionResponseTypes") or [])))
        marker = page.get("NextMarker")
        if not marker:
            return mappings


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda sends a function for ``messages`` received from ``queue_arn``."""
    records = []
    for message in messages:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            binary = value.get("BinaryValue")
            attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
                "stringListValues": [], "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
        records.append({
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": {key: message.get("Attributes", {}).get(key) for key in (
                "ApproximateReceiveCount", "SentTimestamp", "SenderId",
                "ApproximateFirstReceiveTimestamp") if key in message.get("Attributes", {})},
            "messageAttributes": attributes, "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
        })
    return {"Records": records}


@dataclass
class Poller:
    """Polls ``mappings`` and invokes their functions until :meth:`stop`."""

    sqs: Any
    mappings: list[EventSource]
    region: str
    log: Callable[[dict[str, Any]], None] = field(default=lambda entry: None)
    wait_seconds: int = POLL_WAIT_SECONDS
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        # One invocation at a time per mapping; a late one keeps its worker until it ends.
        self._pool = ThreadPoolExecutor(max(2, 2 * len(self.mappings)),
                                        thread_name_prefix="invoke")

    def start(self) -> Poller:
        for mapping in self.mappings:
            handler = load_handler(mapping.handler)
            thread = threading.Thread(target=self._run, args=(mapping, handler),
                                      name=f"poll-{mapping.uuid[:8]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.wait_seconds + 30)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, mapping: EventSource, handler: Callable[[Any, Any], Any]) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(mapping, handler)
            except Exception as exc:  # the emulator restarting, say: keep polling
                self.log({"event": "poll_failed", "mapping": mapping.uuid,
                          "error": f"{type(exc).__name__}: {exc}"[:300]})
                self._stop.wait(1.0)

    def receive(self, mapping: EventSource) -> list[dict[str, Any]]:
        """One receive from the mapping's queue, as the Lambda service's poller does it."""
        return list(self.sqs.receive_message(
            QueueUrl=mapping.queue_url, MaxNumberOfMessages=min(10, mapping.batch_size),
            WaitTimeSeconds=self.wait_seconds, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"]).get("Messages", []))

    def poll_once(self, mapping: EventSource, handler: Callable[[Any, Any], Any]) -> str | None:
        """One receive and, when it brought messages, one invocation: ``"deleted"``,
        ``"partly_failed"``, ``"failed"`` or ``"timed_out"`` (``None`` when the queue was
        empty)."""
        messages = self.receive(mapping)
        return self.invoke(mapping, handler, messages) if messages else None

    def invoke(self, mapping: EventSource, handler: Callable[[Any, Any], Any],
               messages: list[dict[str, Any]]) -> str:
        """Run ``handler`` on ``messages`` and delete what it handled (see the module)."""
        request_id = str(uuid.uuid4())
        deadline = time.monotonic() + mapping.timeout_seconds
        future = self._pool.submit(handler, sqs_event(messages, mapping.queue_arn, self.region),
                                   lambda_context(mapping.function_name, request_id, deadline))
        entry: dict[str, Any] = {"event": "invoked", "function": mapping.function_name,
                                 "request_id": request_id, "messages": len(messages)}
        try:
            answer = future.result(timeout=mapping.timeout_seconds)
        except FutureTimeout:
            entry["outcome"] = "timed_out"
        except Exception as exc:  # a function error: the batch stays on the queue
            entry.update(outcome="failed", error=type(exc).__name__)
        else:
            failed = batch_item_failures(answer) if mapping.report_batch_item_failures else set()
            handled = [message for message in messages if message["MessageId"] not in failed]
            if handled:
                self.sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(handled)])
            entry["outcome"] = "partly_failed" if failed else "deleted"
            if failed:
                entry["failed"] = len(messages) - len(handled)
        self.log(entry)
        return str(entry["outcome"])


def batch_item_failures(answer: Any) -> set[str]:
    """The message ids a handler's partial batch response names as failed."""
    items = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    return {str(item.get("itemIdentifier")) for item in items or [] if isinstance(item, dict)}


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sdaas.local.event_sources",
        description="Run the SQS event source mappings deployed to the local emulator.")
    parser.add_argument("--emulator", required=True, help="the emulator's endpoint URL")
    parser.add_argument("--region", required=True)
    parser.add_argument("--set", dest="settings", type=_setting, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="a variable set over the functions' own (local mode's settings)")
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    import boto3  # noqa: PLC0415 - only this process needs it

    kwargs = {"endpoint_url": args.emulator, "region_name": args.region}
    sqs = boto3.client("sqs", **kwargs)
    try:
        mappings = discover(boto3.client("lambda", **kwargs), sqs)
        environment = merged_environment({m.function_name: m.environment for m in mappings})
    except FunctionError as exc:
        print(f"event sources: {exc}", file=sys.stderr)
        return 2
    enter_runtime({**environment, **dict(args.settings)}, args.emulator, args.region)
    poller = Poller(sqs, mappings, args.region,
                    log=lambda entry: print(json.dumps(entry), flush=True))
    try:
        poller.start()
    except FunctionError as exc:
        print(f"event sources: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"event": "event_sources_started", "mappings": [
        f"{m.queue_arn} -> {m.function_name} ({m.handler})" for m in mappings]}), flush=True)
    write_ready_file(args.ready_file, mappings=len(mappings))
    serve_until_signalled(poller.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
