"""Celery interface of the agents app: each task takes ids, loads fresh rows, calls one service."""

from __future__ import annotations

from celery import shared_task

from accounts.tenancy import with_org_scope
from agents import conf
from automation.system_jobs import SystemJob, register_system_job


@shared_task(name="agents.handle_message", acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
@with_org_scope
def handle_message(*, organization_id: int, message_id: int) -> int:
    """Answer a user's message (a handled message is left alone, so a redelivery does nothing)."""
    from agents.models import Message
    from agents.services.chat import message_handle

    message = Message.objects.select_related("thread", "author", "organization").filter(pk=message_id).first()
    if message is None:
        return 0
    return len(message_handle(message=message))


@shared_task(name="agents.learn_from_message", acks_late=True, ignore_result=True, soft_time_limit=300,
             time_limit=330)
@with_org_scope
def learn_from_message(*, organization_id: int, message_id: int) -> int:
    """Learn business facts from a user's message; returns how many were stored."""
    from agents.models import Message
    from agents.services.learning import learn_from_message as learn

    message = Message.objects.select_related("thread", "author", "organization").filter(pk=message_id).first()
    if message is None:
        return 0
    learned = learn(message=message)
    return len(learned.created) + len(learned.reinforced)


@shared_task(name="agents.resume_stalled", ignore_result=True, expires=60)
def resume_stalled() -> int:
    """System job: resume AI requests left parked although every step has ended."""
    from agents.loop.wiring import requests_resume_stalled

    return requests_resume_stalled()


register_system_job(SystemJob(
    name="agents.resume_stalled", task="agents.resume_stalled", every_seconds=conf.stalled_sweep_seconds(),
    expires_seconds=max(conf.stalled_sweep_seconds() * 2, 10),
    description="Resume AI requests left parked although every one of their steps has ended.",
))
