"""Helpers of the AI workforce tests: run the engine in this process, decide approvals, read what happened."""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from django.utils import timezone

from accounts.models import ApprovalRequest, ApprovalStatus, User
from accounts.services.approvals import approval_decide
from agents.models import AgentWork, Message, Plan
from automation.models import Task, TaskEvent, TaskStatus
from automation.services import runner
from tools.models import InternalDomain

ONBOARD = "Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana"


@pytest.fixture
def inline_engine(monkeypatch, settings):
    """No Celery message leaves this process: the test drives the engine with :func:`drain`."""
    from agents.services import conversations
    from automation.services import dispatch

    monkeypatch.setattr(dispatch, "publish_run", lambda **kwargs: None)
    monkeypatch.setattr(conversations, "_enqueue_handling", lambda organization_id, message_id: None)
    settings.AUTOMATION_RETRY_BASE_SECONDS = 0.05
    settings.AUTOMATION_RETRY_CAP_SECONDS = 0.1


def demo_domains(organization) -> None:
    """The scripted scenarios write to demo.staffer.local addresses: make them internal, as in the demo."""
    for domain in ("demo.staffer.local", f"{organization.slug}.test"):
        InternalDomain.objects.for_org(organization).get_or_create(organization=organization, domain=domain)


def drain(organization, *, rounds: int = 100) -> int:
    """Run queued tasks of ``organization`` in this process until none is due; return how many ran."""
    ran = 0
    for _ in range(rounds):
        due = (Task.objects.for_org(organization).filter(status=TaskStatus.QUEUED)
               .exclude(next_attempt_at__gt=timezone.now()).order_by("pk").first())
        if due is None:
            later = Task.objects.for_org(organization).filter(status=TaskStatus.QUEUED).order_by(
                "next_attempt_at").first()
            if later is None or later.next_attempt_at is None:
                return ran
            time.sleep(max(0.0, (later.next_attempt_at - timezone.now()).total_seconds()) + 0.01)
            continue
        runner.process(organization_id=organization.pk, task_id=due.pk, worker="test-inline")
        ran += 1
    raise AssertionError(f"the engine still had work after {rounds} rounds")


def decide(approval: ApprovalRequest, user: User, *, approve: bool = True, reason: str = "") -> ApprovalRequest:
    approval = ApprovalRequest.objects.for_org(approval.organization).get(pk=approval.pk)
    return approval_decide(approval=approval, actor=user, approve=approve,
                           reason=reason or ("" if approve else "not this way"))


def pending_approvals(organization, kind: str | None = None) -> list[ApprovalRequest]:
    rows = ApprovalRequest.objects.for_org(organization).filter(status=ApprovalStatus.PENDING).order_by("id")
    return list(rows.filter(kind=kind) if kind else rows)


def events(task: Task, prefix: str = "agent.") -> list[TaskEvent]:
    return list(TaskEvent.objects.for_org(task.organization).filter(task=task, type__startswith=prefix)
                .order_by("sequence"))


def event_types(tasks: Iterable[Task], prefix: str = "agent.") -> list[str]:
    found = []
    for task in tasks:
        found += [e.type for e in events(task, prefix)]
    return found


def thread_roles(thread) -> list[str]:
    return list(Message.objects.for_org(thread.organization).filter(thread=thread).order_by("id")
                .values_list("role", flat=True))


def steps_of(root: Task) -> dict[str, Task]:
    works = AgentWork.objects.for_org(root.organization).filter(root=root, kind="step").select_related("task")
    return {w.step_id: Task.objects.for_org(root.organization).get(pk=w.task_id) for w in works}


def latest_plan(root: Task) -> Plan | None:
    return Plan.objects.for_org(root.organization).filter(task=root).order_by("-version").first()


def fresh(task: Task) -> Task:
    return Task.objects.for_org(task.organization).get(pk=task.pk)
