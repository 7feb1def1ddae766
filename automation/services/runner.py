"""One attempt, end to end: claim, execute with a heartbeat, record the outcome.

The outcome is written in one transaction that first checks the lease is
still this worker's (a cancelled task, or one the reconciler took back after
a missed heartbeat, discards the late result): the run row, the full log,
the outbox rows (unique per task and step key: recorded once however often
the step runs), the task's new status, its retry schedule, the circuit
breaker, and the release of the tasks that wait for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from accounts.errors import ServiceError
from automation import conf
from automation.executors import ExecutionContext, ExecutionResult, get_executor
from automation.models import BlockedKind, RunStatus, SideEffect, Task, TaskRun, TaskRunLog, TaskStatus
from automation.services import breakers, dispatch, graph
from automation.services.estimates import refresh_waiting_estimates
from automation.services.events import event_append
from automation.services.outbox import deliver_on_commit, idempotency_key
from automation.services.status import task_transition

logger = logging.getLogger(__name__)
S = TaskStatus
T = TypeVar("T")


def backoff_seconds(retry_number: int, *, rng: random.Random | None = None) -> float:
    """Delay before retry ``n`` (1-based): exponential from the base, capped, with jitter in [50%, 100%]."""
    base = conf.retry_base_seconds()
    ceiling = min(conf.retry_cap_seconds(), base * (2 ** max(0, retry_number - 1)))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def retry_on_deadlock(func: Callable[[], T], attempts: int = 5) -> T:
    """Run a transaction function again if PostgreSQL picked it as a deadlock victim."""
    for attempt in range(attempts):
        try:
            return func()
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def heartbeat(*, task_id: int, token: Any, context: ExecutionContext) -> Iterator[None]:
    """Renew the lease every few seconds while the block runs; flag ``lease_lost`` if it was taken back."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(conf.heartbeat_seconds()):
                now = timezone.now()
                try:
                    kept = Task.objects.dangerously_unscoped().filter(
                        pk=task_id, lease_token=token, status=S.IN_PROGRESS
                    ).update(lease_expires_at=now + timedelta(seconds=conf.lease_seconds()))
                    TaskRun.objects.dangerously_unscoped().filter(task_id=task_id, lease_token=token).update(
                        heartbeat_at=now
                    )
                except Exception:  # the database is briefly unreachable: try again next beat
                    logger.warning("heartbeat of task %s failed", task_id, exc_info=True)
                    continue
                if not kept:
                    context.lease_lost.set()
                    return
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"lease-{task_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def execute(context: ExecutionContext) -> ExecutionResult:
    """Call the task's executor; an exception becomes a retryable failure with its traceback."""
    try:
        executor = get_executor(context.task.executor)
    except ServiceError as exc:
        return ExecutionResult.failed(exc.message, retryable=False)
    try:
        result = executor.execute(context)
    except ServiceError as exc:
        return ExecutionResult.failed(exc.message, retryable=False, log=context.log_text)
    except Exception as exc:  # noqa: BLE001 - an executor's error is the attempt's outcome
        result = ExecutionResult.failed(f"{type(exc).__name__}: {exc}", log=context.log_text)
        result.traceback = traceback.format_exc()
        return result
    if not isinstance(result, ExecutionResult):
        return ExecutionResult.failed(f"executor {context.task.executor!r} returned {type(result).__name__}, "
                                      "not an ExecutionResult", retryable=False)
    if context.log_text:
        result.log = f"{context.log_text}\n{result.log}" if result.log else context.log_text
    result.effects = [*context.effects, *result.effects]
    return result


def process(*, organization_id: int, task_id: int, worker: str) -> str:
    """Handle one "work on X" message: claim the best task, run it, record the outcome. Returns what happened."""
    claimed = retry_on_deadlock(
        lambda: dispatch.claim(organization_id=organization_id, hint_task_id=task_id, worker=worker)
    )
    if claimed is None:
        return "nothing to do"
    return run_claimed(claimed.task, claimed.run, worker=worker)


def run_claimed(task: Task, run: TaskRun, *, worker: str) -> str:
    """Execute a claimed attempt under its lease and record the outcome."""
    context = ExecutionContext(task=task, run=run, worker=worker)
    with heartbeat(task_id=task.pk, token=run.lease_token, context=context):
        result = execute(context)
    return retry_on_deadlock(lambda: finish(task_id=task.pk, run_id=run.pk, token=run.lease_token, result=result))


def _jsonable(value: Any) -> tuple[Any, str, bool]:
    text = json.dumps(value, cls=DjangoJSONEncoder, default=str)
    if len(text) <= conf.OUTPUT_EXCERPT_CHARS:
        return json.loads(text), text, False
    return {"truncated": True, "excerpt": text[: conf.OUTPUT_EXCERPT_CHARS]}, text, True


def _excerpt(log: str) -> str:
    if len(log) <= conf.LOG_EXCERPT_CHARS:
        return log
    return "…" + log[-conf.LOG_EXCERPT_CHARS :]


@dataclass
class _Recorded:
    run: TaskRun
    output: Any


def _record_run(run: TaskRun, result: ExecutionResult, status: str) -> _Recorded:
    now = timezone.now()
    output, output_text, truncated = _jsonable(result.output)
    run.status = status
    run.finished_at = now
    run.duration = now - run.started_at
    run.output = output
    run.output_truncated = truncated
    run.log_excerpt = _excerpt(result.log)
    run.log_size = len(result.log)
    run.error = result.error[:10000]
    run.traceback = result.traceback[:50000]
    run.cost = Decimal(result.cost or 0)
    run.save()
    if result.log or truncated:
        TaskRunLog(organization_id=run.organization_id, run=run, text=result.log, output_text=output_text).save(
            force_insert=True
        )
    return _Recorded(run=run, output=json.loads(output_text))


def _record_effects(task: Task, run: TaskRun, result: ExecutionResult) -> int:
    if not result.effects:
        return 0
    rows = [
        SideEffect(
            organization_id=task.organization_id, task=task, run=run, key=effect.key[:200],
            idempotency_key=idempotency_key(task.pk, effect.key), kind=effect.kind, payload=effect.payload,
        )
        for effect in result.effects
    ]
    before = SideEffect.objects.dangerously_unscoped().filter(task=task).count()
    SideEffect.objects.dangerously_unscoped().bulk_create(rows, ignore_conflicts=True)
    added = SideEffect.objects.dangerously_unscoped().filter(task=task).count() - before
    if added:
        event_append(task=task, type="effects_recorded", actor_label=f"worker:{run.worker}",
                     payload={"keys": [e.key for e in result.effects], "new": added})
        deliver_on_commit(task.organization_id)
    return added


def finish(*, task_id: int, run_id: int, token: Any, result: ExecutionResult) -> str:
    """Record an attempt's outcome if the lease is still ours; return the task's new status (or why not)."""
    with transaction.atomic():
        task = Task.objects.dangerously_unscoped().select_for_update().get(pk=task_id)
        run = TaskRun.objects.dangerously_unscoped().select_for_update().get(pk=run_id)
        label = f"worker:{run.worker}"
        if task.status != S.IN_PROGRESS or task.lease_token != token:
            if run.status == RunStatus.RUNNING:
                kind = RunStatus.CANCELLED if task.status == S.CANCELLED else RunStatus.LOST
                _record_run(run, result, kind)
                event_append(task=task, type="run_discarded", actor_label=label,
                             payload={"attempt": run.attempt, "reason": f"task is {task.status}; lease not held"})
            return "discarded"
        run_status = {"completed": RunStatus.COMPLETED, "failed": RunStatus.FAILED, "parked": RunStatus.PARKED}[
            result.status
        ]
        recorded = _record_run(run, result, run_status)
        _record_effects(task, run, result)
        payload = {"attempt": run.attempt, "run": run.pk, "seconds": round(run.duration.total_seconds(), 3)}
        if result.status == "completed":
            breakers.record_success(organization_id=task.organization_id, key=task.breaker_key)
            task_transition(task=task, to=S.COMPLETED, actor_label=label, payload=payload,
                            fields={"result": recorded.output, "actual_duration": run.duration})
            graph.after_terminal(task, actor_label=label)
            refresh_waiting_estimates(task)
        elif result.status == "parked":
            breakers.record_success(organization_id=task.organization_id, key=task.breaker_key)
            kind = BlockedKind.SUBTASKS if result.park_kind == "subtasks" else BlockedKind.PARKED
            task_transition(task=task, to=S.BLOCKED, actor_label=label, reason=result.park_reason,
                            payload=payload, fields={"blocked_kind": kind, "blocked_reason": result.park_reason,
                                                     "result": recorded.output})
            if kind == BlockedKind.SUBTASKS:
                graph.settle(task, actor_label=label)
        else:
            _fail_attempt(task, run, result, label=label, payload=payload)
        dispatch.dispatch_next(task.organization_id)
        return task.status


def _fail_attempt(task: Task, run: TaskRun, result: ExecutionResult, *, label: str, payload: dict[str, Any]) -> None:
    breakers.record_failure(organization_id=task.organization_id, key=task.breaker_key, error=result.error)
    if result.retryable and task.retry_count < task.max_retries:
        retry_number = task.retry_count + 1
        delay = backoff_seconds(retry_number)
        event_append(task=task, type="retry_scheduled", actor_label=label,
                     payload={**payload, "retry": retry_number, "of": task.max_retries,
                              "delay_seconds": round(delay, 3), "error": result.error[:500]})
        dispatch.enqueue(task, actor_label=label, reason=f"attempt {run.attempt} failed: {result.error[:200]}",
                         delay_seconds=delay, fields={"retry_count": retry_number})
        return
    why = result.error or "failed"
    if result.retryable and task.max_retries:
        why = f"{why} (after {task.retry_count + 1} attempts)"
    task_transition(task=task, to=S.FAILED, actor_label=label, reason=why, payload=payload)
    graph.after_terminal(task, actor_label=label)


def expire_lease(task: Task, *, now: Any = None) -> str:
    """The reconciler found ``task`` (locked, in progress) with an expired lease: count the attempt as lost.

    The task is queued again at once while retries remain (a worker crash is
    not the task's fault, but it still counts, so a task that kills its
    worker every time ends failed), else it fails naming the lost worker.
    """
    run = TaskRun.objects.dangerously_unscoped().filter(task_id=task.pk, lease_token=task.lease_token).first()
    worker = task.lease_owner or (run.worker if run else "")
    if run is not None and run.status == RunStatus.RUNNING:
        _record_run(run, ExecutionResult.failed(f"lease expired: worker {worker} stopped heartbeating"),
                    RunStatus.LOST)
    payload = {"attempt": task.attempt_count, "worker": worker}
    event_append(task=task, type="lease_expired", actor_label="reconciler", payload=payload)
    if task.retry_count < task.max_retries:
        dispatch.enqueue(task, actor_label="reconciler", reason=f"worker {worker} lost the task",
                         fields={"retry_count": task.retry_count + 1}, payload=payload)
    else:
        task_transition(task=task, to=S.FAILED, actor_label="reconciler",
                        reason=f"worker {worker} lost the task and no retries are left", payload=payload)
        graph.after_terminal(task, actor_label="reconciler")
    dispatch.dispatch_next(task.organization_id)
    return task.status
