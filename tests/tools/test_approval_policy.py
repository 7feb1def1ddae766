"""Approval policy: the matrix of role × tool × amount, and tampering with approvals."""

from __future__ import annotations

import pytest

from accounts.errors import Forbidden, NotFound
from accounts.models import ApprovalRequest, ApprovalStatus
from accounts.roles import Role
from accounts.services.approvals import approval_decide
from tools.models import ToolCall
from tools.services.invocation import invoke_tool
from tools.services.settings import internal_domain_add, tool_setting_update
from tools.types import Outcome

pytestmark = pytest.mark.django_db

OK, ASK, NO, BUDGET = Outcome.SUCCEEDED, Outcome.NEEDS_APPROVAL, "forbidden", "over_budget"

CASES = {
    # (tool, arguments): {role: expected}
    ("t_echo", (("text", "hi"),)): {Role.VIEWER: OK, Role.MEMBER: OK, Role.MANAGER: OK, Role.ADMIN: OK, Role.OWNER: OK},
    ("t_write", (("name", "n"),)): {Role.VIEWER: NO, Role.MEMBER: OK, Role.MANAGER: OK, Role.ADMIN: OK, Role.OWNER: OK},
    ("t_mail", (("to", ("dana@acme.test",)),)): {
        Role.VIEWER: NO, Role.MEMBER: OK, Role.MANAGER: OK, Role.ADMIN: OK, Role.OWNER: OK},
    ("t_mail", (("to", ("dana@acme.test", "x@elsewhere.example")),)): {
        Role.VIEWER: NO, Role.MEMBER: ASK, Role.MANAGER: ASK, Role.ADMIN: ASK, Role.OWNER: ASK},
    ("t_expense", (("amount", 50000),)): {
        Role.VIEWER: NO, Role.MEMBER: OK, Role.MANAGER: OK, Role.ADMIN: OK, Role.OWNER: OK},
    ("t_expense", (("amount", 50001),)): {
        Role.VIEWER: NO, Role.MEMBER: ASK, Role.MANAGER: ASK, Role.ADMIN: ASK, Role.OWNER: ASK},
    ("t_pay", (("amount", 500), ("currency", "usd"), ("vendor", "Acme Paper"))): {
        Role.VIEWER: NO, Role.MEMBER: NO, Role.MANAGER: NO, Role.ADMIN: ASK, Role.OWNER: ASK},
    ("t_pay", (("amount", 100_001), ("currency", "usd"), ("vendor", "Acme Paper"))): {
        Role.VIEWER: NO, Role.MEMBER: NO, Role.MANAGER: NO, Role.ADMIN: BUDGET, Role.OWNER: BUDGET},
}


def _freeze(value):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value}


@pytest.mark.parametrize(("tool", "args", "role", "expected"), [
    (tool, args, role, expected) for (tool, args), row in CASES.items() for role, expected in row.items()
])
def test_policy_matrix(tenant_a, fake_tools, usd_budget, journal, tool, args, role, expected):
    """Each role gets the outcome the policy table gives for each tool and amount; nothing waits without a record."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.users[role], tool_name=tool,
                         arguments=_freeze(args))
    if expected in (OK, ASK):
        assert result.outcome == expected, result.reason
    else:
        assert result.outcome == Outcome.REFUSED
        assert result.code == expected, result.reason
    if expected == ASK:
        assert result.approval is not None
        assert result.approval.status == ApprovalStatus.PENDING
        assert result.approval.arguments["tool"] == tool
    if expected != OK:
        assert journal.effects == []


def test_org_override_by_role(tenant_a, fake_tools, journal):
    """An organization can ask for approval below a role: a member waits, a manager does not."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_write",
                        approval={"below_role": "manager"})
    member = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                         arguments={"name": "m"})
    manager = invoke_tool(organization=tenant_a.organization, actor=tenant_a.manager, tool_name="t_write",
                          arguments={"name": "m"})
    assert member.outcome == Outcome.NEEDS_APPROVAL
    assert manager.ok


def test_org_cannot_waive_approval_for_money(tenant_a, fake_tools, usd_budget):
    """Turning every approval condition off still leaves a payment waiting for a person."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_pay",
                        approval={"always": False, "amount_over": None})
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_pay",
                         arguments={"amount": 10, "currency": "usd", "vendor": "v"})
    assert result.outcome == Outcome.NEEDS_APPROVAL


def test_listed_internal_domains_decide_outside(tenant_a, fake_tools):
    """With internal domains listed, another domain is outside even if members use it."""
    internal_domain_add(organization=tenant_a.organization, actor=tenant_a.admin, domain="acme.example")
    inside = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                         arguments={"to": ["a@acme.example", "b@eu.acme.example"]})
    outside = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                          arguments={"to": ["dana@acme.test"]})
    assert inside.ok
    assert outside.outcome == Outcome.NEEDS_APPROVAL


# --- the approval round trip ------------------------------------------------------------------


def _ask_external_mail(tenant, actor, key="mail-1", to=None):
    return invoke_tool(organization=tenant.organization, actor=actor, tool_name="t_mail",
                       arguments={"to": to or ["x@elsewhere.example"]}, idempotency_key=key)


def test_approved_call_runs_once_on_retry_with_same_key(tenant_a, fake_tools, journal,
                                                        django_capture_on_commit_callbacks):
    """After a manager approves, the same invocation retried runs once; a further retry replays it."""
    asked = _ask_external_mail(tenant_a, tenant_a.member)
    assert asked.outcome == Outcome.NEEDS_APPROVAL
    again = _ask_external_mail(tenant_a, tenant_a.member)
    assert again.outcome == Outcome.NEEDS_APPROVAL
    assert again.approval.pk == asked.approval.pk  # no second request while one waits
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    done = _ask_external_mail(tenant_a, tenant_a.member)
    assert done.ok
    assert done.tool_call.approval_id == asked.approval.pk
    replay = _ask_external_mail(tenant_a, tenant_a.member)
    assert replay.replayed
    assert len(journal.effects) == 1


def test_arguments_changed_after_approval_void_it(tenant_a, fake_tools, journal):
    """Changing the recipients after approval voids the approval and sends nothing."""
    asked = _ask_external_mail(tenant_a, tenant_a.member)
    approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    tampered = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                           arguments={"to": ["attacker@evil.example"]}, idempotency_key="mail-1",
                           approval=asked.approval.pk)
    assert tampered.outcome == Outcome.REFUSED
    assert tampered.code == "approval_arguments_changed"
    asked.approval.refresh_from_db()
    assert asked.approval.status == ApprovalStatus.VOIDED
    original = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                           arguments={"to": ["x@elsewhere.example"]}, idempotency_key="mail-2",
                           approval=asked.approval.pk)
    assert original.outcome == Outcome.REFUSED  # a voided approval is spent
    assert journal.effects == []


def test_self_approval_does_not_count(tenant_a, fake_tools, journal):
    """A manager who asked and approved their own external mail still cannot send it."""
    asked = _ask_external_mail(tenant_a, tenant_a.manager)
    approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.manager, tool_name="t_mail",
                         arguments={"to": ["x@elsewhere.example"]}, idempotency_key="mail-1",
                         approval=asked.approval.pk)
    assert result.code == "approval_self"
    assert journal.effects == []


def test_payment_self_approval_refused_and_manager_cannot_approve(tenant_a, fake_tools, usd_budget, journal):
    """The admin who asked for a payment cannot approve it, nor can a manager; the owner can."""
    args = {"amount": 2500, "currency": "usd", "vendor": "Acme Paper"}
    asked = invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_pay", arguments=args,
                        idempotency_key="pay-1")
    with pytest.raises(Forbidden):
        approval_decide(approval=asked.approval, actor=tenant_a.admin, approve=True)
    with pytest.raises(Forbidden):
        approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    approval_decide(approval=asked.approval, actor=tenant_a.owner, approve=True)
    paid = invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_pay", arguments=args,
                       idempotency_key="pay-1")
    assert paid.ok
    assert [e[0] for e in journal.effects] == ["pay"]


def test_approver_from_another_org_is_not_found(tenants, fake_tools, journal):
    """An owner of another organization cannot decide, and the approval stays pending."""
    a, b = tenants
    asked = _ask_external_mail(a, a.member)
    with pytest.raises(NotFound):
        approval_decide(approval=asked.approval, actor=b.owner, approve=True)
    asked.approval.refresh_from_db()
    assert asked.approval.status == ApprovalStatus.PENDING


def test_approval_of_another_org_cannot_authorize(tenants, fake_tools, journal):
    """An approval granted in organization B does not authorize the same call in organization A."""
    a, b = tenants
    asked_b = _ask_external_mail(b, b.member)
    approval_decide(approval=asked_b.approval, actor=b.manager, approve=True)
    result = invoke_tool(organization=a.organization, actor=a.member, tool_name="t_mail",
                         arguments={"to": ["x@elsewhere.example"]}, approval=asked_b.approval)
    assert result.code == "approval_invalid"
    assert journal.effects == []


def test_someone_elses_approval_cannot_be_borrowed(tenant_a, fake_tools, journal):
    """A member cannot run a call with the approval another member obtained."""
    from tests.factories import MembershipFactory, UserFactory

    other = UserFactory(email="other@acme.test")
    MembershipFactory(organization=tenant_a.organization, user=other, role=Role.MEMBER)
    asked = _ask_external_mail(tenant_a, other)
    approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                         arguments={"to": ["x@elsewhere.example"]}, approval=asked.approval.pk)
    assert result.code == "approval_invalid"
    assert journal.effects == []


def test_an_approval_authorizes_one_call(tenant_a, fake_tools, journal):
    """Reusing an approval under a new idempotency key is refused: one approval, one effect."""
    asked = _ask_external_mail(tenant_a, tenant_a.member)
    approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    first = _ask_external_mail(tenant_a, tenant_a.member)
    assert first.ok
    second = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                         arguments={"to": ["x@elsewhere.example"]}, idempotency_key="mail-other",
                         approval=asked.approval.pk)
    assert second.code == "approval_used"
    assert len(journal.effects) == 1


def test_rejection_is_final_for_that_call(tenant_a, fake_tools, journal, django_capture_on_commit_callbacks):
    """A rejected call is marked rejected and a retry with the same key is refused with the reason."""
    asked = _ask_external_mail(tenant_a, tenant_a.member)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=False, reason="not to them")
    waiting = ToolCall.objects.for_org(tenant_a.organization).get(pk=asked.tool_call.pk)
    assert waiting.outcome == Outcome.REJECTED
    assert waiting.reason == "not to them"
    retry = _ask_external_mail(tenant_a, tenant_a.member)
    assert retry.code == "approval_rejected"
    assert "not to them" in retry.reason
    assert journal.effects == []


def test_pending_approval_does_not_authorize(tenant_a, fake_tools, journal):
    """Passing a still-pending approval keeps the call waiting."""
    asked = _ask_external_mail(tenant_a, tenant_a.member)
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_mail",
                         arguments={"to": ["x@elsewhere.example"]}, approval=asked.approval.pk)
    assert result.outcome == Outcome.NEEDS_APPROVAL
    assert ApprovalRequest.objects.for_org(tenant_a.organization).count() == 1
    assert journal.effects == []
