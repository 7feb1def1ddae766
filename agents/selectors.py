"""Reads of conversations and of the AI workforce's state."""

from __future__ import annotations

from agents.models import AgentWork, Message, Plan, Thread


def messages_after(*, thread: Thread, after: int = 0, limit: int = 200) -> list[Message]:
    """The thread's messages with an id above ``after``, oldest first (at most ``limit``)."""
    return list(Message.objects.for_org(thread.organization).filter(thread=thread, pk__gt=after)
                .order_by("id")[:limit])


def latest_thread(*, organization: object, user: object) -> Thread | None:
    return Thread.objects.for_org(organization).filter(user=user).order_by("-updated_at", "-id").first()


def work_of(*, organization: object, task_id: int) -> AgentWork | None:
    return AgentWork.objects.for_org(organization).filter(task_id=task_id).first()


def plans_for(*, organization: object, task_id: int) -> list[Plan]:
    return list(Plan.objects.for_org(organization).filter(task_id=task_id).order_by("version"))
