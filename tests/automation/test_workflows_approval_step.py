"""The approval executor: a task parks on an ApprovalRequest and the decision resumes or fails it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApprovalRequest, ApprovalStatus
from accounts.services.approvals import approval_decide, approval_notify, approvals_sweep
from automation.executors import approval as approval_executor
from automation.models import Task, TaskStatus
from automation.services.tasks import task_create, task_retry

ARGS = {"vendor": "Dell", "amount": "1800.00"}


def make_task(tenant, **parameters):
    params = {"title": "Buy laptops", "reason": "New hires", "arguments": ARGS, **parameters}
    return task_create(organization=tenant.organization, actor=tenant.member, title="Laptop purchase",
                       source="api", executor="approval", parameters=params)


def fresh(task):
    return Task.objects.for_org(task.organization).get(pk=task.pk)


def approval_of(task):
    return ApprovalRequest.objects.for_org(task.organization).filter(subject_id=str(task.pk)).latest("id")


def test_task_parks_then_approval_completes_it(tenant_a, engine, django_capture_on_commit_callbacks):
    """The task asks for approval and waits blocked; approving resumes it and it completes with the decision."""
    task = make_task(tenant_a, cost_estimate="1800", currency="EUR")
    engine.drain()
    task = fresh(task)
    assert task.status == TaskStatus.BLOCKED
    assert task.blocked_kind == "parked"
    approval = approval_of(task)
    assert task.blocked_reason == f"waiting for approval #{approval.pk}: Buy laptops"
    assert approval.kind == "task"
    assert approval.requested_by == tenant_a.member
    assert approval.arguments == ARGS
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True, reason="budgeted")
    engine.drain()
    task = fresh(task)
    assert task.status == TaskStatus.COMPLETED
    assert task.result["approval"] == approval.pk
    assert task.result["decided_by"] == tenant_a.manager.email
    assert ApprovalRequest.objects.for_org(tenant_a.organization).count() == 1


def test_rejection_fails_the_task_and_skips_what_follows(tenant_a, engine, django_capture_on_commit_callbacks):
    """Rejecting fails the task naming the approval and reason; a task depending on it is skipped."""
    task = make_task(tenant_a)
    after = task_create(organization=tenant_a.organization, actor=None, title="Order", source="api",
                        depends_on=[task])
    engine.drain()
    approval = approval_of(task)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=False, reason="too expensive")
    engine.drain()
    task = fresh(task)
    assert task.status == TaskStatus.FAILED
    assert task.failure_reason == f"approval #{approval.pk} rejected: too expensive"
    assert fresh(after).status == TaskStatus.SKIPPED


def test_expiry_fails_the_task(tenant_a, engine, django_capture_on_commit_callbacks):
    """An approval nobody decides in time expires through the sweep, and the task fails."""
    task = make_task(tenant_a, expires_in_hours=1)
    engine.drain()
    with django_capture_on_commit_callbacks(execute=True):
        assert approvals_sweep(now=timezone.now() + timedelta(hours=2)).expired == 1
    task = fresh(task)
    assert task.status == TaskStatus.FAILED
    assert "expired" in task.failure_reason


def test_retry_after_rejection_asks_again(tenant_a, engine, django_capture_on_commit_callbacks):
    """Retrying a task whose approval was rejected creates a new approval request and parks again."""
    task = make_task(tenant_a)
    engine.drain()
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval_of(task), actor=tenant_a.manager, approve=False, reason="not yet")
    task_retry(task=fresh(task), actor=tenant_a.member)
    engine.drain()
    assert fresh(task).status == TaskStatus.BLOCKED
    statuses = list(ApprovalRequest.objects.for_org(tenant_a.organization).order_by("id")
                    .values_list("status", flat=True))
    assert statuses == [ApprovalStatus.REJECTED, ApprovalStatus.PENDING]


def test_changed_arguments_after_approval_void_it_and_fail(tenant_a, engine, django_capture_on_commit_callbacks):
    """Arguments changed after approval: when the task resumes the approval is voided and the task fails."""
    task = make_task(tenant_a)
    engine.drain()
    approval = approval_of(task)
    Task.objects.for_org(tenant_a.organization).filter(pk=task.pk).update(
        parameters={"title": "Buy laptops", "arguments": {**ARGS, "amount": "18000.00"}}
    )
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
    engine.drain()
    task = fresh(task)
    assert task.status == TaskStatus.FAILED
    assert "arguments changed" in task.failure_reason
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.VOIDED


def test_decision_before_parking_is_not_lost(tenant_a, engine, monkeypatch):
    """A decision made while the task is still running (before it parks) is applied later by the sweep."""
    original = approval_executor.ApprovalExecutor.execute
    decided: list[int] = []

    def decide_meanwhile(self, context):
        result = original(self, context)
        approval = approval_of(context.task)
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
        # The on-commit handler runs now, elsewhere, while this worker still holds the task.
        decided.append(approval_notify(approval_id=approval.pk))
        return result

    monkeypatch.setattr(approval_executor.ApprovalExecutor, "execute", decide_meanwhile)
    task = make_task(tenant_a)
    engine.drain()
    assert decided == [False]
    assert fresh(task).status == TaskStatus.BLOCKED
    monkeypatch.setattr(approval_executor.ApprovalExecutor, "execute", original)
    result = approvals_sweep(now=timezone.now() + timedelta(minutes=1))
    assert result.renotified == 1
    engine.drain()
    assert fresh(task).status == TaskStatus.COMPLETED
    assert approval_of(task).notified_at is not None


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"arguments": [1, 2]}, "parameters.arguments"),
        ({"cost_estimate": "lots", "currency": "EUR"}, "parameters.cost_estimate"),
        ({"cost_estimate": "10"}, "parameters.currency"),
        ({"required_scope": "root"}, "parameters.required_scope"),
        ({"expires_in_hours": 0}, "parameters.expires_in_hours"),
    ],
)
def test_bad_approval_parameters_refused(tenant_a, parameters, field):
    """Bad approval step parameters are refused at task creation, naming the parameter."""
    from accounts.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        make_task(tenant_a, **parameters)
    assert caught.value.field == field
