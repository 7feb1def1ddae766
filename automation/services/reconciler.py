"""The reconciler: the engine's periodic repair pass (a system job every few seconds).

PostgreSQL is the record; Celery messages are hints. The reconciler makes
the record move again whatever happened to the hints:

1. **Expired leases.** A task in progress whose worker stopped renewing its
   lease (killed, frozen, cut off) is taken back: the attempt is marked lost
   and the task queued again (or failed when its retries are used up).
2. **Dispatch.** Queued tasks that need a message (a retry whose backoff is
   over, a message spent while the organization was at its limit or its
   circuit open) are published, up to the organization's free slots. When
   the broker queue is empty, queued tasks whose message is older than the
   redispatch interval are published again (the message was lost: a Redis
   restart without persistence, a purge).
3. **Parents** waiting for subtasks that have all finished are settled.
4. **Effects** still pending in the outbox are handed to a deliverer again.

Bound: an accepted task is claimed within ``redispatch + reconcile
interval`` of being queued while a worker is up; an attempt that loses its
worker is taken back within ``lease + reconcile interval``; every attempt
ends within the run time limit; retries are finite (``max_retries``, lost
workers included) and backoff is capped. So every accepted task reaches a
terminal state, or a parked one (waiting for a person), in bounded time.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from celery import Celery
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automation import conf
from automation.models import BlockedKind, SideEffect, SideEffectStatus, Task, TaskStatus
from automation.services import breakers, dispatch, graph, outbox, runner
from automation.services.status import ACTIVE

logger = logging.getLogger(__name__)
S = TaskStatus
BATCH = 200


@dataclass
class ReconcileReport:
    leases_expired: int = 0
    published: int = 0
    parents_settled: int = 0
    effect_deliveries: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def broker_backlog(app: Celery | None = None) -> int | None:
    """Messages waiting in the default Celery queue, or None if the broker cannot be asked."""
    if app is None:
        from config.celery import app
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            queue = app.conf.task_default_queue or "celery"
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:
        if "NOT_FOUND" in str(exc):  # no such queue yet: an emptied or restarted broker holds no messages
            return 0
        logger.warning("could not read the broker's queue length", exc_info=True)
        return None


def expire_leases(now: datetime) -> int:
    """Take back every in-progress task whose lease ran out."""
    count = 0
    while True:
        with transaction.atomic():
            tasks = list(
                Task.objects.dangerously_unscoped()
                .select_for_update(skip_locked=True)
                .filter(status=S.IN_PROGRESS, lease_expires_at__lt=now)
                .order_by("lease_expires_at")[:BATCH]
            )
            for task in tasks:
                logger.warning("lease of task %s held by %s expired; taking it back", task.pk, task.lease_owner)
                runner.expire_lease(task, now=now)
        count += len(tasks)
        if len(tasks) < BATCH:
            return count


def publish_waiting(now: datetime, *, broker_idle: bool) -> int:
    """Publish messages for queued tasks that lack one, within each organization's free slots."""
    eligible = Q(status=S.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    needs = Q(dispatched_at__isnull=True)
    if broker_idle:
        needs |= Q(dispatched_at__lt=now - timedelta(seconds=conf.redispatch_seconds()))
    organizations = (
        Task.objects.dangerously_unscoped().filter(eligible & needs).values_list("organization_id", flat=True)
        .distinct()
    )
    published = 0
    for organization_id in list(organizations):
        with transaction.atomic():
            free = dispatch.org_limit(organization_id) - dispatch.executing_count(organization_id)
            if free <= 0:
                continue
            excluded = breakers.blocked_keys(organization_id, now=now)
            tasks = list(
                Task.objects.dangerously_unscoped()
                .select_for_update(skip_locked=True)
                .filter(eligible & needs, organization_id=organization_id)
                .exclude(breaker_key__in=excluded)
                .order_by("-dispatch_rank", "pk")[:free]
            )
            for task in tasks:
                Task.objects.dangerously_unscoped().filter(pk=task.pk).update(dispatched_at=now)
                dispatch.publish_on_commit(task)
            published += len(tasks)
    return published


def settle_parents() -> int:
    """Finish parents waiting for subtasks that are all finished (normally done as the last one finishes)."""
    waiting = Task.objects.dangerously_unscoped().filter(status=S.BLOCKED, blocked_kind=BlockedKind.SUBTASKS)
    stuck = waiting.exclude(subtasks__status__in=ACTIVE).values_list("pk", flat=True)[:BATCH]
    settled = 0
    for pk in list(stuck):
        with transaction.atomic():
            parent = Task.objects.dangerously_unscoped().select_for_update(skip_locked=True).filter(pk=pk).first()
            if parent is not None and graph.settle(parent, actor_label="reconciler") != "waiting":
                settled += 1
    return settled


def redeliver_effects(now: datetime) -> int:
    """Hand effects still pending after a while to a deliverer again."""
    organizations = list(
        SideEffect.objects.dangerously_unscoped()
        .filter(status=SideEffectStatus.PENDING, created_at__lt=now - timedelta(seconds=30),
                delivery_attempts__lt=outbox.MAX_DELIVERY_ATTEMPTS)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    for organization_id in organizations:
        with transaction.atomic():
            outbox.deliver_on_commit(organization_id)
    return len(organizations)


def reconcile(now: datetime | None = None) -> ReconcileReport:
    """Run every repair step once; safe to run concurrently and as often as wanted."""
    now = now or timezone.now()
    report = ReconcileReport()
    report.leases_expired = expire_leases(now)
    backlog = broker_backlog()
    report.published = publish_waiting(now, broker_idle=backlog == 0)
    report.parents_settled = settle_parents()
    report.effect_deliveries = redeliver_effects(now)
    return report
