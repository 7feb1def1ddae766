"""Queueing and claiming work.

A queued task lives in PostgreSQL; a Celery message ``automation.run_task``
(ids only, published on commit) only says "there is work in this
organization, starting with task X". The worker that receives it *claims* the
best eligible queued task of that organization under a per-organization lock:
highest priority plus one point per aging interval waited (``dispatch_rank``), skipping
tasks whose circuit is open, and only while the organization is under its
concurrency limit. A message that finds nothing to do costs one query; a task
whose message was lost is published again by the reconciler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from automation import conf
from automation.models import ConcurrencyLimit, RunStatus, Task, TaskRun, TaskStatus
from automation.services import breakers
from automation.services.status import task_transition

logger = logging.getLogger(__name__)

S = TaskStatus
RUN_TASK = "automation.run_task"
_CLAIM_LOCK = 7301


def publish_run(*, organization_id: int, task_id: int) -> None:
    """Send the "work on X" message now. Failures are logged: the reconciler publishes again."""
    from config.celery import app

    try:
        app.send_task(
            RUN_TASK,
            kwargs={"organization_id": organization_id, "task_id": task_id},
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        )
    except Exception:  # the broker is down: PostgreSQL still holds the queued task
        logger.warning("could not publish task %s; the reconciler will", task_id, exc_info=True)


def publish_on_commit(task: Task) -> None:
    """Publish the message for ``task`` once the current transaction commits."""
    organization_id, task_id = task.organization_id, task.pk
    transaction.on_commit(lambda: publish_run(organization_id=organization_id, task_id=task_id))


def enqueue(
    task: Task,
    *,
    actor: User | None = None,
    actor_label: str = "",
    reason: str = "",
    delay_seconds: float = 0,
    payload: dict[str, object] | None = None,
    fields: dict[str, object] | None = None,
) -> Task:
    """Queue a locked task; publish its message on commit, or leave a delayed one for the reconciler.

    A delayed task (a retry's backoff) stores ``next_attempt_at`` in the row:
    no Celery ETA. The reconciler releases it when it is due.
    """
    now = timezone.now()
    extra: dict[str, object] = dict(fields or {})
    if delay_seconds > 0:
        extra.update(next_attempt_at=now + timedelta(seconds=delay_seconds), dispatched_at=None)
    else:
        extra.update(next_attempt_at=None, dispatched_at=now)
    task_transition(task=task, to=S.QUEUED, actor=actor, actor_label=actor_label, reason=reason,
                    payload=payload, fields=extra)
    if delay_seconds <= 0:
        publish_on_commit(task)
    return task


def org_limit(organization_id: int) -> int:
    """Tasks the organization may have executing at once."""
    row = (
        ConcurrencyLimit.objects.dangerously_unscoped()
        .filter(organization_id=organization_id)
        .values_list("max_in_progress", flat=True)
        .first()
    )
    return int(row) if row is not None else conf.org_concurrency()


def executing_count(organization_id: int) -> int:
    """Tasks of the organization held by a worker right now (manual in-progress work does not count)."""
    return (
        Task.objects.dangerously_unscoped()
        .filter(organization_id=organization_id, status=S.IN_PROGRESS, lease_token__isnull=False)
        .count()
    )


_ELIGIBLE = "status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)"


_CLOSED_CIRCUITS_ONLY = """
    AND NOT EXISTS (SELECT 1 FROM automation_circuitbreaker b
                    WHERE b.organization_id = automation_task.organization_id
                      AND b.key = automation_task.breaker_key AND b.state <> 'closed')"""


def _best_queued(organization_id: int, *, excluded_keys: list[str] | None, undispatched_only: bool = False
                 ) -> int | None:
    # excluded_keys=None: skip every task whose circuit is not closed (a cheaper test for "slot freed").
    extra = " AND dispatched_at IS NULL" if undispatched_only else ""
    extra += _CLOSED_CIRCUITS_ONLY if excluded_keys is None else " AND NOT (breaker_key = ANY(%(excluded)s))"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id FROM automation_task
            WHERE organization_id = %(org)s AND {_ELIGIBLE}{extra}
            ORDER BY dispatch_rank DESC, id
            LIMIT 1 FOR UPDATE SKIP LOCKED
            """,  # noqa: S608 - only constant fragments are interpolated
            {"org": organization_id, "now": timezone.now(), "excluded": excluded_keys or []},
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


@dataclass
class Claim:
    task: Task
    run: TaskRun


def claim(*, organization_id: int, hint_task_id: int, worker: str) -> Claim | None:
    """Take the organization's best eligible queued task for ``worker``, or None.

    Starts a TaskRun (attempt n), moves the task to ``in_progress`` and gives
    it a lease that the worker must renew. If nothing can start (the limit is
    reached, or only open circuits remain), the hinted task is marked as
    needing a new message, which a freed slot or the reconciler sends.
    """
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CLAIM_LOCK, organization_id])
        if executing_count(organization_id) >= org_limit(organization_id):
            _mark_undispatched(organization_id, hint_task_id)
            return None
        open_circuits = breakers.open_circuits(organization_id)
        excluded = breakers.blocked_keys(organization_id, now=now, rows=open_circuits)
        task_id = _best_queued(organization_id, excluded_keys=excluded)
        if task_id is None:
            _mark_undispatched(organization_id, hint_task_id)
            return None
        task = Task.objects.dangerously_unscoped().select_for_update().get(pk=task_id)
        if task.pk != hint_task_id and task.dispatched_at is None:
            _pass_message_on(hint_task_id)
        if any(row.key == task.breaker_key for row in open_circuits):
            breakers.note_claim(task, now=now)
        attempt = task.attempt_count + 1
        run = TaskRun(
            organization_id=task.organization_id, task=task, attempt=attempt, executor=task.executor,
            worker=worker, started_at=now, heartbeat_at=now, status=RunStatus.RUNNING,
        )
        run.save(force_insert=True)
        task_transition(
            task=task, to=S.IN_PROGRESS, actor_label=f"worker:{worker}",
            payload={"attempt": attempt, "run": run.pk, "worker": worker},
            fields={
                "lease_token": run.lease_token,
                "lease_owner": worker,
                "lease_expires_at": now + timedelta(seconds=conf.lease_seconds()),
                "attempt_count": attempt,
            },
        )
    return Claim(task=task, run=run)


def _mark_undispatched(organization_id: int, hint_task_id: int) -> None:
    # This message found nothing it may start. Whichever queued task it stood for now has no message:
    # mark the hinted one and the best waiting one as needing one (sent when a slot frees or a circuit
    # cools down, by the finishing worker or the reconciler).
    best = _best_queued(organization_id, excluded_keys=[])
    ids = [pk for pk in (hint_task_id, best) if pk is not None]
    Task.objects.dangerously_unscoped().filter(pk__in=ids, status=S.QUEUED).update(dispatched_at=None)


def _pass_message_on(task_id: int) -> None:
    # The message of ``task_id`` was spent on a task that had none: give it a new one.
    hint = Task.objects.dangerously_unscoped().filter(pk=task_id, status=S.QUEUED).first()
    if hint is not None:
        Task.objects.dangerously_unscoped().filter(pk=task_id).update(dispatched_at=timezone.now())
        publish_on_commit(hint)


def dispatch_next(organization_id: int) -> int | None:
    """A slot freed up: publish the best eligible queued task that has no message in flight."""
    task_id = _best_queued(organization_id, excluded_keys=None, undispatched_only=True)
    if task_id is None:
        return None
    task = Task.objects.dangerously_unscoped().get(pk=task_id)
    Task.objects.dangerously_unscoped().filter(pk=task_id).update(dispatched_at=timezone.now())
    publish_on_commit(task)
    return task_id
