"""End-to-end figures of the local stack: what the plumbing around the runtime costs.

The stack is ``make local``'s (sdaas.local.stack): moto's server, the real
ServerlessIngress applied with Terraform, the API adapter over the real Lambda handlers, the
real queue agent, and a PREVIEW runtime that takes a fixed time per image. Tasks go in
through HTTP (``POST /v1alpha2``) to one SD WebUI runtime; a task is done when the status
API would say ``completed`` (the record's ``updated_at``).

Two phases, after a warm-up:

- unloaded: tasks one at a time; end-to-end latency, and the share of it spent outside the
  runtime (everything but the agent's runtime call), broken down by stage;
- load: N tasks submitted at once; throughput against the runtime's bound (one image every
  ``--seconds-per-image``), end-to-end latency percentiles, the share outside the runtime
  (mostly queueing behind other tasks) and the runtime's busy fraction.

Every figure is from this machine: moto answers from one Python process, so AWS calls here
cost what they cost on loopback, not what they cost on AWS.

Usage (from the repository root; needs Terraform and the AWS provider, ``TF_PLUGIN_DIR``):
``python bench/local_e2e.py [--tasks 100] [--sequential 20] [--seconds-per-image 0.25]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: `python bench/local_e2e.py`
    sys.path.insert(0, str(REPO))

from sdaas.config import config_path  # noqa: E402
from sdaas.local.emulator import FAKE_CREDENTIALS  # noqa: E402
from sdaas.local.errors import LocalStackError  # noqa: E402
from sdaas.local.progress import TerminalProgress  # noqa: E402
from sdaas.local.settings import LocalSettings  # noqa: E402
from sdaas.local.stack import LocalStack  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class Client:
    def __init__(self, endpoint: str, api_key: str, runtime: str, size: int) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()
        self.session.headers["x-api-key"] = api_key
        self.runtime = runtime
        self.size = size

    def submit(self, task_id: str) -> tuple[float, float]:
        """POST one task; (wall-clock send time, request round trip)."""
        body = {"task": {"metadata": {"id": task_id, "runtime": self.runtime,
                                      "tasktype": "text-to-image", "prefix": "bench"},
                         "content": {"prompt": f"benchmark {task_id}", "steps": 4,
                                     "width": self.size, "height": self.size}}}
        sent = time.time()
        started = time.monotonic()
        response = self.session.post(f"{self.endpoint}/v1alpha2", json=body, timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"submit {task_id}: HTTP {response.status_code} {response.text}")
        return sent, time.monotonic() - started

    def status(self, task_id: str) -> dict[str, Any]:
        response = self.session.get(f"{self.endpoint}/v1alpha2/tasks/{task_id}", timeout=60)
        response.raise_for_status()
        return response.json()

    def wait(self, task_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.status(task_id)
            if record["status"] in ("completed", "failed"):
                return record
            time.sleep(0.02)
        raise RuntimeError(f"{task_id} did not finish within {timeout:.0f}s")


class ResultTap:
    """An SQS queue on the result topic: which tasks have finished."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.connection is not None
        kwargs = {"endpoint_url": stack.connection.aws_endpoint_url,
                  "region_name": stack.connection.region,
                  **{name.lower(): value for name, value in FAKE_CREDENTIALS.items()}}
        self.sqs = boto3.client("sqs", **kwargs)
        self.url = self.sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        boto3.client("sns", **kwargs).subscribe(
            TopicArn=stack.outputs["result_topic_arn"], Protocol="sqs", Endpoint=arn)
        self.finished: set[str] = set()

    def wait_all(self, ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= self.finished:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids - self.finished)} tasks unfinished after "
                                   f"{timeout:.0f}s")
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=1).get("Messages", [])
            for message in batch:
                self.finished.add(json.loads(json.loads(message["Body"])["Message"])["id"])
            if batch:
                self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(batch)])


def breakdown(record: dict[str, Any], sent: float) -> dict[str, float]:
    """Where one task's end-to-end time went (seconds)."""
    timings = record["timings"]
    e2e = epoch(record["updated_at"]) - sent
    in_agent = timings["total"]
    return {
        "e2e": e2e,
        "inference": timings["inference"],
        "outside": e2e - timings["inference"],
        "queue_wait": timings["queue_wait"],
        "agent_wait": max(0.0, in_agent - timings["download"] - timings["inference"]
                          - timings["upload"]),
        "download": timings["download"],
        "upload": timings["upload"],
        # POST, record, publish, SNS -> SQS, receive; and the final status write.
        "ingest_delivery": max(0.0, e2e - timings["queue_wait"] - in_agent),
    }


def describe(rows: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"p50 {percentile(values, 50):6.3f} s   p95 {percentile(values, 95):6.3f} s"


def share(rows: list[dict[str, float]]) -> str:
    shares = [r["outside"] / r["e2e"] for r in rows if r["e2e"] > 0]
    total = sum(r["outside"] for r in rows) / sum(r["e2e"] for r in rows)
    return (f"{total:5.1%} of all end-to-end time (per task: p50 "
            f"{percentile(shares, 50):.1%}, p95 {percentile(shares, 95):.1%})")


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sd-bench-local-"))
    progress = TerminalProgress(sys.stderr)
    stack = LocalStack(LocalSettings(workdir=workdir, config_file=args.config,
                                     seconds_per_image=args.seconds_per_image), progress)
    runtime = args.runtime or next(r.name for r in stack.config.runtimes if r.type == "sdwebui")
    try:
        connection = stack.start()
        client = Client(connection.endpoint, connection.api_key, runtime, args.size)
        tap = ResultTap(stack)
        run_id = uuid.uuid4().hex[:6]
        for index in range(3):  # warm-up: imports, connections, moto's first calls
            client.submit(f"warm-{run_id}-{index}")
            client.wait(f"warm-{run_id}-{index}")

        unloaded, round_trips = [], []
        for index in range(args.sequential):
            task_id = f"seq-{run_id}-{index}"
            sent, round_trip = client.submit(task_id)
            round_trips.append(round_trip)
            record = client.wait(task_id)
            unloaded.append(breakdown(record, sent))

        ids = [f"load-{run_id}-{index:04d}" for index in range(args.tasks)]
        started = time.time()
        with ThreadPoolExecutor(args.clients) as pool:
            sent_at = dict(zip(ids, [s for s, _ in pool.map(client.submit, ids)], strict=True))
        submitted = time.time()
        tap.wait_all(set(ids), timeout=args.tasks * args.seconds_per_image * 10 + 120)
        with ThreadPoolExecutor(8) as pool:
            records = list(pool.map(client.status, ids))
        failed = [r["id"] for r in records if r["status"] != "completed"]
        if failed:
            raise RuntimeError(f"{len(failed)} tasks did not complete: {failed[:5]}")
        loaded = [breakdown(r, sent_at[r["id"]]) for r in records]
        finished = max(epoch(r["updated_at"]) for r in records)
    except (LocalStackError, RuntimeError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()

    wall = finished - started
    busy = sum(r["inference"] for r in loaded) / wall
    bound = 1.0 / args.seconds_per_image
    throughput = args.tasks / wall
    print(f"\nLocal stack end to end: runtime {runtime} (sdwebui) behind the PREVIEW runtime at "
          f"{args.seconds_per_image:g} s per image, {args.size}x{args.size}, one image a task; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"\nUnloaded ({args.sequential} tasks, one at a time)")
    print(f"  POST /v1alpha2 round trip   {describe([{'x': t} for t in round_trips], 'x')}")
    print(f"  end-to-end latency          {describe(unloaded, 'e2e')}")
    print(f"  in the runtime              {describe(unloaded, 'inference')}")
    print(f"  outside the runtime         {describe(unloaded, 'outside')}")
    print(f"  share outside the runtime   {share(unloaded)}")
    for key, label in (("ingest_delivery", "ingest + delivery + status"),
                       ("queue_wait", "SQS queue wait"), ("download", "agent: inputs"),
                       ("agent_wait", "agent: waiting for runtime"),
                       ("upload", "agent: outputs + results")):
        print(f"    {label:<26} {describe(unloaded, key)}")
    print(f"\nUnder load ({args.tasks} tasks submitted at once by {args.clients} clients, "
          f"all in {submitted - started:.1f} s)")
    print(f"  throughput                  {throughput:.2f} tasks/s (runtime bound "
          f"{bound:.2f}/s: {throughput / bound:.0%})")
    print(f"  runtime busy                {busy:.1%} of the wall time ({wall:.1f} s)")
    print(f"  end-to-end latency          {describe(loaded, 'e2e')}")
    print(f"  share outside the runtime   {share(loaded)}")
    for key, label in (("queue_wait", "SQS queue wait"),
                       ("agent_wait", "agent: waiting for runtime"),
                       ("ingest_delivery", "ingest + delivery + status")):
        print(f"    {label:<26} {describe(loaded, key)}")
    plumbing = statistics.mean(r["outside"] - r["queue_wait"] - r["agent_wait"] for r in loaded)
    print(f"  per-task plumbing (outside the runtime, queueing excluded): mean {plumbing:.3f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks under load (default 100)")
    parser.add_argument("--sequential", type=int, default=20,
                        help="tasks one at a time (default 20)")
    parser.add_argument("--seconds-per-image", type=float, default=0.25,
                        help="the preview runtime's fixed time per image (default 0.25)")
    parser.add_argument("--size", type=int, default=512, help="image side (default 512)")
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent submitting clients (default 16)")
    parser.add_argument("--runtime", help="an sdwebui runtime (default: the first)")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"configuration file (default {config_path().name})")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.sequential < 1 or args.seconds_per_image <= 0:
        parser.error("--tasks and --sequential must be >= 1, --seconds-per-image > 0")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
