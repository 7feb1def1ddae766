"""Payment budgets (per action, daily, monthly, alerts) and compensation in reverse order."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from accounts.services.approvals import approval_decide
from tools.models import BudgetAlert, ToolCall
from tools.registry import registry
from tools.services.budgets import payment_budget_set
from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.types import CompensationStatus, InvocationContext, Outcome

pytestmark = pytest.mark.django_db


def _pay(tenant, amount, key, *, group="", currency="usd"):
    args = {"amount": amount, "currency": currency, "vendor": "Paper Co"}
    ctx = InvocationContext(group=group)
    asked = invoke_tool(organization=tenant.organization, actor=tenant.admin, tool_name="t_pay", arguments=args,
                        idempotency_key=key, context=ctx)
    if asked.outcome != Outcome.NEEDS_APPROVAL:
        return asked
    approval_decide(approval=asked.approval, actor=tenant.owner, approve=True)
    return invoke_tool(organization=tenant.organization, actor=tenant.admin, tool_name="t_pay", arguments=args,
                       idempotency_key=key, context=ctx)


def test_no_budget_no_payment(tenant_a, fake_tools, journal):
    """Without a budget for the currency a payment is refused before anyone is asked."""
    result = _pay(tenant_a, 100, "p1", currency="eur")
    assert result.code == "over_budget"
    assert "no payment budget" in result.reason
    assert journal.effects == []


def test_daily_budget_alerts_at_80_and_stops_at_100(tenant_a, fake_tools, journal):
    """Spending reaches 80% (one alert), then 100% (another); the next payment is refused."""
    payment_budget_set(organization=tenant_a.organization, actor=tenant_a.owner, currency="USD",
                       per_action_limit=None, daily_limit=10_000, monthly_limit=None)
    assert _pay(tenant_a, 7_000, "p1").ok
    assert not BudgetAlert.objects.for_org(tenant_a.organization).exists()
    assert _pay(tenant_a, 1_000, "p2").ok
    alerts = BudgetAlert.objects.for_org(tenant_a.organization)
    assert list(alerts.values_list("window", "level")) == [("daily", 80)]
    assert _pay(tenant_a, 500, "p3").ok  # still 80%: no second alert
    assert alerts.count() == 1
    assert _pay(tenant_a, 1_500, "p4").ok  # exactly 100%
    assert set(alerts.values_list("level", flat=True)) == {80, 100}
    refused = _pay(tenant_a, 1, "p5")
    assert refused.code == "over_budget"
    assert "daily budget" in refused.reason
    assert len(journal.effects) == 4
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="budget.alert").count() == 2


def test_monthly_budget_and_per_action_limit(tenant_a, fake_tools, journal):
    """A payment over the per-action limit, or past the monthly limit, is refused."""
    payment_budget_set(organization=tenant_a.organization, actor=tenant_a.owner, currency="USD",
                       per_action_limit=5_000, daily_limit=None, monthly_limit=8_000)
    assert _pay(tenant_a, 5_001, "a").code == "over_budget"
    assert _pay(tenant_a, 5_000, "b").ok
    refused = _pay(tenant_a, 3_001, "c")
    assert refused.code == "over_budget"
    assert "monthly" in refused.reason
    assert len(journal.effects) == 1


def test_refund_returns_budget(tenant_a, fake_tools, journal):
    """A compensated (refunded) payment no longer counts against the budget."""
    payment_budget_set(organization=tenant_a.organization, actor=tenant_a.owner, currency="USD",
                       per_action_limit=None, daily_limit=5_000, monthly_limit=None)
    assert _pay(tenant_a, 5_000, "a", group="g").ok
    assert _pay(tenant_a, 1, "b").code == "over_budget"
    compensate_group(organization=tenant_a.organization, group="g", actor=tenant_a.owner, reason="cancelled")
    assert _pay(tenant_a, 1, "c").ok


def test_retried_payment_after_budget_is_full_replays(tenant_a, fake_tools, usd_budget, journal):
    """Retrying a completed payment with its key returns the payment, not an over-budget refusal or a second charge."""
    payment_budget_set(organization=tenant_a.organization, actor=tenant_a.owner, currency="USD",
                       per_action_limit=None, daily_limit=1_000, monthly_limit=None)
    first = _pay(tenant_a, 1_000, "once")
    again = _pay(tenant_a, 1_000, "once")
    assert first.ok
    assert again.replayed
    assert again.ok
    assert len(journal.effects) == 1


def test_compensation_runs_in_reverse_order_and_is_recorded(tenant_a, fake_tools, usd_budget, journal):
    """Rolling back a group undoes its successful calls newest first, records each, and runs once."""
    group = "run-42"
    ctx = InvocationContext(group=group, source="workflow")
    for name in ("first", "second"):
        assert invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_write",
                           arguments={"name": name}, context=ctx).ok
    paid = _pay(tenant_a, 300, "pay-in-run", group=group)
    assert paid.ok
    assert invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_echo",
                       arguments={"text": "x"}, context=ctx).ok
    journal.fail_next = True
    assert invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_write",
                       arguments={"name": "failed"}, context=ctx).outcome == Outcome.FAILED

    report = compensate_group(organization=tenant_a.organization, group=group, actor=tenant_a.owner,
                              reason="workflow rolled back")
    assert journal.undone == [paid.result["reference"], "second", "first"]
    assert len(report.compensated) == 3
    assert len(report.not_compensable) == 1  # the echo
    calls = ToolCall.objects.for_org(tenant_a.organization).filter(group=group)
    assert calls.filter(compensation_status=CompensationStatus.COMPENSATED).count() == 3
    assert calls.get(outcome=Outcome.FAILED).compensation_status == CompensationStatus.NONE
    events = AuditEvent.objects.for_org(tenant_a.organization).filter(action="tool.compensation.compensated")
    assert events.count() == 3
    again = compensate_group(organization=tenant_a.organization, group=group, actor=tenant_a.owner)
    assert again.compensated == []
    assert len(journal.undone) == 3


def test_a_failing_compensation_does_not_stop_the_rest(tenant_a, fake_tools, journal):
    """When one undo fails it is recorded as failed and the earlier calls are still undone."""
    ctx = InvocationContext(group="g2")
    for name in ("a", "boom", "c"):
        invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                    arguments={"name": name}, context=ctx)
    tool = registry.get("t_write")
    original = tool.compensation

    def flaky(c, args, result):
        if result["written"] == "boom":
            raise RuntimeError("provider down")
        return original(c, args, result)

    object.__setattr__(tool, "compensation", flaky)
    try:
        report = compensate_group(organization=tenant_a.organization, group="g2", actor=tenant_a.owner)
    finally:
        object.__setattr__(tool, "compensation", original)
    assert journal.undone == ["c", "a"]
    assert len(report.failed) == 1
    failed = ToolCall.objects.for_org(tenant_a.organization).get(pk=report.failed[0])
    assert failed.compensation_status == CompensationStatus.FAILED
    assert "provider down" in failed.compensation_result["error"]
