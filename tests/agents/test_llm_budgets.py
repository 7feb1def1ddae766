"""Budgets: a warning at 80%, a stop at 100% with what an extension needs, extensions by approval, per task."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import ApprovalRequest, ApprovalStatus, AuditEvent
from accounts.services.approvals import approval_decide
from agents.llm.budgets import (
    budget_windows,
    llm_budget_extension_request,
    on_budget_approval_decided,
)
from agents.llm.errors import BudgetExhausted
from agents.llm.gateway import complete
from agents.llm.services import llm_settings_update
from agents.llm.signals import budget_warning
from agents.models import CallOutcome, LLMBudgetExtension, LLMBudgetWarning, LLMCall
from tests.agents.conftest import deployment

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "hi"}]  # 1 prompt token at the stub
PER_CALL = Decimal("0.005")  # (1 in + 4 out) tokens at 0.001 each


@pytest.fixture
def priced(settings, stub):
    """One on-prem deployment answering four tokens, priced by the organization at 0.001 a token."""
    stub.program("b-priced", content="one two three four")
    settings.LLM_DEPLOYMENTS = {"gpu": deployment(stub, "b-priced", provider="hosted_vllm")}
    settings.LLM_TIERS = {}
    return stub


def price(tenant, **budgets):
    return llm_settings_update(organization=tenant.organization, actor=tenant.admin,
                               onprem_input_cost_per_mtok=Decimal(1000), onprem_output_cost_per_mtok=Decimal(1000),
                               **budgets)


def ask(tenant, **kwargs):
    return complete(organization=tenant.organization, user=tenant.member, role="employee", messages=MESSAGES,
                    **kwargs)


def test_on_prem_calls_are_priced_per_token_by_the_organization(priced, tenant_a):
    """A local deployment's cost is the organization's per-million-token price times the tokens."""
    price(tenant_a)
    result = ask(tenant_a)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1, 4)
    assert result.cost == PER_CALL
    assert LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id).cost == PER_CALL


def test_daily_budget_warns_at_80_then_stops_at_100_without_calling_the_model(
    priced, tenant_a, django_capture_on_commit_callbacks
):
    """80% records one warning (audited, signalled); 100% another; then no model is called and the call is refused."""
    price(tenant_a, daily_budget=Decimal("0.018"))
    heard: list[tuple[str, int]] = []

    def listener(sender, organization, warning, **kwargs):
        heard.append((warning.window, warning.level))

    budget_warning.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(2):
                ask(tenant_a)
        assert heard == []
        with django_capture_on_commit_callbacks(execute=True):
            ask(tenant_a)  # 0.015 of 0.018: 83%
        assert heard == [("daily", 80)]
        with django_capture_on_commit_callbacks(execute=True):
            ask(tenant_a)  # 0.020: over the limit (the call was allowed: the budget was not yet used up)
        assert heard == [("daily", 80), ("daily", 100)]
    finally:
        budget_warning.disconnect(listener)
    warnings = LLMBudgetWarning.objects.for_org(tenant_a.organization).order_by("level")
    assert [(w.window, w.level, w.limit) for w in warnings] == [("daily", 80, Decimal("0.018")),
                                                               ("daily", 100, Decimal("0.018"))]
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="llm.budget_warning").count() == 2

    served = len(priced.calls_for("b-priced"))
    with pytest.raises(BudgetExhausted) as caught:
        ask(tenant_a)
    assert len(priced.calls_for("b-priced")) == served
    exhausted = caught.value
    assert exhausted.status_code == 402
    assert exhausted.message.startswith(f"Today's AI budget ({timezone.now().date()}) is used up")
    assert "ask for an extension" in exhausted.message
    shortfall = exhausted.shortfall
    assert (shortfall.window, shortfall.spent, shortfall.limit, shortfall.currency) == (
        "daily", Decimal("0.020"), Decimal("0.018"), "USD")
    assert shortfall.period_start == timezone.now().date()
    refused = LLMCall.objects.for_org(tenant_a.organization).filter(outcome=CallOutcome.REFUSED).get()
    assert "used up" in refused.error
    assert refused.deployment == ""


def test_an_approved_extension_lets_work_continue_and_warns_again_at_the_new_limit(
    priced, tenant_a, django_capture_on_commit_callbacks
):
    """Exhausted → an approval to extend is requested → a manager approves → the limit grows → calls go through."""
    price(tenant_a, daily_budget=Decimal("0.010"))
    ask(tenant_a)
    ask(tenant_a)
    with pytest.raises(BudgetExhausted) as caught:
        ask(tenant_a)
    approval = llm_budget_extension_request(organization=tenant_a.organization, shortfall=caught.value.shortfall,
                                            requested_by=tenant_a.member, run_id=31)
    assert (approval.kind, approval.status, approval.cost_estimate, approval.currency) == (
        "llm_budget", ApprovalStatus.PENDING, Decimal("0.01"), "USD")
    assert approval.arguments["window"] == "daily"
    assert approval.arguments["run_id"] == 31
    with pytest.raises(BudgetExhausted):
        ask(tenant_a)  # still stopped while the approval is pending

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=True)
    extension = LLMBudgetExtension.objects.for_org(tenant_a.organization).get()
    assert (extension.amount, extension.window, extension.approval_id, extension.granted_by) == (
        Decimal("0.01"), "daily", approval.pk, tenant_a.manager)
    on_budget_approval_decided(ApprovalRequest.objects.for_org(tenant_a.organization).get(pk=approval.pk))
    assert LLMBudgetExtension.objects.for_org(tenant_a.organization).count() == 1  # idempotent

    ask(tenant_a)  # 0.015 of 0.020: 75%
    assert not LLMBudgetWarning.objects.for_org(tenant_a.organization).filter(limit=Decimal("0.020")).exists()
    ask(tenant_a)  # 0.020 of 0.020
    new_levels = LLMBudgetWarning.objects.for_org(tenant_a.organization).filter(limit=Decimal("0.020"))
    assert sorted(new_levels.values_list("level", flat=True)) == [80, 100]
    with pytest.raises(BudgetExhausted):
        ask(tenant_a)


def test_a_rejected_extension_grants_nothing(priced, tenant_a, django_capture_on_commit_callbacks):
    """A rejected budget approval leaves the limit as it was."""
    price(tenant_a, daily_budget=Decimal("0.005"))
    ask(tenant_a)
    with pytest.raises(BudgetExhausted) as caught:
        ask(tenant_a)
    approval = llm_budget_extension_request(organization=tenant_a.organization, shortfall=caught.value.shortfall,
                                            requested_by=tenant_a.member)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval, actor=tenant_a.manager, approve=False, reason="enough for today")
    assert not LLMBudgetExtension.objects.for_org(tenant_a.organization).exists()
    with pytest.raises(BudgetExhausted):
        ask(tenant_a)


def test_a_task_budget_stops_that_task_only(priced, tenant_a):
    """Per-task budgets count only that task's calls; another task and untracked calls go on."""
    price(tenant_a, task_budget=Decimal("0.010"))
    ask(tenant_a, task_id=7)
    ask(tenant_a, task_id=7, run_id=70)
    with pytest.raises(BudgetExhausted) as caught:
        ask(tenant_a, task_id=7)
    assert (caught.value.shortfall.window, caught.value.shortfall.task_id) == ("task", 7)
    assert "task 7" in caught.value.message
    ask(tenant_a, task_id=8)
    ask(tenant_a)
    # A caller-given limit for the task wins over the organization's default.
    ask(tenant_a, task_id=7, task_budget=Decimal("0.020"))


def test_daily_and_monthly_windows_follow_the_organization_time_zone(priced, tenant_a):
    """Yesterday's spending counts toward the month, not today; days start at midnight in the org's time zone."""
    price(tenant_a, daily_budget=Decimal("1"), monthly_budget=Decimal("10"))
    tenant_a.organization.timezone = "Pacific/Auckland"
    tenant_a.organization.save()
    old = ask(tenant_a)
    now = timezone.now()
    row = LLMCall.objects.for_org(tenant_a.organization).filter(pk=old.call_id)
    row.update(created_at=now - timedelta(days=1))
    ask(tenant_a)
    windows = {w.window: w for w in budget_windows(organization=tenant_a.organization,
                                                   org_settings=price(tenant_a), now=now)}
    assert windows["daily"].spent == PER_CALL
    expected_month = PER_CALL * 2 if windows["daily"].period_start.day > 1 else PER_CALL
    assert windows["monthly"].spent == expected_month
    assert windows["daily"].since.utcoffset() in (timedelta(hours=12), timedelta(hours=13))


def test_an_extension_request_for_another_organization_is_refused(priced, tenant_a, tenant_b):
    """A shortfall of organization A cannot become an approval request in organization B."""
    price(tenant_a, daily_budget=Decimal("0.005"))
    ask(tenant_a)
    with pytest.raises(BudgetExhausted) as caught:
        ask(tenant_a)
    with pytest.raises(Exception, match="another organization"):
        llm_budget_extension_request(organization=tenant_b.organization, shortfall=caught.value.shortfall)
    assert not ApprovalRequest.objects.for_org(tenant_b.organization).exists()
