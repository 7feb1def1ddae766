"""Threads, requests and their events as the AI workforce writes them, for the chat tests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client

from accounts.models import User
from agents.chat_stream import flush_stream
from agents.loop.manager import work_for_request
from agents.models import AgentWork, Message, Thread, WorkKind
from agents.services.activity import activity_record, message_add
from agents.services.conversations import thread_create
from automation.models import Task, TaskEvent
from automation.services.tasks import task_create

PLAN = [
    {"id": "draft_offer_letter", "title": "Write Maria Lopez's offer letter (.docx)", "depends_on": [],
     "role": "employee", "tools": ["documents_generate"], "estimate_minutes": 5, "needs_approval": True},
    {"id": "send_welcome_email", "title": "Send Maria the welcome email", "depends_on": ["draft_offer_letter"],
     "role": "employee", "tools": ["email_send"], "estimate_minutes": 2, "needs_approval": False},
    {"id": "schedule_first_day", "title": "Schedule Maria's first day", "depends_on": ["draft_offer_letter"],
     "role": "employee", "tools": ["calendar_invite"], "estimate_minutes": 3, "needs_approval": False},
]


def make_thread(user: User, organization: Any, title: str = "Onboarding Maria") -> Thread:
    return thread_create(organization=organization, user=user, title=title)


def say(thread: Thread, text: str, *, role: str = "user", task: Task | None = None, **metadata: Any) -> Message:
    author = thread.user if role == "user" else None
    return message_add(thread=thread, role=role, content=text, task=task, author=author, metadata=metadata)


def make_request(thread: Thread, title: str = "Onboard Maria Lopez") -> Task:
    """A request task the thread started (as the chat's complex-task handler makes it)."""
    task = task_create(organization=thread.organization, actor=thread.user, title=title, source="chat",
                       execution_type="semi_automated", executor="ai",
                       parameters={"request": title, "thread": thread.pk})
    work_for_request(task, requester=thread.user, thread=thread)
    return task


def make_step(root: Task, step_id: str, thread: Thread) -> Task:
    step = task_create(organization=root.organization, actor=thread.user, title=step_id, source="agent",
                       execution_type="manual", executor="ai", parameters={"mode": "step", "step": step_id},
                       parent=root, step_key=step_id, actor_label="agent:manager")
    AgentWork.objects.for_org(root.organization).create(organization=root.organization, task=step,
                                                        kind=WorkKind.STEP, root=root, thread=thread,
                                                        requester=thread.user, step_id=step_id)
    return step


def record(task: Task, type: str, *, role: str = "manager", text: str = "", thread: Thread | None = None,
           **payload: Any) -> TaskEvent:
    """An ``agent.<type>`` event of ``task`` (mirrored in ``thread`` when text is given), as the loop writes it."""
    return activity_record(task=task, type=type, role=role, text=text, payload=payload, thread=thread)


def session_headers(user: User) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]


def flushed() -> None:
    flush_stream(5.0)
