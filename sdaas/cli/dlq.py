"""``sdctl dlq``: what is in a runtime's dead-letter queue, and moving it back.

::

    sdctl dlq list RUNTIME [--max N]
    sdctl dlq redrive RUNTIME [--id ID ...] [--timeout SECONDS]

A task lands in its runtime's dead-letter queue after ``max_receive_count`` deliveries that
ended without a result (an agent that died on it every time, say); the dead-letter consumer
has then marked it ``failed`` (code ``dead_lettered``) and kept its message there.

``list`` shows each message: its id, the task it carries, when it was kept, and the task's
status and error from the task table. It reads the messages (each stays invisible to others
while the listing goes on) and makes them visible again at the end.

``redrive`` moves messages back to the runtime's task queue, where an agent runs the task
again (its record goes from ``failed`` to ``running``; docs/contracts.md, "Dead letters"):

* the whole queue with an SQS **message move task** (``StartMessageMoveTask``), followed until
  it ends (``--timeout``); on an endpoint without message move tasks (an emulator that lacks
  them) sdctl says so and moves the messages itself, one by one;
* only the tasks named by ``--id`` (repeatable): always one by one, since a move task moves
  whole queues. Messages of other tasks are made visible again.

One by one means: receive, send the body and attributes to the task queue, then delete from
the dead-letter queue. A failure between the send and the delete leaves the message in both
queues; the agent runs a task once however many copies it gets.

Where the queues are (AWS credentials from the usual chain; the first that answers):
``--stack-dir DIR`` (a deployed stack's Terraform outputs), a running ``make local``
(``.local/connection.json``, the emulator's endpoint), the Terraform outputs in
``cdktf.out/stacks/<name>``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sdaas.cli.sdctl import (
    EXIT_CLIENT,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_TIMEOUT,
    CliError,
    _default_stack_dir,
    _local_connection,
)
from sdaas.terraform import TerraformError, read_outputs
from task_contract.deadletter import task_id_of
from task_contract.record import Fields, plain

# Errors of an endpoint that has no message move tasks (AWS's answers to an action it does
# not know or does not offer there).
UNSUPPORTED_CODES = frozenset({"UnknownOperationException", "InvalidAction",
                               "UnsupportedOperation", "NotImplemented"})
LISTING_VISIBILITY_SECONDS = 60  # a listed message stays hidden this long at most
MOVE_POLL_SECONDS = 1.0
FINAL_MOVE_STATUSES = ("COMPLETED", "FAILED", "CANCELLED")
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_DESERIALIZER = TypeDeserializer()
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30,
                       retries={"mode": "standard", "total_max_attempts": 3})


@dataclass(frozen=True)
class Service:
    """Where a stack's queues and task table are."""

    queue_urls: Mapping[str, str]
    dead_letter_queue_urls: Mapping[str, str]
    task_table: str
    region: str | None
    endpoint_url: str | None  # the local emulator; None for AWS itself
    source: str

    def urls(self, runtime: str) -> tuple[str, str]:
        """``(task queue, dead-letter queue)`` of ``runtime``."""
        if runtime not in self.dead_letter_queue_urls or runtime not in self.queue_urls:
            known = ", ".join(sorted(self.dead_letter_queue_urls)) or "none"
            raise CliError(EXIT_CLIENT, f"no runtime {runtime!r} in {self.source} (runtimes: "
                                        f"{known})")
        return self.queue_urls[runtime], self.dead_letter_queue_urls[runtime]

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"config": CLIENT_CONFIG}
        if self.region:
            kwargs["region_name"] = self.region
        if self.endpoint_url:
            kwargs.update(endpoint_url=self.endpoint_url, **LOCAL_CREDENTIALS)
        return boto3.client(service, **kwargs)


def _region_of(url: str) -> str | None:
    """``us-west-2`` of ``https://sqs.us-west-2.amazonaws.com/...``."""
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == "sqs" else None


def _from_outputs(stack_dir: Path, env: Mapping[str, str]) -> Service | None:
    try:
        values = read_outputs(stack_dir)
    except TerraformError as exc:
        raise CliError(EXIT_CLIENT, f"cannot read the outputs of {stack_dir}: {exc}") from None
    if not values.get("dead_letter_queue_urls"):
        return None
    queues = dict(values.get("queue_urls") or {})
    first = next(iter(queues.values()), "")
    return Service(queue_urls=queues,
                   dead_letter_queue_urls=dict(values["dead_letter_queue_urls"]),
                   task_table=str(values.get("task_table") or ""),
                   region=_region_of(first) or env.get("AWS_REGION")
                   or env.get("AWS_DEFAULT_REGION"),
                   endpoint_url=None, source=f"terraform outputs in {stack_dir}")


def resolve_service(args: argparse.Namespace, env: Mapping[str, str], cwd: Path) -> Service:
    """The queues of ``--stack-dir``, a running ``make local``, or the default stack."""
    if args.stack_dir:
        found = _from_outputs(Path(args.stack_dir), env)
        if found is None:
            raise CliError(EXIT_CLIENT, f"{args.stack_dir} has no dead_letter_queue_urls "
                                        "output (not applied yet?)")
        return found
    local, note = _local_connection(args.local_dir or env.get("SD_LOCAL_DIR"), cwd)
    if local is not None and local.get("dead_letter_queue_urls"):
        return Service(queue_urls=dict(local.get("queue_urls") or {}),
                       dead_letter_queue_urls=dict(local["dead_letter_queue_urls"]),
                       task_table=str(local.get("task_table") or ""),
                       region=local.get("region"), endpoint_url=local.get("aws_endpoint_url"),
                       source=str(local["_source"]))
    stack_dir = _default_stack_dir(cwd)
    found = None
    if stack_dir is not None and any(stack_dir.glob("*.tfstate")):
        found = _from_outputs(stack_dir, env)
    if found is None:
        hint = f" ({note})" if note else ""
        raise CliError(EXIT_CLIENT, "no dead-letter queues found: point --stack-dir at a "
                                    "deployed stack or start `make local`" + hint)
    return found


# --- reading the dead-letter queue ------------------------------------------------------------


def _aws(what: str, call: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise CliError(EXIT_SERVER, f"{what} failed: {exc}") from None


def _arn(sqs: Any, url: str) -> str:
    answer = _aws(f"GetQueueAttributes on {url}", sqs.get_queue_attributes, QueueUrl=url,
                  AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


@dataclass
class Held:
    """Messages received from a queue and not yet settled; made visible again on exit."""

    sqs: Any
    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def receive(self, count: int = 10) -> list[dict[str, Any]]:
        """Up to ``count`` more visible messages, each hidden while held (the first call
        waits a second for a message)."""
        batch = _aws("ReceiveMessage", self.sqs.receive_message, QueueUrl=self.url,
                     MaxNumberOfMessages=count, WaitTimeSeconds=0 if self.messages else 1,
                     VisibilityTimeout=LISTING_VISIBILITY_SECONDS,
                     MessageAttributeNames=["All"],
                     MessageSystemAttributeNames=["All"]).get("Messages", [])
        self.messages.extend(batch)
        return list(batch)

    def receive_all(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every visible message (or the first ``limit``)."""
        while limit is None or len(self.messages) < limit:
            if not self.receive(10 if limit is None else min(10, limit - len(self.messages))):
                break
        return list(self.messages)

    def settle(self, message: dict[str, Any]) -> None:
        self.messages.remove(message)

    def release(self) -> None:
        """Make every message still held visible at once."""
        for start in range(0, len(self.messages), 10):
            chunk = self.messages[start:start + 10]
            _aws("ChangeMessageVisibilityBatch", self.sqs.change_message_visibility_batch,
                 QueueUrl=self.url, Entries=[
                     {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                     for i, m in enumerate(chunk)])
        self.messages.clear()


def _kept_at(message: dict[str, Any]) -> str:
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    if not sent:
        return "-"
    moment = datetime.fromtimestamp(int(sent) / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _record(ddb: Any, table: str, task_id: str | None) -> dict[str, Any] | None:
    if not task_id or not table:
        return None
    item = _aws("GetItem", ddb.get_item, TableName=table, Key={Fields.ID: {"S": task_id}},
                ConsistentRead=True).get("Item")
    if not item:
        return None
    return {k: plain(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def describe(message: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """One listed message: its id, task, when it was kept, and the task's state."""
    error = (record or {}).get(Fields.ERROR) or {}
    details = error.get("details") if isinstance(error, dict) else None
    counts = [d.get("receive_count") for d in details or [] if isinstance(d, dict)]
    return {
        "message_id": message["MessageId"],
        "task_id": task_id_of(message.get("Body")),
        "kept_at": _kept_at(message),
        "status": (record or {}).get(Fields.STATUS),
        "attempts": (record or {}).get(Fields.ATTEMPTS),
        "error_code": error.get("code") if isinstance(error, dict) else None,
        "receive_count": next((c for c in counts if isinstance(c, int)), None),
        "body_bytes": len(str(message.get("Body", "")).encode()),
    }


def cmd_list(args: argparse.Namespace, env: Mapping[str, str], cwd: Path, out: IO[str],
             err: IO[str]) -> int:
    service = resolve_service(args, env, cwd)
    _, dlq_url = service.urls(args.runtime)
    sqs, ddb = service.client("sqs"), service.client("dynamodb")
    held = Held(sqs, dlq_url)
    try:
        messages = held.receive_all(args.max or None)
        rows = [describe(m, _record(ddb, service.task_table, task_id_of(m.get("Body"))))
                for m in messages]
    finally:
        held.release()
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return EXIT_OK
    if rows:
        print(f"{'MESSAGE':<36}  {'TASK':<24}  {'KEPT AT':<20}  {'STATUS':<9}  ERROR", file=out)
    for row in rows:
        error = row["error_code"] or "-"
        if row["receive_count"] is not None:
            error += f" (receive count {row['receive_count']})"
        print(f"{row['message_id']:<36}  {row['task_id'] or '(no task id)':<24}  "
              f"{row['kept_at']:<20}  {row['status'] or '(no record)':<9}  {error}", file=out)
    more = " (--max reached: there may be more)" if args.max and len(rows) >= args.max else ""
    print(f"sdctl: {len(rows)} message(s) in {args.runtime}'s dead-letter queue{more}"
          + (f"; `sdctl dlq redrive {args.runtime}` moves them back" if rows else ""), file=err)
    return EXIT_OK


# --- redriving ------------------------------------------------------------------------------------


def move_one_by_one(sqs: Any, dlq_url: str, queue_url: str,
                    wanted: set[str] | None) -> tuple[int, set[str]]:
    """Send the messages (of the ``wanted`` task ids, or all) to the task queue and delete
    them from the dead-letter queue; the number moved and the task ids moved."""
    held = Held(sqs, dlq_url)
    moved, ids, seen = 0, set(), set()
    try:
        while batch := held.receive():
            for message in batch:
                if message["MessageId"] in seen:  # back after its visibility timeout
                    held.settle(message)
                    continue
                seen.add(message["MessageId"])
                task_id = task_id_of(message.get("Body"))
                if wanted is None or task_id in wanted:
                    _send_back(sqs, message, dlq_url, queue_url)
                    held.settle(message)
                    moved += 1
                    ids.update([task_id] if task_id else [])
    finally:
        held.release()
    return moved, ids


def _send_back(sqs: Any, message: dict[str, Any], dlq_url: str, queue_url: str) -> None:
    """Send one message to the task queue, then delete it from the dead-letter queue."""
    kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        kwargs["MessageAttributes"] = message["MessageAttributes"]
    _aws("SendMessage", sqs.send_message, **kwargs)
    _aws("DeleteMessage", sqs.delete_message, QueueUrl=dlq_url,
         ReceiptHandle=message["ReceiptHandle"])


def move_task(sqs: Any, dlq_arn: str, queue_arn: str, timeout: float,
              say: Callable[[str], None],
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> dict[str, Any] | None:
    """Start a message move task and follow it to its end: its last listing, or ``None``
    when the endpoint has no message move tasks."""
    try:
        handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn)[
            "TaskHandle"]
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in UNSUPPORTED_CODES:
            say(f"sdctl: this endpoint has no SQS message move tasks ({code}); moving the "
                "messages one by one instead")
            return None
        raise CliError(EXIT_SERVER, f"StartMessageMoveTask failed: {exc}") from None
    except BotoCoreError as exc:
        raise CliError(EXIT_SERVER, f"StartMessageMoveTask failed: {exc}") from None
    say(f"sdctl: message move task started ({handle})")
    deadline = clock() + timeout
    while True:
        results = _aws("ListMessageMoveTasks", sqs.list_message_move_tasks,
                       SourceArn=dlq_arn, MaxResults=1).get("Results", [])
        latest = results[0] if results else {}
        if latest.get("Status") in FINAL_MOVE_STATUSES:
            return dict(latest)
        if clock() >= deadline:
            raise CliError(EXIT_TIMEOUT, f"the message move task {handle} is still "
                                         f"{latest.get('Status', 'starting')} after "
                                         f"{timeout:g}s; it goes on (`sdctl dlq list` shows "
                                         "what is left)")
        sleep(MOVE_POLL_SECONDS)


def cmd_redrive(args: argparse.Namespace, env: Mapping[str, str], cwd: Path, out: IO[str],
                err: IO[str]) -> int:
    service = resolve_service(args, env, cwd)
    queue_url, dlq_url = service.urls(args.runtime)
    sqs = service.client("sqs")

    def say(line: str) -> None:
        print(line, file=err)

    if not args.id:
        done = move_task(sqs, _arn(sqs, dlq_url), _arn(sqs, queue_url), args.timeout, say)
        if done is not None:
            moved = done.get("ApproximateNumberOfMessagesMoved", 0)
            if done.get("Status") != "COMPLETED":
                raise CliError(EXIT_SERVER, f"the message move task ended "
                                            f"{done.get('Status')} after moving {moved} "
                                            f"message(s): {done.get('FailureReason', '')}")
            print(f"moved {moved} message(s) from {args.runtime}'s dead-letter queue to its "
                  "task queue (SQS message move task)", file=out)
            return EXIT_OK
    wanted = set(args.id) if args.id else None
    moved, ids = move_one_by_one(sqs, dlq_url, queue_url, wanted)
    print(f"moved {moved} message(s) from {args.runtime}'s dead-letter queue to its task "
          "queue (one by one)", file=out)
    missing = sorted((wanted or set()) - ids)
    if missing:
        raise CliError(EXIT_CLIENT, f"not in {args.runtime}'s dead-letter queue: "
                                    f"{', '.join(missing)}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """``sdctl dlq list|redrive`` under sdctl's subcommands."""
    dlq = sub.add_parser("dlq", help="list or redrive a runtime's dead-letter queue (AWS "
                                     "credentials, not the API key)")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = commands.add_parser("list", help="show the messages in RUNTIME's dead-letter "
                                               "queue and their tasks' state")
    listing.add_argument("runtime")
    listing.add_argument("--max", type=int, default=0,
                         help="show at most this many messages (default: all)")
    listing.set_defaults(func=cmd_list, aws=True)
    redrive = commands.add_parser("redrive", help="move RUNTIME's dead-letter messages back "
                                                  "to its task queue")
    redrive.add_argument("runtime")
    redrive.add_argument("--id", action="append", default=[],
                         help="only this task's message (repeatable); moved one by one")
    redrive.add_argument("--timeout", type=float, default=300.0,
                         help="seconds to follow a message move task (default 300)")
    redrive.set_defaults(func=cmd_redrive, aws=True)
