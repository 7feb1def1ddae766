"""Payment budgets: per action, per day and per month, in the organization's time zone.

Spending is what claimed calls moved (running, succeeded, and also failed or
timed out, whose effect is unknown) minus what was compensated (refunded). An
alert is raised once per window when spending reaches 80% of a limit and again
at 100%; a payment that would go past a limit is refused.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from tools.models import BudgetAlert, PaymentBudget, ToolCall
from tools.types import CompensationStatus, Money, SideEffect

ALERT_LEVELS = (80, 100)


@dataclass(frozen=True)
class BudgetVerdict:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Window:
    name: str
    start: date
    since: datetime
    limit: int | None


def _windows(organization: Organization, budget: PaymentBudget, now: datetime) -> list[Window]:
    tz = zoneinfo.ZoneInfo(organization.timezone or "UTC")
    local = now.astimezone(tz)
    day = local.date()
    month = day.replace(day=1)
    return [
        Window("daily", day, datetime.combine(day, time.min, tzinfo=tz), budget.daily_limit),
        Window("monthly", month, datetime.combine(month, time.min, tzinfo=tz), budget.monthly_limit),
    ]


def budget_spent(*, organization: Organization, currency: str, since: datetime) -> int:
    total = (
        ToolCall.objects.for_org(organization)
        .filter(claimed=True, side_effect=SideEffect.FINANCIAL, amount__isnull=False, currency=currency.upper(),
                created_at__gte=since)
        .exclude(compensation_status=CompensationStatus.COMPENSATED)
        .aggregate(total=Sum("amount"))["total"]
    )
    return int(total or 0)


def budget_check(
    *, organization: Organization, money: Money, lock: bool = False, now: datetime | None = None
) -> BudgetVerdict:
    """Whether ``money`` fits the organization's budget. ``lock`` serializes concurrent payments (in a transaction)."""
    now = now or timezone.now()
    queryset = PaymentBudget.objects.for_org(organization).filter(currency=money.currency)
    if lock:
        queryset = queryset.select_for_update()
    budget = queryset.first()
    if budget is None:
        return BudgetVerdict(False, f"no payment budget is set for {money.currency}; an admin sets one first")
    if budget.per_action_limit is not None and money.amount > budget.per_action_limit:
        return BudgetVerdict(
            False, f"{money.amount} {money.currency} is over the per-payment limit of {budget.per_action_limit}"
        )
    for window in _windows(organization, budget, now):
        if window.limit is None:
            continue
        spent = budget_spent(organization=organization, currency=money.currency, since=window.since)
        if spent + money.amount > window.limit:
            return BudgetVerdict(
                False,
                f"the {window.name} budget of {window.limit} {money.currency} would be exceeded "
                f"({spent} spent, {money.amount} asked)",
            )
    return BudgetVerdict(True)


def budget_alerts_raise(
    *, organization: Organization, currency: str, now: datetime | None = None
) -> list[BudgetAlert]:
    """Record (once per window and level) every threshold the spending has reached."""
    now = now or timezone.now()
    budget = PaymentBudget.objects.for_org(organization).filter(currency=currency).first()
    if budget is None:
        return []
    raised = []
    for window in _windows(organization, budget, now):
        if not window.limit:
            continue
        spent = budget_spent(organization=organization, currency=currency, since=window.since)
        for level in ALERT_LEVELS:
            if spent * 100 < window.limit * level:
                continue
            try:
                with transaction.atomic():
                    alert = BudgetAlert.objects.for_org(organization).create(
                        organization=organization,
                        currency=currency,
                        window=window.name,
                        period_start=window.start,
                        level=level,
                        spent=spent,
                        limit=window.limit,
                    )
                    audit_record(
                        organization=organization,
                        actor=None,
                        action="budget.alert",
                        target=alert,
                        after={"window": window.name, "level": level, "spent": spent, "limit": window.limit,
                               "currency": currency},
                    )
            except IntegrityError:
                continue  # already raised for this window and level
            raised.append(alert)
    return raised


def payment_budget_set(
    *,
    organization: Organization,
    actor: User,
    currency: str,
    per_action_limit: int | None,
    daily_limit: int | None,
    monthly_limit: int | None,
) -> PaymentBudget:
    """Create or change the budget for ``currency`` (amounts in minor units; ``None`` means no limit)."""
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidInput("a currency is a three-letter ISO code", field="currency")
    for field_name, value in (("per_action_limit", per_action_limit), ("daily_limit", daily_limit),
                              ("monthly_limit", monthly_limit)):
        if value is not None and value < 0:
            raise InvalidInput("a limit cannot be negative", field=field_name)
    with transaction.atomic():
        budget, created = PaymentBudget.objects.for_org(organization).select_for_update().get_or_create(
            organization=organization, currency=currency
        )
        before = None if created else {
            "per_action_limit": budget.per_action_limit,
            "daily_limit": budget.daily_limit,
            "monthly_limit": budget.monthly_limit,
        }
        budget.per_action_limit = per_action_limit
        budget.daily_limit = daily_limit
        budget.monthly_limit = monthly_limit
        budget.updated_by = actor
        budget.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="budget.set",
            target=budget,
            before=before,
            after={"currency": currency, "per_action_limit": per_action_limit, "daily_limit": daily_limit,
                   "monthly_limit": monthly_limit},
        )
    return budget
