"""A poison task on the local stack: its runtime kills the queue agent on every delivery
(the preview's ``[preview:kill-agent=3]``), so after ``max_receive_count`` deliveries its
message reaches the dead-letter intake; the dead-letter consumer (its real handler, run by
local mode's event source poller) fails it once with a result, keeps the message in the
dead-letter queue, and ``sdctl dlq redrive`` brings it back to complete."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sdaas.cli import sdctl
from tests.e2e.stack.conftest import Deployed
from tests.e2e.support import reference_request, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]

TASK = "e2e-poison"


def _sdctl(deployed: Deployed, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    workdir = deployed.stack.workdir
    code = sdctl.main(["--local-dir", str(workdir), *argv], out=out, err=err, env={},
                      cwd=Path(workdir))
    return code, out.getvalue(), err.getvalue()


def _consumer_events(deployed: Deployed) -> list[dict]:
    lines = (deployed.stack.logs / "event-sources.log").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in events if e.get("event") == "dead_letter" and e.get("task_id") == TASK]


def test_a_task_that_kills_its_agent_fails_once_and_a_redrive_completes_it(
        deployed: Deployed) -> None:
    max_receive_count = deployed.stack.config.queue.max_receive_count
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"].update(id=TASK, context={"ticket": 42})
    body["task"]["content"]["prompt"] = f"A dog [preview:kill-agent={max_receive_count}]"
    restarts_before = deployed.stack.restarts.get("agent-sdruntime", 0)
    assert deployed.post("/v1alpha2", body).status_code == 202

    # Each delivery kills the agent; local mode starts it again; the message comes back
    # after the agents' 20 s visibility timeout.
    record = deployed.wait_final(TASK, timeout=300)
    assert record["status"] == "failed"
    assert record["attempts"] == max_receive_count
    assert record["error"]["code"] == "dead_lettered"
    # moto keeps the task queue's receive count on the moved message: the deliveries to the
    # agents, plus the poller's receive from the intake.
    assert record["error"]["details"] == [{"receive_count": max_receive_count + 1}]
    assert deployed.stack.restarts["agent-sdruntime"] - restarts_before == max_receive_count

    [failed] = wait_for(lambda: deployed.results.for_id(TASK), 30, "the failed result")
    assert failed["attributes"] == {"runtime": "sdruntime", "status": "failed"}
    assert failed["body"]["result"] is False
    assert failed["body"]["error"] == record["error"]
    assert failed["body"]["context"] == {"ticket": 42}
    [handled] = _consumer_events(deployed)
    assert (handled["outcome"], handled["receive_count"]) == ("failed", max_receive_count + 1)

    # The operator sees it in the dead-letter queue, with the task's state.
    code, out, err = _sdctl(deployed, "dlq", "list", "sdruntime")
    assert code == sdctl.EXIT_OK, err
    [row] = [line for line in out.splitlines() if f" {TASK} " in line]
    assert "failed" in row and f"dead_lettered (receive count {max_receive_count + 1})" in row
    intake = deployed.sqs.get_queue_url(
        QueueName=f"{deployed.stack.config.name}-sdruntime-dlq-intake")["QueueUrl"]
    assert deployed.sqs.get_queue_attributes(QueueUrl=intake, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "0"

    # The cause is gone (the preview kills only N times): a redrive runs the task again.
    code, out, err = _sdctl(deployed, "dlq", "redrive", "sdruntime", "--id", TASK)
    assert code == sdctl.EXIT_OK, err
    assert "moved 1 message(s)" in out
    record = wait_for(lambda: (r := deployed.status(TASK))["status"] == "completed" and r,
                      120, "the redriven task to complete")
    assert record["attempts"] == max_receive_count + 1
    assert record["error"] is None
    assert len(record["images"]) == 1 and len(record["image_urls"]) == 1
    results = wait_for(lambda: len(r := deployed.results.for_id(TASK)) == 2 and r, 30,
                       "the completed result")
    assert [r["body"]["status"] for r in results] == ["failed", "completed"]
    assert results[1]["body"]["context"] == {"ticket": 42}
    code, out, _ = _sdctl(deployed, "--json", "dlq", "list", "sdruntime")
    assert TASK not in [row["task_id"] for row in json.loads(out)]
