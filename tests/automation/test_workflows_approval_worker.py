"""Real workers: an approval wait survives a worker restart; the decision resumes the task on another worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from accounts.models import ApprovalRequest
from accounts.services.approvals import approval_decide
from automation.models import Task, TaskRun, TaskStatus
from automation.services.tasks import task_create
from tests.support.worker import Worker, purge_broker

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def wait_for(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(task: Task) -> str:
    return Task.objects.for_org(task.organization).values_list("status", flat=True).get(pk=task.pk)


@pytest.mark.django_db(transaction=True)
def test_worker_restart_during_approval_wait(tenant_a):
    """A task parked on an approval stays parked while its worker is SIGKILLed; approving it later resumes it
    on a fresh worker, which completes it once."""
    purge_broker()
    first = Worker("approval-first", concurrency=1).start()
    try:
        task = task_create(
            organization=tenant_a.organization, actor=tenant_a.member, title="Pay the supplier", source="api",
            executor="approval", parameters={"title": "Pay ACME 120 EUR", "arguments": {"amount": "120.00"},
                                             "financial": True, "cost_estimate": "120", "currency": "EUR"},
        )
        wait_for(lambda: status_of(task) == TaskStatus.BLOCKED, what="the task to park on its approval")
    finally:
        first.kill()
    approval = ApprovalRequest.objects.for_org(tenant_a.organization).get(subject_id=str(task.pk))
    assert status_of(task) == TaskStatus.BLOCKED  # nothing about the wait lived in the killed worker

    second = Worker("approval-second", concurrency=1).start()
    try:
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True, reason="invoice checked")
        wait_for(lambda: status_of(task) == TaskStatus.COMPLETED, what="the approved task to complete")
    finally:
        second.stop()
    task.refresh_from_db()
    assert task.result["decided_by"] == tenant_a.manager.email
    runs = list(TaskRun.objects.for_org(tenant_a.organization).filter(task=task).order_by("attempt"))
    assert [r.status for r in runs] == ["parked", "completed"]
    assert runs[1].worker != first.hostname
    approval.refresh_from_db()
    assert approval.notified_at is not None
    assert ApprovalRequest.objects.for_org(tenant_a.organization).count() == 1
