"""Approval requests: who may decide, tampering, expiry, audit, decision handlers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.approvals import register_approval_handler, unregister_approval_handler
from accounts.errors import Conflict, Forbidden, InvalidInput, NotFound
from accounts.models import ApprovalRequest, ApprovalStatus, AuditEvent
from accounts.roles import Scope
from accounts.services.approvals import (
    ApprovalArgumentsChanged,
    ApprovalNotUsable,
    approval_check_arguments,
    approval_decide,
    approval_notify,
    approval_request_create,
    approval_require_approved,
    approvals_sweep,
    arguments_hash,
)


def make(tenant, **kwargs):
    defaults = {
        "organization": tenant.organization,
        "kind": "tool_call",
        "title": "Pay invoice 42",
        "reason": "Supplier due date",
        "requested_by": tenant.member,
        "arguments": {"amount": "120.00", "to": "ACME Supplies", "items": [1, 2]},
    }
    defaults.update(kwargs)
    return approval_request_create(**defaults)


def audit_actions(approval):
    return list(
        AuditEvent.objects.for_org(approval.organization)
        .filter(target_type="accounts.approvalrequest", target_id=str(approval.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_request_records_hash_and_is_audited(tenant_a):
    """A new request stores the arguments' SHA-256 (canonical: key order does not matter) and an audit event."""
    approval = make(tenant_a, arguments={"b": 1, "a": [1, {"y": 2, "x": Decimal("1.50")}]})
    assert approval.status == ApprovalStatus.PENDING
    assert approval.arguments_hash == arguments_hash({"a": [1, {"x": "1.50", "y": 2}], "b": 1})
    assert len(approval.arguments_hash) == 64
    assert approval.expires_at > timezone.now() + timedelta(days=2)
    assert audit_actions(approval) == ["approval.requested"]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("title", {"title": "  "}),
        ("kind", {"kind": "Not A Kind!"}),
        ("required_scope", {"required_scope": "nope:never"}),
        ("cost_estimate", {"cost_estimate": "-5", "currency": "EUR"}),
        ("cost_estimate", {"cost_estimate": "abc", "currency": "EUR"}),
        ("currency", {"cost_estimate": "5", "currency": "euro"}),
        ("currency", {"cost_estimate": "5"}),
        ("expires_at", {"expires_at": timezone.now() - timedelta(minutes=1)}),
        ("arguments", {"arguments": {"x": object()}}),
    ],
)
def test_bad_request_input_is_named(tenant_a, field, kwargs):
    """Invalid input to a request is refused naming the field, and nothing is stored."""
    with pytest.raises(InvalidInput) as caught:
        make(tenant_a, **kwargs)
    assert caught.value.field == field
    assert not ApprovalRequest.objects.for_org(tenant_a.organization).exists()


def test_requester_from_other_org_refused(tenants):
    """A request cannot name a requester who is not a member of the organization."""
    a, b = tenants
    with pytest.raises(InvalidInput):
        make(a, requested_by=b.member)


def test_manager_approves_and_it_is_audited(tenant_a):
    """A manager (approvals:decide) approves; decided_by, time and reason are kept and audited."""
    approval = make(tenant_a)
    approval_decide(approval=approval, actor=tenant_a.manager, approve=True, reason="ok within budget")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert approval.decided_by == tenant_a.manager
    assert approval.decision_reason == "ok within budget"
    assert approval.decided_at is not None
    assert audit_actions(approval) == ["approval.requested", "approval.approved"]


def test_reject_needs_reason(tenant_a):
    """A rejection without a reason is refused; the approval stays pending."""
    approval = make(tenant_a)
    with pytest.raises(InvalidInput) as caught:
        approval_decide(approval=approval, actor=tenant_a.manager, approve=False, reason=" ")
    assert caught.value.field == "reason"
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_without_decide_scope_refused_and_audited(tenant_a, role):
    """A member or viewer (no approvals:decide) cannot decide; the attempt is audited, nothing changes."""
    approval = make(tenant_a, requested_by=tenant_a.admin)
    with pytest.raises(Forbidden):
        approval_decide(approval=approval, actor=getattr(tenant_a, role), approve=True)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert audit_actions(approval) == ["approval.requested", "approval.decision_refused"]


def test_cross_org_approver_gets_not_found(tenants):
    """An owner of another organization cannot decide (same answer as a missing approval), nothing is written."""
    a, b = tenants
    approval = make(a)
    with pytest.raises(NotFound):
        approval_decide(approval=approval, actor=b.owner, approve=True)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert audit_actions(approval) == ["approval.requested"]


def test_financial_self_approval_refused(tenant_a):
    """The requester of a financial action cannot approve it, even as owner; another approver can."""
    approval = make(tenant_a, requested_by=tenant_a.owner, financial=True, cost_estimate="120", currency="EUR")
    with pytest.raises(Forbidden, match="someone else"):
        approval_decide(approval=approval, actor=tenant_a.owner, approve=True)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    approval_decide(approval=approval, actor=tenant_a.admin, approve=True)
    assert approval.status == ApprovalStatus.APPROVED


def test_non_financial_self_approval_allowed(tenant_a):
    """For a non-financial request a manager may approve their own request."""
    approval = make(tenant_a, requested_by=tenant_a.manager)
    approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
    assert approval.status == ApprovalStatus.APPROVED


def test_required_scope_is_enforced(tenant_a):
    """A request that needs tools:financial cannot be decided by a manager, only by an admin."""
    approval = make(tenant_a, required_scope=Scope.TOOLS_FINANCIAL)
    with pytest.raises(Forbidden, match="tools:financial"):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
    approval_decide(approval=approval, actor=tenant_a.admin, approve=True)
    assert approval.status == ApprovalStatus.APPROVED


def test_api_key_scopes_narrow_the_decider(tenant_a):
    """Scopes passed by the caller (an API key's) narrow the decider's role scopes."""
    approval = make(tenant_a)
    with pytest.raises(Forbidden):
        approval_decide(approval=approval, actor=tenant_a.owner, approve=True, scopes=frozenset({Scope.TASKS_READ}))


def test_no_second_decision(tenant_a):
    """A decided approval cannot be decided again, either way."""
    approval = make(tenant_a)
    approval_decide(approval=approval, actor=tenant_a.manager, approve=False, reason="not now")
    for approve in (True, False):
        with pytest.raises(Conflict, match="already rejected"):
            approval_decide(approval=approval, actor=tenant_a.admin, approve=approve, reason="again")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert approval.decided_by == tenant_a.manager


def test_expired_decision_refused_and_marked(tenant_a):
    """Deciding after the expiry is refused, and the approval is marked expired."""
    now = timezone.now()
    approval = make(tenant_a, expires_at=now + timedelta(hours=1), now=now)
    with pytest.raises(Conflict, match="expired"):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True, now=now + timedelta(hours=2))
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXPIRED
    assert approval.decided_by is None
    assert "approval.expired" in audit_actions(approval)


def test_sweep_expires_overdue_only(tenants):
    """The sweep expires overdue pending approvals in every organization and leaves the rest."""
    a, b = tenants
    now = timezone.now()
    overdue_a = make(a, expires_at=now + timedelta(minutes=5), now=now)
    overdue_b = make(b, requested_by=b.member, expires_at=now + timedelta(minutes=5), now=now)
    fresh = make(a, expires_at=now + timedelta(days=1), now=now)
    decided = make(a, expires_at=now + timedelta(minutes=5), now=now)
    approval_decide(approval=decided, actor=a.manager, approve=True, now=now)
    result = approvals_sweep(now=now + timedelta(minutes=10))
    assert result.expired == 2
    statuses = {x.pk: x.status for x in ApprovalRequest.objects.dangerously_unscoped().all()}
    assert statuses[overdue_a.pk] == statuses[overdue_b.pk] == ApprovalStatus.EXPIRED
    assert statuses[fresh.pk] == ApprovalStatus.PENDING
    assert statuses[decided.pk] == ApprovalStatus.APPROVED


def test_tampered_arguments_void_an_approved_request(tenant_a):
    """Arguments changed after approval are refused and void the approval (audited)."""
    approval = make(tenant_a)
    approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
    same = {"items": [1, 2], "to": "ACME Supplies", "amount": "120.00"}
    approval_require_approved(approval=approval, arguments=same)
    with pytest.raises(ApprovalArgumentsChanged):
        approval_check_arguments(approval=approval, arguments={**same, "amount": "1200.00"})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.VOIDED
    assert audit_actions(approval)[-1] == "approval.voided"
    with pytest.raises(ApprovalNotUsable):
        approval_require_approved(approval=approval, arguments=approval.arguments)


def test_tampering_a_pending_request_voids_it(tenant_a):
    """Changed arguments void a pending request too: nobody can approve it afterwards."""
    approval = make(tenant_a)
    with pytest.raises(ApprovalArgumentsChanged):
        approval_check_arguments(approval=approval, arguments={"amount": "1.00"})
    with pytest.raises(Conflict, match="already voided"):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True)


def test_database_refuses_leaving_a_final_state(tenant_a):
    """The database itself refuses rejected -> approved and a changed hash after a decision."""
    approval = make(tenant_a)
    approval_decide(approval=approval, actor=tenant_a.manager, approve=False, reason="no")
    qs = ApprovalRequest.objects.for_org(tenant_a.organization).filter(pk=approval.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        qs.update(status=ApprovalStatus.APPROVED)
    with pytest.raises(IntegrityError), transaction.atomic():
        qs.update(arguments_hash="0" * 64)
    assert connection.is_usable()


def test_handlers_run_after_commit_and_once(tenant_a, django_capture_on_commit_callbacks):
    """The handler for the kind runs after the decision commits, sees the final status, and is stamped done."""
    seen: list[tuple[int, str]] = []

    def handler(approval):
        seen.append((approval.pk, approval.status))

    register_approval_handler("tool_call", handler)
    try:
        approval = make(tenant_a)
        with django_capture_on_commit_callbacks(execute=True):
            approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
        assert seen == [(approval.pk, ApprovalStatus.APPROVED)]
        approval.refresh_from_db()
        assert approval.notified_at is not None
        assert approval_notify(approval_id=approval.pk) is True
        assert len(seen) == 1
    finally:
        unregister_approval_handler("tool_call", handler)


def test_failed_handler_is_retried_by_sweep(tenant_a, django_capture_on_commit_callbacks):
    """A handler that fails leaves the approval un-notified; the sweep re-runs it later."""
    calls: list[str] = []

    def flaky(approval):
        calls.append(approval.status)
        if len(calls) == 1:
            raise RuntimeError("worker went away")

    register_approval_handler("plan", flaky)
    try:
        approval = make(tenant_a, kind="plan")
        with django_capture_on_commit_callbacks(execute=True):
            approval_decide(approval=approval, actor=tenant_a.manager, approve=False, reason="rework it")
        approval.refresh_from_db()
        assert approval.notified_at is None
        result = approvals_sweep(now=timezone.now() + timedelta(minutes=5))
        assert result.renotified == 1
        approval.refresh_from_db()
        assert approval.notified_at is not None
        assert calls == [ApprovalStatus.REJECTED, ApprovalStatus.REJECTED]
    finally:
        unregister_approval_handler("plan", flaky)
