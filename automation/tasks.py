"""Celery interface of the engine: each task takes ids, calls one service, and is safe to receive twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from automation import conf
from automation.services import outbox, reconciler, runner


@shared_task(
    name="automation.run_task",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=conf.run_timeout_seconds() + 30,
    time_limit=conf.run_timeout_seconds() + 60,
)
def run_task(self: Any, *, organization_id: int, task_id: int) -> str:
    """Work on the organization's best queued task (a hint: task_id). A duplicate message finds nothing to do."""
    return runner.process(organization_id=organization_id, task_id=task_id, worker=self.request.hostname or "worker")


@shared_task(name="automation.deliver_effects", acks_late=True, ignore_result=True)
def deliver_effects(*, organization_id: int | None = None) -> int:
    """Deliver pending outbox effects of one organization (or all)."""
    return outbox.deliver_pending(organization_id=organization_id)


@shared_task(name="automation.reconcile", ignore_result=True, expires=30)
def reconcile() -> dict[str, int]:
    """The engine's periodic system job: leases, lost messages, due retries, aging, stale effects."""
    return reconciler.reconcile().as_dict()
