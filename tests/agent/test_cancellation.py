"""The cancel watch (a fake clock, no threads) and the runtime adapters' ``cancel``."""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from agent.cancellation import CancelWatch
from agent.config import load_config
from agent.messages import Task
from agent.runtimes.base import Cancelled, Prepared
from agent.runtimes.comfyui import ComfyUiAdapter
from agent.runtimes.sdwebui import SdWebUiAdapter
from task_contract.delivery import CANCEL_POLL_SECONDS
from tests.agent.harness import wait_for
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.sdwebui import FakeSdWebUI


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Table:
    """Statuses by id; counts the reads."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}
        self.reads: list[str] = []
        self.fail = False

    def status_of(self, task_id: str) -> str | None:
        self.reads.append(task_id)
        if self.fail:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}},
                              "GetItem")
        return self.statuses.get(task_id)


def make_watch(interval: float = 2.0) -> tuple[CancelWatch[str], Table, Clock, list[str]]:
    table, clock, cancelled = Table(), Clock(), []
    watch: CancelWatch[str] = CancelWatch(table.status_of, cancelled.append, interval, clock)
    return watch, table, clock, cancelled


def test_reads_each_running_task_once_per_interval_however_often_it_is_checked() -> None:
    watch, table, clock, _ = make_watch(interval=2.0)
    watch.watch("a", "job-a")
    watch.watch("b", "job-b")
    for _ in range(50):  # the runtime's polls are many; the table reads are not
        watch.check()
    assert table.reads == []
    clock.now += 2.0
    for _ in range(50):
        watch.check()
    assert sorted(table.reads) == ["a", "b"]
    clock.now += 1.9
    watch.check()
    assert len(table.reads) == 2
    clock.now += 0.1
    watch.check()
    assert len(table.reads) == 4


def test_a_cancelled_task_is_handed_over_once_and_no_longer_read() -> None:
    watch, table, clock, cancelled = make_watch()
    watch.watch("a", "job-a")
    watch.watch("b", "job-b")
    table.statuses = {"a": "running", "b": "cancelled"}
    clock.now += 2
    assert watch.check() == ["b"]
    assert cancelled == ["job-b"]
    clock.now += 2
    assert watch.check() == []
    assert cancelled == ["job-b"]
    assert table.reads.count("b") == 1 and table.reads.count("a") == 2


def test_a_task_that_ended_is_not_read_again() -> None:
    watch, table, clock, cancelled = make_watch()
    watch.watch("a", "job-a")
    watch.forget("a")
    table.statuses = {"a": "cancelled"}
    clock.now += 10
    assert watch.check() == [] and table.reads == [] and cancelled == []


def test_a_failed_read_is_tried_again_at_the_next_interval() -> None:
    watch, table, clock, cancelled = make_watch()
    watch.watch("a", "job-a")
    table.fail = True
    clock.now += 2
    assert watch.check() == []
    table.fail = False
    table.statuses = {"a": "cancelled"}
    clock.now += 1
    watch.check()
    assert cancelled == []  # not due yet: the failed read counts as this interval's
    clock.now += 1
    watch.check()
    assert cancelled == ["job-a"]


def test_the_thread_checks_by_itself_and_stops() -> None:
    table = Table()
    seen = threading.Event()
    watch: CancelWatch[str] = CancelWatch(table.status_of, lambda _: seen.set(), 0.1)
    table.statuses = {"a": "cancelled"}
    watch.watch("a", "job-a")
    watch.start()
    try:
        assert seen.wait(30)
    finally:
        watch.stop()


def test_the_default_interval_is_the_contracts_and_configurable() -> None:
    env = {"SQS_QUEUE_URL": "http://127.0.0.1/q", "SNS_TOPIC_ARN": "arn:aws:sns:us-west-2:1:t",
           "S3_BUCKET": "b", "RUNTIME_TYPE": "sdwebui", "RUNTIME_NAME": "sdruntime"}
    assert load_config(env).cancel_poll_seconds == CANCEL_POLL_SECONDS <= 5
    assert load_config({**env, "AGENT_CANCEL_POLL_SECONDS": "0.5"}).cancel_poll_seconds == 0.5


# -- the adapters ---------------------------------------------------------------------------

def _config(url: str, runtime_type: str) -> object:
    return load_config({
        "SQS_QUEUE_URL": "http://127.0.0.1/q", "SNS_TOPIC_ARN": "arn:aws:sns:us-west-2:1:t",
        "S3_BUCKET": "b", "RUNTIME_TYPE": runtime_type, "RUNTIME_NAME": "sdruntime",
        "API_BASE_URL": url, "AGENT_TASK_TIMEOUT_SECONDS": "60",
        "AGENT_COMFYUI_POLL_SECONDS": "0.05"})


def _t2i(task_id: str) -> Task:
    return Task(id=task_id, runtime="sdruntime", tasktype="text-to-image",
                content={"prompt": "a dog", "width": 64, "height": 64})


def start_run(adapter: object, prepared: Prepared, cancel: threading.Event
              ) -> tuple[threading.Thread, list[object]]:
    """``adapter.run`` in a thread; the list gets its output or the Cancelled it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(adapter.run(prepared, cancel))  # type: ignore[attr-defined]
        except Cancelled as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    return worker, outcome


def test_sdwebui_cancel_interrupts_a_generation_that_runs_alone(sdwebui: FakeSdWebUI) -> None:
    sdwebui.seconds_per_image = 30
    sd = SdWebUiAdapter(_config(sdwebui.url, "sdwebui"))  # type: ignore[arg-type]
    prepared = sd.prepare(_t2i("alone"), lambda url: b"")
    cancel = threading.Event()
    worker, outcome = start_run(sd, prepared, cancel)
    wait_for(lambda: sdwebui.generations, 15, "the generation to start")
    cancel.set()
    sd.cancel(prepared)
    worker.join(30)
    assert isinstance(outcome[0], Cancelled)
    assert sdwebui.state.interrupts == 1 and sdwebui.generations[0].interrupted


def test_sdwebui_cancel_leaves_a_shared_runtime_alone(sdwebui: FakeSdWebUI) -> None:
    sd = SdWebUiAdapter(_config(sdwebui.url, "sdwebui"))  # type: ignore[arg-type]
    mine = Prepared(task=_t2i("mine"), body={}, state={"generating": True})
    not_started = Prepared(task=_t2i("waiting"), body={})
    sd._gate._active = 2  # another task's generation is in flight too
    sd.cancel(mine)
    sd._gate._active = 1  # one generation in flight, and not this task's
    sd.cancel(not_started)
    assert sdwebui.state.interrupts == 0
    sd.cancel(mine)
    assert sdwebui.state.interrupts == 1


def test_comfyui_cancel_withdraws_only_its_prompt(comfyui: FakeComfyUI) -> None:
    from tests.real_comfyui.scenarios import slow_workflow

    comfyui.seconds_per_image = 20
    comfy = ComfyUiAdapter(_config(comfyui.url, "comfyui"))  # type: ignore[arg-type]
    task = Task(id="cf", runtime="sdruntime", tasktype="pipeline",
                content=slow_workflow("cancel", size=64))
    prepared = comfy.prepare(task, lambda url: b"")
    cancel = threading.Event()
    worker, outcome = start_run(comfy, prepared, cancel)
    running = wait_for(comfyui.engine.running_ids, 15, "the prompt to run")
    cancel.set()
    comfy.cancel(prepared)
    worker.join(30)
    assert isinstance(outcome[0], Cancelled)
    assert comfyui.interrupt_bodies == [{"prompt_id": running[0]}]
    wait_for(lambda: comfy.janitor.wait(0) and comfyui.history == {}, 30,
             "the interrupted prompt's history entry to be deleted")
