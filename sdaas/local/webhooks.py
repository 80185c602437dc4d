"""The local webhook deliverer: Lambda's SQS poller in front of the real deliverer handler.

Everything comes from the stack Terraform applied to the emulator: the function's handler
(``lambda_src.webhooks.handler``) and environment (``GetFunctionConfiguration``), and its
event source mapping (``ListEventSourceMappings``: the delivery queue, the batch size). The
poller receives a batch from the delivery queue, hands it to the handler as Lambda's SQS
event (``Records`` with ``messageId``, ``receiptHandle``, ``body``, ``attributes``
(``ApproximateReceiveCount``), ``eventSourceARN``), and deletes the messages the handler did
not report in ``batchItemFailures``; the others come back after the backoff the handler set,
and the queue's redrive policy moves them to the dead-letter queue, as on AWS.

Local mode, and only local mode, runs the handler with the
:data:`~task_contract.webhook.ALLOW_LOOPBACK_ENV` setting, so a receiver on this machine
can be tried; ``--retry-max-seconds`` shortens the backoff so a failing receiver reaches the
dead-letter queue while someone watches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from sdaas.local._serve import serve_until_signalled, write_ready_file

Handler = Callable[[Any, Any], Any]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ``ReceiveMessage`` returned them."""
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": dict(m.get("Attributes") or {}),
        "messageAttributes": dict(m.get("MessageAttributes") or {}),
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


def poll_once(sqs: Any, queue_url: str, queue_arn: str, region: str, handler: Handler, *,
              batch_size: int = 10, wait_seconds: int = 1) -> int:
    """Receive one batch, run ``handler`` on it, delete what it did not report as failed;
    the number of messages received. A handler that raises leaves the whole batch."""
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
    if not messages:
        return 0
    try:
        result = handler(sqs_event(messages, queue_arn, region), None)
    except Exception as exc:  # Lambda would log it and retry the batch
        print(json.dumps({"event": "webhook_handler_failed", "exception": type(exc).__name__,
                          "trace": traceback.format_exc(limit=5)}), flush=True)
        return len(messages)
    failed = {item.get("itemIdentifier") for item in (result or {}).get("batchItemFailures", [])}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


class Poller:
    """Polls until :meth:`stop`, in a thread."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, region: str,
                 handler: Handler, batch_size: int) -> None:
        self._args = (sqs, queue_url, queue_arn, region, handler)
        self._batch_size = batch_size
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-poller", daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                poll_once(*self._args, batch_size=self._batch_size)
            except Exception as exc:  # the emulator restarting: try again
                print(json.dumps({"event": "webhook_poll_failed",
                                  "exception": type(exc).__name__}), flush=True)
                self._stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    import boto3  # noqa: PLC0415 - a development dependency of local mode only

    from sdaas.local.api_adapter import load_handler  # noqa: PLC0415
    from task_contract.webhook import ALLOW_LOOPBACK_ENV  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m sdaas.local.webhooks",
        description="Run the webhook deliverer deployed to the local emulator on its queue.")
    parser.add_argument("--emulator", required=True, help="the emulator's endpoint URL")
    parser.add_argument("--region", required=True)
    parser.add_argument("--function", required=True, help="the deliverer function's name")
    parser.add_argument("--retry-max-seconds", type=int, default=2,
                        help="cap of the retry backoff (local mode: short)")
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    clients = {"endpoint_url": args.emulator, "region_name": args.region}
    lambda_client = boto3.client("lambda", **clients)
    config = lambda_client.get_function_configuration(FunctionName=args.function)
    # Filtered here: moto matches FunctionName only as it was given (Terraform gives the ARN).
    mappings = [m for m in lambda_client.list_event_source_mappings()["EventSourceMappings"]
                if m.get("FunctionArn") == config["FunctionArn"]]
    if len(mappings) != 1:
        print(f"webhooks: {args.function} has {len(mappings)} event sources; expected one",
              file=sys.stderr)
        return 2
    mapping = mappings[0]
    queue_arn = mapping["EventSourceArn"]
    sqs = boto3.client("sqs", **clients)
    queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
    # The function's own environment, what a Lambda runtime provides, then local mode's.
    os.environ.update((config.get("Environment") or {}).get("Variables") or {})
    os.environ.update({
        "AWS_ENDPOINT_URL": args.emulator, "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region, ALLOW_LOOPBACK_ENV: "true",
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        "WEBHOOK_RETRY_MAX_SECONDS": str(args.retry_max_seconds),
    })
    handler = load_handler(config["Handler"])
    poller = Poller(sqs, queue_url, queue_arn, args.region, handler,
                    int(mapping.get("BatchSize") or 10)).start()
    print(json.dumps({"event": "webhook_poller_started", "queue": queue_url,
                      "handler": config["Handler"]}), flush=True)
    write_ready_file(args.ready_file, queue_url=queue_url)
    serve_until_signalled(poller.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
