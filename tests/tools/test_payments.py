"""payments_create against a local Stripe stand-in: approval, budgets, idempotency, refund, transaction log."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from accounts.services.approvals import approval_decide
from tools.models import BudgetAlert, PaymentTransaction, ToolCall
from tools.services.budgets import payment_budget_set
from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.types import InvocationContext, Outcome

from .support.providers import STRIPE_KEY

pytestmark = pytest.mark.django_db

PAY = {"amount": 12_500, "currency": "usd", "purpose": "Laptop for Maria", "vendor": "Dell",
       "customer": "cus_acme", "payment_method": "pm_card_visa"}


@pytest.fixture
def budget(tenant_a):
    return payment_budget_set(organization=tenant_a.organization, actor=tenant_a.owner, currency="USD",
                              per_action_limit=50_000, daily_limit=100_000, monthly_limit=500_000)


def _pay(tenant, key, group="", **overrides):
    args = {**PAY, **overrides}
    return invoke_tool(organization=tenant.organization, actor=tenant.admin, tool_name="payments_create",
                       arguments=args, idempotency_key=key, context=InvocationContext(group=group))


def _approved_pay(tenant, key, group="", **overrides):
    asked = _pay(tenant, key, group, **overrides)
    assert asked.outcome == Outcome.NEEDS_APPROVAL, asked.reason
    approval_decide(approval=asked.approval, actor=tenant.owner, approve=True)
    return _pay(tenant, key, group, **overrides)


def test_payment_needs_approval_then_charges_once(tenant_a, credentials, budget):
    """A payment waits for approval; approved, it charges once however often it is retried; the log has it."""
    asked = _pay(tenant_a, "laptop-1")
    assert asked.outcome == Outcome.NEEDS_APPROVAL
    assert asked.approval.financial is True
    assert credentials.intents == {}
    approval_decide(approval=asked.approval, actor=tenant_a.owner, approve=True)
    results = [_pay(tenant_a, "laptop-1") for _ in range(3)]
    assert all(r.ok for r in results)
    assert len(credentials.intents) == 1
    intent = next(iter(credentials.intents.values()))
    assert intent["amount"] == 12_500
    assert intent["status"] == "succeeded"
    assert intent["metadata"]["purpose"] == "Laptop for Maria"
    stripe_requests = [r for r in credentials.requests if r["path"].startswith("/stripe")]
    assert len(stripe_requests) == 1
    assert stripe_requests[0]["headers"]["idempotency-key"].endswith("laptop-1")
    log = PaymentTransaction.objects.for_org(tenant_a.organization).get()
    assert (log.kind, log.amount, log.currency, log.vendor, log.purpose) == (
        "payment", 12_500, "USD", "Dell", "Laptop for Maria")
    assert log.approver == tenant_a.owner
    assert log.provider_reference == intent["id"]


def test_secret_key_never_recorded(tenant_a, credentials, budget):
    """The Stripe secret key appears in no ToolCall, transaction or audit event."""
    _approved_pay(tenant_a, "k")
    rows = [str(c.arguments) + str(c.result) + c.reason for c in ToolCall.objects.for_org(tenant_a.organization)]
    rows += [str(e.after) + str(e.before) for e in AuditEvent.objects.for_org(tenant_a.organization)]
    rows += [str(vars(t)) for t in PaymentTransaction.objects.for_org(tenant_a.organization)]
    assert not any(STRIPE_KEY in row for row in rows)


def test_over_budget_refused_before_approval_or_charge(tenant_a, credentials, budget):
    """Above the per-payment limit the call is refused: no approval is asked, nothing is charged."""
    result = _pay(tenant_a, "big", amount=50_001)
    assert result.code == "over_budget"
    assert result.approval is None
    assert credentials.intents == {}


def test_daily_budget_alert_and_hard_stop(tenant_a, credentials, budget):
    """Spending 80% of the day's budget raises an alert; a payment past 100% is refused."""
    assert _approved_pay(tenant_a, "a", amount=40_000).ok
    assert _approved_pay(tenant_a, "b", amount=40_000).ok
    assert BudgetAlert.objects.for_org(tenant_a.organization).filter(window="daily", level=80).exists()
    refused = _pay(tenant_a, "c", amount=20_001)
    assert refused.code == "over_budget"
    assert len(credentials.intents) == 2


def test_declined_card_is_refused_and_frees_the_budget(tenant_a, credentials, budget):
    """A card decline (402) is recorded as refused and does not count against the budget."""
    result = _approved_pay(tenant_a, "declined", amount=50_000, payment_method="pm_card_chargeDeclined")
    assert result.outcome == Outcome.REFUSED
    assert "declined" in result.reason
    assert _approved_pay(tenant_a, "next", amount=50_000).ok
    assert _approved_pay(tenant_a, "next2", amount=50_000).ok


def test_rollback_refunds_and_logs(tenant_a, credentials, budget):
    """Compensating the payment refunds it through Stripe and logs the refund."""
    paid = _approved_pay(tenant_a, "refund-me", group="purchase")
    report = compensate_group(organization=tenant_a.organization, group="purchase", actor=tenant_a.owner)
    assert report.compensated == [paid.tool_call.pk]
    assert len(credentials.refunds) == 1
    kinds = list(PaymentTransaction.objects.for_org(tenant_a.organization).order_by("id").values_list("kind",
                                                                                                      flat=True))
    assert kinds == ["payment", "refund"]
    again = compensate_group(organization=tenant_a.organization, group="purchase", actor=tenant_a.owner)
    assert again.compensated == []
    assert len(credentials.refunds) == 1


def test_manager_cannot_pay(tenant_a, credentials, budget):
    """A manager lacks tools:financial: refused, no approval asked."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.manager, tool_name="payments_create",
                         arguments=PAY)
    assert result.code == "forbidden"
    assert result.approval is None
