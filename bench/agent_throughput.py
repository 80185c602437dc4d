"""Queue-agent throughput: how busy does the agent keep the runtime?

A fake SD WebUI with a fixed time per image (1.0 s; 0.25 s for a turbo checkpoint), a backlog
of tasks on the emulator's SQS queue, and a fixed latency added to every AWS call (30 ms, to
stand in for real AWS round trips). The agent runs as ``python -m agent``.

Prints per scenario:
- busy fraction: time the runtime spent generating / wall time, where wall time runs from the
  agent starting to receive until the last result is on the result topic (targets: >= 0.97 at
  1.0 s per image, >= 0.90 at 0.25 s);
- busy fraction (steady): generating / (last generation end - first generation start);
- agent-added time per task: (wall time - generating time) / tasks, i.e. how long the runtime
  waited for the agent per task; and the mean gap between consecutive generations;
- agent peak RSS (target <= 150 MB);
- for comparison, the gap between generations when a bare client loop (no AWS, no agent)
  calls the same fake back to back: what the HTTP transfer of the images costs by itself.

Usage (from the repository root):
``python -m bench.agent_throughput [--tasks 200] [--latency-ms 30] [--concurrency 1]``
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from sdaas.local.emulator import FAKE_CREDENTIALS, Emulator
from tests.agent.harness import Stack, free_port
from tests.fakes.sdwebui import FakeSdWebUI

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Scenario:
    name: str
    seconds_per_image: float
    checkpoint: str
    target: float


SCENARIOS = (
    Scenario("1.0 s per image", 1.0, "v1-5-pruned-emaonly", 0.97),
    Scenario("0.25 s per image (turbo)", 0.25, "sd_xl_turbo_1.0", 0.90),
)


def _utc_time(stamp: str) -> float:
    """Epoch seconds of an ISO 8601 UTC time with milliseconds (SNS and agent logs)."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _fill(stack: Stack, count: int, checkpoint: str) -> None:
    for start in range(0, count, 10):
        entries = []
        for index in range(start, min(start + 10, count)):
            body = {"metadata": {"id": f"bench-{index:04d}", "runtime": "sdruntime",
                                 "tasktype": "text-to-image", "prefix": "bench"},
                    "content": {"prompt": f"a lighthouse at dusk, variation {index}",
                                "steps": 20, "width": 512, "height": 512,
                                "override_settings": {"sd_model_checkpoint": checkpoint}}}
            entries.append({"Id": str(index), "MessageBody": json.dumps(body)})
        stack.sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=entries)


def _collect(stack: Stack, count: int, timeout: float) -> list[dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(results) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(results)} of {count} results after {timeout:.0f}s")
        messages = stack.sqs.receive_message(QueueUrl=stack.result_queue_url,
                                             MaxNumberOfMessages=10,
                                             WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            envelope = json.loads(message["Body"])
            body = json.loads(envelope["Message"])
            body["_published"] = _utc_time(envelope["Timestamp"])
            results[body["id"]] = body
        if messages:
            stack.sqs.delete_message_batch(QueueUrl=stack.result_queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)])
    return list(results.values())


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def baseline_gap_ms(scenario: Scenario, calls: int = 16) -> float:
    """Mean gap between generations when a bare loop calls the fake back to back."""
    fake = FakeSdWebUI(seconds_per_image=scenario.seconds_per_image,
                       turbo_seconds_per_image=scenario.seconds_per_image, max_side=512,
                       noise=True).start()
    try:
        with requests.Session() as session:
            for index in range(calls):
                answer = session.post(f"{fake.url}/sdapi/v1/txt2img", timeout=60, json={
                    "prompt": f"baseline {index}", "seed": index, "width": 512, "height": 512})
                [base64.b64decode(image) for image in answer.json()["images"]]
    finally:
        fake.stop()
    generations = sorted(fake.generations, key=lambda g: g.started)
    gaps = [b.started - a.ended for a, b in itertools.pairwise(generations)][1:]  # warm
    return sum(gaps) / len(gaps) * 1000


def run(scenario: Scenario, tasks: int, latency: float, log_dir: Path,
        concurrency: int = 1) -> dict[str, float]:
    emulator = Emulator(latency_seconds=latency, log_requests=False).start()
    fake = FakeSdWebUI(seconds_per_image=scenario.seconds_per_image,
                       turbo_seconds_per_image=0.25, switch_seconds=0.0, max_side=512,
                       noise=True).start()
    stack = Stack(emulator.endpoint, max_receive_count=5, queue_visibility=60)
    _fill(stack, tasks, scenario.checkpoint)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    env.update(FAKE_CREDENTIALS)
    env.update({
        "PYTHONPATH": str(REPO), "AWS_ENDPOINT_URL": emulator.endpoint,
        "AWS_REGION": "us-west-2", "AWS_EC2_METADATA_DISABLED": "true",
        "SQS_QUEUE_URL": stack.queue_url, "SNS_TOPIC_ARN": stack.topic_arn,
        "S3_BUCKET": stack.bucket, "TASK_TABLE": stack.table, "RUNTIME_TYPE": "sdwebui",
        "RUNTIME_NAME": "sdruntime", "API_BASE_URL": fake.url, "DYNAMIC_SD_MODEL": "true",
        "AGENT_HEALTH_PORT": str(port), "AGENT_POD_ANNOTATION": "false",
        "AGENT_VISIBILITY_TIMEOUT_SECONDS": "120", "AGENT_HEARTBEAT_SECONDS": "30",
        "AGENT_RUNTIME_CONCURRENCY": str(concurrency),
    })
    log_path = log_dir / f"agent-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log:
        agent = subprocess.Popen([sys.executable, "-m", "agent"], cwd=REPO, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        results = _collect(stack, tasks, timeout=tasks * scenario.seconds_per_image * 3 + 120)
        peak_rss = _peak_rss_mb(agent.pid)
    finally:
        agent.terminate()
        agent.wait(timeout=60)
        fake.release.set()
        fake.stop()
        emulator.stop()
    events = [json.loads(line) for line in log_path.read_text().splitlines()
              if line.startswith("{")]
    ready = next(_utc_time(e["time"]) for e in events if e.get("event") == "runtime_ready")
    generations = sorted((g for g in fake.generations if g.images), key=lambda g: g.started)
    busy = sum(g.ended - g.started for g in generations)
    wall = max(r["_published"] for r in results) - ready
    steady_wall = generations[-1].ended - generations[0].started
    gaps = [b.started - a.ended for a, b in itertools.pairwise(generations)]
    failed = [r["id"] for r in results if r["status"] != "completed"]
    return {
        "tasks": len(results), "failed": len(failed), "generations": len(generations),
        "busy_fraction": busy / wall, "busy_fraction_steady": busy / steady_wall,
        "added_ms_per_task": (wall - busy) / len(results) * 1000,
        "mean_gap_ms": sum(gaps) / max(1, len(gaps)) * 1000,
        "max_gap_ms": max(gaps, default=0.0) * 1000,
        "wall_s": wall, "busy_s": busy, "peak_rss_mb": peak_rss,
        "target": scenario.target,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="backlog size (default 200)")
    parser.add_argument("--latency-ms", type=float, default=30.0,
                        help="latency added to every AWS call (default 30)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="AGENT_RUNTIME_CONCURRENCY (default 1)")
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the agent's log is written")
    args = parser.parse_args(argv)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
    print(f"queue agent throughput: {args.tasks} tasks, {args.latency_ms:.0f} ms per AWS call, "
          f"runtime concurrency {args.concurrency}")
    ok = True
    for scenario in SCENARIOS:
        baseline = baseline_gap_ms(scenario)
        figures = run(scenario, args.tasks, args.latency_ms / 1000, args.log_dir,
                      args.concurrency)
        meets = (figures["busy_fraction"] >= scenario.target and figures["peak_rss_mb"] <= 150
                 and figures["failed"] == 0 and figures["generations"] == args.tasks)
        ok = ok and meets
        print(f"\n{scenario.name}:")
        print(f"  tasks completed           {figures['tasks'] - figures['failed']}"
              f" / {args.tasks} (generations: {figures['generations']})")
        print(f"  wall time                 {figures['wall_s']:.2f} s"
              f" (generating {figures['busy_s']:.2f} s)")
        print(f"  busy fraction             {figures['busy_fraction']:.4f}"
              f" (target >= {scenario.target})")
        print(f"  busy fraction (steady)    {figures['busy_fraction_steady']:.4f}")
        print(f"  agent-added time per task {figures['added_ms_per_task']:.1f} ms")
        print(f"  gap between generations   mean {figures['mean_gap_ms']:.1f} ms,"
              f" max {figures['max_gap_ms']:.1f} ms")
        print(f"  same, bare client loop    mean {baseline:.1f} ms (the fake's own transfer"
              " cost, no agent)")
        print(f"  agent peak RSS            {figures['peak_rss_mb']:.1f} MB (target <= 150)")
        print(f"  {'meets targets' if meets else 'MISSES TARGETS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
