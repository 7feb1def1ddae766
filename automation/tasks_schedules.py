"""Celery interface of schedules, reminders and approvals expiry, and their system jobs.

Imported by ``AutomationConfig.ready()`` so that workers know the tasks and
``setup_periodic_tasks`` sees the jobs. Each task calls one service.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from accounts.services.approvals import approvals_sweep
from automation.system_jobs import SystemJob, register_system_job

TICK_EVERY_SECONDS = 5
SWEEP_EVERY_SECONDS = 15
PRUNE_EVERY_SECONDS = 3600
KEEP_FIRINGS = timedelta(days=30)


@shared_task(name="automation.schedules_tick", ignore_result=True, expires=TICK_EVERY_SECONDS * 2)
def schedules_tick() -> dict[str, int]:
    """Fire due tenant schedules and reminders; if work is left, run again at once."""
    from automation.services.schedules import schedules_tick as tick_schedules
    from automation.services.schedules_reminders import reminders_tick

    schedules = tick_schedules()
    reminders = reminders_tick()
    if schedules.more or reminders.more:
        schedules_tick.apply_async()
    return {"schedules_fired": schedules.fired, "reminders_sent": reminders.fired}


@shared_task(name="automation.approvals_sweep", ignore_result=True, expires=SWEEP_EVERY_SECONDS * 2)
def expire_approvals() -> dict[str, int]:
    """Expire overdue approvals (failing the tasks that waited on them) and re-run unfinished decision handlers."""
    result = approvals_sweep()
    return {"expired": result.expired, "renotified": result.renotified}


@shared_task(name="automation.schedules_prune", ignore_result=True, expires=PRUNE_EVERY_SECONDS)
def schedules_prune() -> dict[str, int]:
    """Delete schedule firings and trigger deliveries older than 30 days."""
    from automation.models.schedules import ScheduleFiring, TriggerDelivery

    cutoff = timezone.now() - KEEP_FIRINGS
    firings, _ = ScheduleFiring.objects.dangerously_unscoped().filter(fired_at__lt=cutoff).delete()
    deliveries, _ = TriggerDelivery.objects.dangerously_unscoped().filter(received_at__lt=cutoff).delete()
    return {"firings": firings, "deliveries": deliveries}


register_system_job(SystemJob(
    name="automation.schedules_tick", task="automation.schedules_tick", every_seconds=TICK_EVERY_SECONDS,
    expires_seconds=TICK_EVERY_SECONDS * 2,
    description="Fire due tenant schedules and reminders (SELECT … FOR UPDATE SKIP LOCKED batches).",
))
register_system_job(SystemJob(
    name="automation.approvals_sweep", task="automation.approvals_sweep", every_seconds=SWEEP_EVERY_SECONDS,
    expires_seconds=SWEEP_EVERY_SECONDS * 2,
    description="Expire overdue approvals and re-run decision handlers that did not complete.",
))
register_system_job(SystemJob(
    name="automation.schedules_prune", task="automation.schedules_prune", every_seconds=PRUNE_EVERY_SECONDS,
    expires_seconds=PRUNE_EVERY_SECONDS,
    description="Delete schedule firings and trigger deliveries older than 30 days.",
))
