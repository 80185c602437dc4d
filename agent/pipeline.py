"""The agent's loop: receive and prepare task N+1 while the runtime runs task N and task N-1
is being finished, so the runtime never waits on S3, SNS, SQS or DynamoDB round trips.

Stages and threads:
- receiver (1 thread): long-polls SQS when a slot is free, parses the message, marks the task
  running, fetches its inputs (the runtime adapter's ``prepare``) and queues it;
- runtime workers (``AGENT_RUNTIME_CONCURRENCY`` threads): run prepared tasks on the runtime;
- finishers (``AGENT_UPLOAD_WORKERS`` threads): write the images and result document, the
  final status, publish the result, set ``result_published``, delete the message — in that
  order, so a crash at any point means a retry, never a lost or half-reported task;
- heartbeat (1 thread): extends the visibility of every held message;
- cancel watch (1 thread): reads the status of every prepared or running task every few
  seconds; a task the client cancelled is not started, or interrupted in its runtime, and
  ends ``cancelled``.

A task whose record is ``cancelled`` (the client cancelled it while it was queued, or while
it ran) is never run further and stores no outputs: one agent claims it in the record,
publishes its ``cancelled`` result from the record, sets ``result_published`` and deletes
the message.

Failure classes (agent.errors): a permanent failure is reported once and its message deleted;
a transient one releases the message with a backoff delay so SQS delivers it again; on the
last delivery before the dead-letter queue (``maxReceiveCount``) the task is reported failed
and the message is left for the DLQ.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent import logs
from agent.aws import AwsClients
from agent.cancellation import CancelWatch
from agent.coldstart import ColdStart
from agent.config import AgentConfig
from agent.errors import TaskError, TransientError, clip
from agent.inputs import InputFetcher
from agent.job import Job
from agent.kube import PodAnnotator
from agent.messages import InvalidMessage, Task, parse_task
from agent.notify import ResultPublisher
from agent.queue import InputQueue
from agent.report import log_finished, result_document
from agent.runtimes.base import Cancelled, RuntimeAdapter
from agent.status import TaskTable
from agent.storage import OutputStore
from task_contract.envelope import enveloped_message
from task_contract.layout import output_location
from task_contract.record import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATUSES,
    Fields,
    parse_timestamp,
)
from task_contract.result import message_from_record, result_message

MAX_CLAIM_CHECK_BYTES = 16 * 1024 * 1024
SHUTDOWN_CLEANUP_SECONDS = 20.0  # the runtime adapter's clean-up (ComfyUI history) at exit
_STOP = object()


def _unclaimed_cancel(record: dict[str, Any]) -> bool:
    """A cancelled record no agent has claimed yet (``result_published`` absent)."""
    return record.get(Fields.STATUS) == CANCELLED and Fields.RESULT_PUBLISHED not in record


class Pipeline:
    def __init__(self, config: AgentConfig, clients: AwsClients, adapter: RuntimeAdapter,
                 fetcher: InputFetcher | None = None,
                 annotator: PodAnnotator | None = None,
                 cold_start: ColdStart | None = None) -> None:
        self.config = config
        self.adapter = adapter
        self.store = OutputStore(clients.s3, config.bucket)
        self.table = (TaskTable(clients.dynamodb, config.table, config.task_ttl_days)
                      if config.table and clients.dynamodb is not None else None)
        self.publisher = ResultPublisher(clients.sns, config.topic_arn)
        self.fetcher = fetcher or InputFetcher(config, clients.s3)
        self.annotator = annotator or PodAnnotator(config)
        self.cold_start = cold_start or ColdStart(config)
        self.queue = InputQueue(clients.sqs, config)
        self.stopping = threading.Event()
        self.runtime_ready = threading.Event()
        self._ready_jobs: queue.Queue[Any] = queue.Queue()
        self._slots = threading.Condition()
        self._waiting = 0  # received, not yet started on the runtime
        self._idle_workers = config.runtime_concurrency
        self._running: dict[str, Job] = {}
        self._active = 0  # running or finishing
        self._inflight_ids: set[str] = set()
        self._finishers = ThreadPoolExecutor(config.upload_workers, thread_name_prefix="finish")
        self._receiver = threading.Thread(target=self._receive_loop, name="receiver", daemon=True)
        self._workers = [
            threading.Thread(target=self._work_loop, name=f"runtime-{i}", daemon=True)
            for i in range(config.runtime_concurrency)
        ]
        self.cancel_watch: CancelWatch[Job] | None = (
            CancelWatch(self.table.status_of, self._cancel_running, config.cancel_poll_seconds)
            if self.table is not None else None)
        self.completed = 0
        self.failed = 0
        self.cancelled = 0

    # ====================================================================== lifecycle ====
    def start(self) -> None:
        self.queue.start()
        logs.event("agent_started", runtime=self.config.runtime_name,
                   runtime_type=self.config.runtime_type,
                   concurrency=self.config.runtime_concurrency, prefetch=self.config.prefetch,
                   max_receive_count=self.queue.max_receive_count,
                   task_table=bool(self.table))
        if self.config.input_allow_networks:
            logs.warning("input_guard_relaxed",
                         networks=[str(n) for n in self.config.input_allow_networks],
                         note="AGENT_INPUT_ALLOW_ADDRESSES is meant for tests only")
        self.annotator.start()
        if self.cancel_watch is not None:
            self.cancel_watch.start()
        for worker in self._workers:
            worker.start()
        self._receiver.start()

    def live(self) -> bool:
        return (self._receiver.is_alive() and all(w.is_alive() for w in self._workers)) or (
            self.stopping.is_set())

    def ready(self) -> bool:
        return self.runtime_ready.is_set() and not self.stopping.is_set()

    def shutdown(self) -> None:
        """Stop receiving, release prefetched messages, let running tasks finish within the
        grace period (else interrupt and release them), finish what is finishing."""
        started = time.monotonic()
        self.stopping.set()
        logs.event("shutdown_started", running=len(self._running),
                   grace_seconds=self.config.shutdown_grace_seconds)
        with self._slots:
            self._slots.notify_all()
        self._release_prefetched()
        deadline = started + self.config.shutdown_grace_seconds
        while self._running_jobs() and time.monotonic() < deadline:
            time.sleep(0.05)
        for job in self._running_jobs():
            logs.warning("task_interrupted", task_id=job.task_id,
                         reason="shutdown grace period elapsed")
            job.cancel.set()
            self.adapter.interrupt(job.prepared)
        for _ in self._workers:
            self._ready_jobs.put(_STOP)
        for worker in self._workers:
            worker.join(timeout=30)
        self._receiver.join(timeout=max(0.0, self.config.wait_time_seconds + 5
                                        - (time.monotonic() - started)))
        self.adapter.close(SHUTDOWN_CLEANUP_SECONDS)
        self._release_prefetched(final=True)
        if self.cancel_watch is not None:
            self.cancel_watch.stop()
        self._finishers.shutdown(wait=True)
        self.queue.stop()
        self.annotator.stop()
        logs.event("shutdown_complete", seconds=round(time.monotonic() - started, 3),
                   completed=self.completed, failed=self.failed, cancelled=self.cancelled)

    def _running_jobs(self) -> list[Job]:
        with self._slots:
            return list(self._running.values())

    def _release_prefetched(self, final: bool = False) -> None:
        """Give back every prepared job not yet started (the workers' stop markers stay in
        the queue unless this is the final drain, after the workers have ended)."""
        stops = 0
        while True:
            try:
                job = self._ready_jobs.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stops += 1
                continue
            self._not_started(job)
            self._give_back(job, "shutdown: prefetched task released")
        for _ in range(0 if final else stops):
            self._ready_jobs.put(_STOP)

    # ======================================================================= receiving ====
    def _free_slots(self) -> int:
        with self._slots:
            while not self.stopping.is_set():
                free = self.config.prefetch + self._idle_workers - self._waiting
                if free > 0:
                    return min(10, free)
                self._slots.wait(timeout=1.0)
            return 0

    def _wait_for_runtime(self) -> None:
        announced = False
        while not self.stopping.is_set() and not self.runtime_ready.is_set():
            if self.adapter.ready():
                self.runtime_ready.set()
                logs.event("runtime_ready", url=self.config.api_base_url)
                self.cold_start.runtime_ready()
                return
            if not announced:
                logs.event("waiting_for_runtime", url=self.config.api_base_url)
                announced = True
            self.stopping.wait(1.0)

    def _receive_loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                self._wait_for_runtime()
                count = self._free_slots()
                if count == 0:
                    continue
                jobs = self.queue.receive(count)
                failures = 0
            except (ClientError, BotoCoreError) as exc:
                failures += 1
                delay = min(30.0, 2.0 ** min(failures, 5))
                logs.warning("receive_failed", error=clip(exc, 300), retry_in_seconds=delay)
                self.stopping.wait(delay)
                continue
            except Exception as exc:  # the loop must survive anything
                logs.error("receiver_error", error=clip(repr(exc), 300))
                self.stopping.wait(1.0)
                continue
            with self._slots:
                self._waiting += len(jobs)
                for job in jobs:
                    job.waiting = True
            for job in jobs:
                try:
                    self._admit(job)
                except Exception as exc:  # a bug must not kill the loop nor lose the task
                    logs.error("prepare_crashed", message_id=job.message_id,
                               error=clip(repr(exc), 300))
                    self._not_started(job)
                    self._retry_later(job, TransientError("agent_error", repr(exc)))

    def _not_started(self, job: Job) -> None:
        """The job leaves the 'received, not yet started' count (once)."""
        with self._slots:
            if job.waiting:
                job.waiting = False
                self._waiting -= 1
                self._slots.notify_all()

    def _admit(self, job: Job) -> None:
        """Parse, check the record, fetch inputs; queue the job for the runtime or settle it."""
        if self.stopping.is_set():
            self._not_started(job)
            self._give_back(job, "shutdown: received after stop")
            return
        started = time.monotonic()
        job.timings["queue_wait"] = max(0.0, job.received_at - job.sent_at)
        try:
            job.task = parse_task(
                job.body, self.config.runtime_type, self.config.runtime_name,
                lambda url: self.store.read_claim_check(url, MAX_CLAIM_CHECK_BYTES),
                self.config.bucket,
                allow_loopback_webhooks=self.config.webhook_allow_loopback,
            )
        except InvalidMessage as exc:
            self._not_started(job)
            self._invalid(job, exc)
            return
        except TransientError as exc:
            self._not_started(job)
            self._retry_later(job, exc)
            return
        task = job.task
        with self._slots:
            duplicate = task.id in self._inflight_ids
            if not duplicate:
                self._inflight_ids.add(task.id)
        if duplicate:
            self._not_started(job)
            job.task = None  # the id belongs to the job already in flight
            logs.event("duplicate_deferred", task_id=task.id, message_id=job.message_id)
            self.queue.release(job, self.queue.backoff(job))
            return
        try:
            if self.table is not None:
                start = self.table.mark_running(task, self._location(task))
                if start.final is not None:
                    self._not_started(job)
                    self._already_final(job, start.final)
                    return
                job.attempts = start.attempts
                if start.redriven:
                    logs.event("task_redriven", task_id=task.id, attempt=job.attempts,
                               message_id=job.message_id)
            else:
                job.attempts = job.receive_count
            logs.event("task_received", task_id=task.id, tasktype=task.tasktype,
                       attempt=job.attempts, receive_count=job.receive_count,
                       source=task.source, queue_wait=round(job.timings["queue_wait"], 3))
            self.cold_start.first_task()
            job.prepared = self.adapter.prepare(task, self.fetcher.fetch)
        except TaskError as exc:
            self._not_started(job)
            job.error = exc
            job.timings["download"] = time.monotonic() - started
            self._finishers.submit(self._finish, job)
            return
        except (ClientError, BotoCoreError) as exc:
            self._not_started(job)
            self._settle_transient(job, TransientError("status_error", clip(exc, 300)))
            return
        job.timings["download"] = time.monotonic() - started
        if self.stopping.is_set():
            self._not_started(job)
            self._give_back(job, "shutdown: prefetched task released")
            return
        job.timings["prepared_at"] = time.monotonic()
        if self.cancel_watch is not None:
            self.cancel_watch.watch(task.id, job)  # from now until it leaves the runtime
        self._ready_jobs.put(job)

    def _invalid(self, job: Job, exc: InvalidMessage) -> None:
        """A message that is not a valid task: report it once if it names a task, delete it."""
        logs.warning("invalid_message", message_id=job.message_id, task_id=exc.task_id,
                     error=exc.message)
        if exc.task_id is None:
            self.queue.delete(job)
            return
        try:
            document = json.loads(job.body)
            inner = enveloped_message(document)
            if inner is not None:
                document = json.loads(inner)
            metadata = document.get("metadata") if isinstance(document, dict) else None
            context = metadata.get("context", "") if isinstance(metadata, dict) else ""
            tasktype = metadata.get("tasktype") if isinstance(metadata, dict) else None
        except (ValueError, KeyError, TypeError):
            context, tasktype = "", None
        job.task = Task(id=exc.task_id, runtime=self.config.runtime_name,
                        tasktype=str(tasktype or "unknown"), content={}, context=context)
        with self._slots:
            if exc.task_id in self._inflight_ids:
                job.task = None
                self.queue.release(job, self.queue.backoff(job))
                return
            self._inflight_ids.add(exc.task_id)
        job.error = exc
        self._finishers.submit(self._finish, job)

    def _already_final(self, job: Job, record: dict[str, Any]) -> None:
        """The task was finished before (duplicate delivery, or a crash after the final
        status): make sure its result was published, then delete the message."""
        task = job.task
        assert task is not None
        try:
            self._settle_final(job, task, record)
        finally:
            with self._slots:
                self._inflight_ids.discard(task.id)

    def _settle_final(self, job: Job, task: Task, record: dict[str, Any]) -> None:
        if record.get("result_published"):
            logs.event("duplicate_ignored", task_id=task.id, status=record.get("status"))
            self.queue.delete(job)
            return
        if _unclaimed_cancel(record):
            try:
                self._report_cancelled(job)
            except (ClientError, BotoCoreError) as exc:
                self._retry_later(job, TransientError("notify_error", clip(exc, 300)))
            return
        recent = self._age_seconds(record.get("updated_at")) < self._settle_seconds()
        if recent and not self.queue.is_last_delivery(job):
            # Another agent may be publishing this very moment: look again later.
            self.queue.release(job, self.queue.backoff(job))
            return
        try:
            self.publisher.publish(message_from_record(record, self.config.bucket))
            self.table.mark_result_published(task.id)  # type: ignore[union-attr]
        except (ClientError, BotoCoreError) as exc:
            self._retry_later(job, TransientError("notify_error", clip(exc, 300)))
            return
        logs.event("result_republished", task_id=task.id, status=record.get("status"))
        self.queue.delete(job)

    def _settle_seconds(self) -> float:
        return max(2.0, 2 * self.config.heartbeat_seconds)

    @staticmethod
    def _age_seconds(stamp: Any) -> float:
        moment = parse_timestamp(stamp)
        return math.inf if moment is None else (datetime.now(UTC) - moment).total_seconds()

    # ================================================================= runtime workers ====
    def _work_loop(self) -> None:
        while True:
            job = self._ready_jobs.get()
            if job is _STOP:
                return
            if self.stopping.is_set():
                self._not_started(job)
                self._give_back(job, "shutdown: prefetched task released")
                continue
            with self._slots:  # a re-entrant lock: one step for the receiver's slot count
                self._not_started(job)
                self._idle_workers -= 1
                self._running[job.message_id] = job
                self._active += 1
                self._slots.notify_all()
            self.annotator.set_busy(True)
            try:
                self._run(job)
            finally:
                with self._slots:
                    self._running.pop(job.message_id, None)
                    self._idle_workers += 1
                    self._slots.notify_all()
            if job.cancelled:
                job.output, job.error = None, None  # whatever the runtime said: discarded
                self._finishers.submit(self._finish, job)
            elif job.cancel.is_set():
                self._give_back(job, "shutdown: running task interrupted")
                self._job_done()
            else:
                self._finishers.submit(self._finish, job)

    def _run(self, job: Job) -> None:
        assert job.prepared is not None
        started = time.monotonic()
        job.timings["prefetch_wait"] = started - job.timings.pop("prepared_at", started)
        task_id = job.prepared.task.id
        try:
            if job.cancelled:  # cancelled while it waited for the runtime: not started
                logs.event("task_not_started", task_id=task_id, reason="cancelled")
            else:
                job.output = self.adapter.run(job.prepared, job.cancel)
        except Cancelled:
            job.cancel.set()
        except TaskError as exc:
            job.error = exc
            if exc.code == "runtime_unavailable":
                self.runtime_ready.clear()
        except Exception as exc:  # a bug must not kill the worker nor lose the task
            logs.error("runtime_call_crashed", task_id=job.task_id, error=clip(repr(exc), 300))
            job.error = TransientError("agent_error", repr(exc))
        finally:
            if self.cancel_watch is not None:
                self.cancel_watch.forget(task_id)
        job.timings["inference"] = time.monotonic() - started

    def _cancel_running(self, job: Job) -> None:
        """The client cancelled ``job`` while it waits for the runtime or runs (the cancel
        watch saw its record): it is not started, or its generation is stopped; it ends
        ``cancelled`` (:meth:`_report_cancelled`)."""
        job.cancelled = True
        job.cancel.set()
        with self._slots:
            running = self._running.get(job.message_id) is job
        if running and job.prepared is not None:
            self.adapter.cancel(job.prepared)

    def _job_done(self) -> None:
        with self._slots:
            self._active -= 1
            idle = self._active == 0
        if idle:
            self.annotator.set_busy(False)

    # ======================================================================= finishing ====
    def _finish(self, job: Job) -> None:
        started_on_runtime = job.output is not None or "inference" in job.timings
        try:
            self._finish_with_retries(job)
        except Exception as exc:  # never lose a task to a bug here
            logs.error("finish_crashed", task_id=job.task_id, error=clip(repr(exc), 300))
            self._retry_later(job, TransientError("agent_error", repr(exc)))
        finally:
            if job.task is not None:
                with self._slots:
                    self._inflight_ids.discard(job.task.id)
            if started_on_runtime:
                self._job_done()

    def _finish_with_retries(self, job: Job) -> None:
        error = job.error
        if error is not None and not error.permanent and not self.queue.is_last_delivery(job):
            self._retry_later(job, error)
            return
        last_error: Exception | None = None
        for attempt in range(self.config.finish_attempts):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2 ** attempt))
            try:
                self._report(job)
                return
            except (ClientError, BotoCoreError) as exc:
                last_error = exc
                logs.warning("finish_step_failed", task_id=job.task_id, attempt=attempt + 1,
                             error=clip(exc, 300))
        self._retry_later(job, TransientError("finish_error", clip(last_error, 300)))

    def _report(self, job: Job) -> None:
        """Outputs, final status, result message, ``result_published``, delete: in order.

        Each step remembers that it is done, so a retry after an AWS error resumes where it
        stopped instead of writing twice.
        """
        task = job.task
        assert task is not None
        if job.cancelled and job.final_written:
            self._report_cancelled(job)  # a retry: resume where it stopped
            return
        error = job.error
        exhausted = error is not None and not error.permanent
        status = FAILED if error is not None else COMPLETED
        error_doc = None
        if error is not None:
            error_doc = error.as_dict()
            if exhausted:
                error_doc["message"] = (f"{error.message} (gave up after {job.receive_count} "
                                        "deliveries)")
        if not job.final_written and self.table is not None:
            record = self.table.get(task.id)
            if record is not None and _unclaimed_cancel(record):
                # Cancelled while it ran (noticed or not): nothing of it is stored.
                self._report_cancelled(job)
                return
            if record is not None and record.get("status") in FINAL_STATUSES:
                self._lost_race(job, record)
                return
        if not job.outputs_written:
            # ``upload`` times the output files; the result document carries the figures
            # (the same ones the record and the message carry), so its own write is not in.
            upload_started = time.monotonic()
            if job.output is not None:
                job.outputs = self.store.put_outputs(task.key, job.output.images,
                                                     job.output.animated)
                job.images = [o.url for o in job.outputs if o.is_image]
            job.timings["upload"] = time.monotonic() - upload_started
            job.timings["total"] = time.monotonic() - job.received_mono
            self.store.put_json(task.key("result.json"), result_document(job, status, error_doc))
            job.outputs_written = True
        timings = job.public_timings()
        outputs = [o.as_dict() for o in job.outputs]
        if not job.final_written and self.table is not None:
            if not self.table.mark_final(task, status, job.images, error_doc, timings,
                                         self._location(task), outputs):
                record = self.table.get(task.id) or {}
                self._lost_race(job, record)
                return
        job.final_written = True
        if not job.published:
            self.publisher.publish(result_message(
                runtime=task.runtime, task_id=task.id, status=status, images=job.images,
                location=self._location(task), context=task.context,
                error=error_doc, timings=timings, outputs=outputs,
            ))
            job.published = True
        if not job.published_flagged and self.table is not None:
            self.table.mark_result_published(task.id)
            job.published_flagged = True
        if status == COMPLETED:
            self.completed += 1
        else:
            self.failed += 1
        log_finished(self.config, job, status, error_doc)
        if exhausted:
            # Reported failed; the message goes on to the dead-letter queue for inspection.
            self.queue.release(job, 0)
        else:
            self.queue.delete(job)

    def _report_cancelled(self, job: Job) -> None:
        """A cancelled task: claim it in the record, publish its result from the record, set
        ``result_published``, delete the message (each step once, as :meth:`_report`)."""
        task = job.task
        assert task is not None and self.table is not None
        job.cancelled = True
        if not job.final_written:
            record = self.table.claim_cancelled(task.id)
            if record is None:  # another agent claimed it first: it publishes
                self._lost_race(job, self.table.get(task.id) or {})
                return
            job.record = record
            job.final_written = True
        if not job.published:
            self.publisher.publish(message_from_record(job.record or {}, self.config.bucket))
            job.published = True
        if not job.published_flagged:
            self.table.mark_result_published(task.id)
            job.published_flagged = True
        self.cancelled += 1
        log_finished(self.config, job, CANCELLED, None)
        self.queue.delete(job)

    def _lost_race(self, job: Job, record: dict[str, Any]) -> None:
        """Another delivery of this task reached a final status first: keep its outputs."""
        task = job.task
        assert task is not None
        logs.event("duplicate_finished_elsewhere", task_id=task.id, status=record.get("status"),
                   result_published=bool(record.get("result_published")))
        if record.get("result_published"):
            self.queue.delete(job)
        else:
            self.queue.release(job, self.queue.backoff(job))

    # ===================================================================== SQS helpers ====
    def _location(self, task: Task) -> str:
        return output_location(self.config.bucket, task.prefix, task.id)

    def _settle_transient(self, job: Job, error: TransientError) -> None:
        if self.queue.is_last_delivery(job) and job.task is not None:
            job.error = error
            self._finishers.submit(self._finish, job)
        else:
            self._retry_later(job, error)

    def _retry_later(self, job: Job, error: TaskError) -> None:
        delay = self.queue.backoff(job)
        logs.warning("task_retry_scheduled", task_id=job.task_id, message_id=job.message_id,
                     receive_count=job.receive_count, error_code=error.code,
                     error=error.message, retry_in_seconds=delay)
        logs.emit_metrics(self.config.metrics_namespace, {"Runtime": self.config.runtime_name},
                          {"TasksRetried": 1.0}, {"TasksRetried": "Count"})
        if job.task is not None:
            with self._slots:
                self._inflight_ids.discard(job.task.id)
        self.queue.release(job, delay)

    def _give_back(self, job: Job, reason: str) -> None:
        """Release a task this agent will not run (shutdown): visible again at once."""
        logs.event("task_released", task_id=job.task_id, message_id=job.message_id,
                   reason=reason)
        if job.task is not None and self.cancel_watch is not None:
            self.cancel_watch.forget(job.task.id)
        if job.task is not None and self.table is not None:
            try:
                self.table.release_running(job.task.id)
            except (ClientError, BotoCoreError) as exc:
                logs.warning("status_release_failed", task_id=job.task_id, error=clip(exc, 200))
        if job.task is not None:
            with self._slots:
                self._inflight_ids.discard(job.task.id)
        self.queue.release(job, 0)
