"""Celery interface and system jobs of email in and notifications; each task calls one service.

Imported by the wiring at ``AutomationConfig.ready()`` so that workers know
the tasks and ``setup_periodic_tasks`` sees the jobs.
"""

from __future__ import annotations

from celery import shared_task

from automation.system_jobs import SystemJob, register_system_job

SPOOL_EVERY_SECONDS = 30
NOTIFY_EVERY_SECONDS = 10
PERIODIC_EVERY_SECONDS = 300


@shared_task(name="automation.email_spool", ignore_result=True, expires=SPOOL_EVERY_SECONDS * 2)
def email_spool() -> dict[str, int]:
    """Process inbound mail left in the spool (the database was down) and send pending acknowledgements."""
    from automation.email_in.processing import spool_process
    from automation.email_in.services import acks_send_pending

    result = spool_process()
    acks = acks_send_pending()
    return {"processed": result.processed, "deferred": result.deferred, "failed": result.failed, "acks": acks}


@shared_task(name="automation.notifications_tick", ignore_result=True, expires=NOTIFY_EVERY_SECONDS * 2)
def notifications_tick() -> dict[str, int]:
    """Notify approvals requested and tasks due soon; send the immediate notification emails."""
    from automation.notifications.services import notification_emails_send
    from automation.notifications.sources import approvals_scan, due_soon_scan

    approvals = approvals_scan()
    due = due_soon_scan()
    emails = notification_emails_send()
    return {"approvals": approvals, "due_soon": due, "emails": emails}


@shared_task(name="automation.notifications_periodic", ignore_result=True, expires=PERIODIC_EVERY_SECONDS)
def notifications_periodic() -> dict[str, int]:
    """Send the daily digests and the weekly summaries that are due."""
    from automation.notifications.services import digests_send
    from automation.notifications.sources import weekly_summaries_send

    digests = digests_send()
    weekly = weekly_summaries_send()
    return {"digests": digests.sent, "weekly_summaries": weekly}


register_system_job(SystemJob(
    name="automation.email_spool", task="automation.email_spool", every_seconds=SPOOL_EVERY_SECONDS,
    expires_seconds=SPOOL_EVERY_SECONDS * 2,
    description="Process inbound mail waiting in the spool; retry acknowledgements.",
))
register_system_job(SystemJob(
    name="automation.notifications_tick", task="automation.notifications_tick", every_seconds=NOTIFY_EVERY_SECONDS,
    expires_seconds=NOTIFY_EVERY_SECONDS * 2,
    description="Notify requested approvals and tasks due soon; send notification emails.",
))
register_system_job(SystemJob(
    name="automation.notifications_periodic", task="automation.notifications_periodic",
    every_seconds=PERIODIC_EVERY_SECONDS, expires_seconds=PERIODIC_EVERY_SECONDS,
    description="Send due daily digests and weekly summaries.",
))
