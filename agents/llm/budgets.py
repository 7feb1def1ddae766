"""Model spending budgets: per organization (daily, monthly) and per task, in ``LLM_CURRENCY``.

Spending is the sum of ``LLMCall.cost``; days and months are the
organization's (its time zone). A window's limit is the organization's budget
(or the task's) plus the extensions granted for that period.

- Before a call, a window already at or over its limit stops it with
  :class:`BudgetExhausted`: nothing is called, and the error carries what an
  extension request needs (:func:`llm_budget_extension_request`). The budget is
  checked, not reserved: calls racing at the edge may overshoot by their own
  cost, never more.
- After a call, each threshold reached (``LLM_BUDGET_WARNING_PERCENT``, 80 by
  default, and 100) is recorded once per window, period and limit as an
  :class:`LLMBudgetWarning`, written to the audit log, and announced after the
  commit with the :data:`agents.llm.signals.budget_warning` signal.
- An approved ``llm_budget`` approval grants its extension (idempotently: one
  extension per approval); whoever waits on it (the Manager loop) registers its
  own handler for the same kind to resume.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.services.audit import audit_record
from agents.llm import conf
from agents.llm.errors import BudgetExhausted, BudgetShortfall
from agents.llm.signals import budget_warning
from agents.models import BudgetWindow, LLMBudgetExtension, LLMBudgetWarning, LLMCall

if TYPE_CHECKING:
    from accounts.models import ApprovalRequest, Organization, User
    from agents.models import OrganizationLLMSettings

APPROVAL_KIND = "llm_budget"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class WindowState:
    window: str
    period_start: date | None
    since: datetime | None
    task_id: int | None
    base_limit: Decimal
    extension: Decimal
    spent: Decimal

    @property
    def limit(self) -> Decimal:
        return self.base_limit + self.extension

    @property
    def percent(self) -> Decimal:
        return self.spent * 100 / self.limit if self.limit > 0 else Decimal(100)

    def shortfall(self, organization_id: int) -> BudgetShortfall:
        suggested = max(self.base_limit / 2, CENT).quantize(CENT, rounding=ROUND_UP)
        return BudgetShortfall(
            organization_id=organization_id, window=self.window, period_start=self.period_start,
            task_id=self.task_id, spent=self.spent, limit=self.limit, currency=conf.currency(),
            suggested_extension=suggested,
        )


def _period_starts(organization: Organization, now: datetime) -> dict[str, tuple[date, datetime]]:
    tz = zoneinfo.ZoneInfo(organization.timezone or "UTC")
    day = now.astimezone(tz).date()
    month = day.replace(day=1)
    return {
        BudgetWindow.DAILY: (day, datetime.combine(day, time.min, tzinfo=tz)),
        BudgetWindow.MONTHLY: (month, datetime.combine(month, time.min, tzinfo=tz)),
    }


def _spent(organization: Organization, **filters: Any) -> Decimal:
    total = LLMCall.objects.for_org(organization).filter(**filters).aggregate(total=Sum("cost"))["total"]
    return Decimal(total or 0)


def _extension(organization: Organization, *, window: str, period_start: date | None, task_id: int | None) -> Decimal:
    queryset = LLMBudgetExtension.objects.for_org(organization).filter(window=window)
    queryset = queryset.filter(task_id=task_id) if task_id is not None else queryset.filter(period_start=period_start)
    return Decimal(queryset.aggregate(total=Sum("amount"))["total"] or 0)


def budget_windows(*, organization: Organization, org_settings: OrganizationLLMSettings | None,
                   task_id: int | None = None, task_budget: Decimal | None = None,
                   now: datetime | None = None) -> list[WindowState]:
    """Every window with a limit that applies to a call now (daily, monthly, the task's)."""
    now = now or timezone.now()
    states: list[WindowState] = []
    limits = {
        BudgetWindow.DAILY: org_settings.daily_budget if org_settings else None,
        BudgetWindow.MONTHLY: org_settings.monthly_budget if org_settings else None,
    }
    for window, (start, since) in _period_starts(organization, now).items():
        limit = limits[window]
        if limit is None:
            continue
        states.append(WindowState(
            window=window, period_start=start, since=since, task_id=None, base_limit=Decimal(limit),
            extension=_extension(organization, window=window, period_start=start, task_id=None),
            spent=_spent(organization, created_at__gte=since),
        ))
    if task_id is not None:
        limit = task_budget if task_budget is not None else (org_settings.task_budget if org_settings else None)
        if limit is not None:
            states.append(WindowState(
                window=BudgetWindow.TASK, period_start=None, since=None, task_id=task_id, base_limit=Decimal(limit),
                extension=_extension(organization, window=BudgetWindow.TASK, period_start=None, task_id=task_id),
                spent=_spent(organization, task_id=task_id),
            ))
    return states


def _describe(state: WindowState) -> str:
    if state.window == BudgetWindow.TASK:
        return f"the AI budget of task {state.task_id}"
    if state.window == BudgetWindow.DAILY:
        return f"today's AI budget ({state.period_start})"
    return f"this month's AI budget ({state.period_start:%B %Y})" if state.period_start else "the monthly AI budget"


def budget_ensure_available(*, organization: Organization, org_settings: OrganizationLLMSettings | None,
                            task_id: int | None = None, task_budget: Decimal | None = None,
                            now: datetime | None = None) -> list[WindowState]:
    """Raise :class:`BudgetExhausted` if a window is used up; else return the windows."""
    states = budget_windows(organization=organization, org_settings=org_settings, task_id=task_id,
                            task_budget=task_budget, now=now)
    for state in states:
        if state.spent >= state.limit:
            currency = conf.currency()
            what = _describe(state)
            raise BudgetExhausted(
                f"{what[0].upper()}{what[1:]} is used up: {state.spent:.4f} of {state.limit:.4f} {currency} "
                "spent. No model was called; ask for an extension to continue.",
                shortfall=state.shortfall(organization.pk),
            )
    return states


def budget_record_warnings(*, organization: Organization, org_settings: OrganizationLLMSettings | None,
                           task_id: int | None = None, task_budget: Decimal | None = None,
                           now: datetime | None = None) -> list[LLMBudgetWarning]:
    """Record each threshold the spending has reached (once per window, period, level and limit)."""
    states = budget_windows(organization=organization, org_settings=org_settings, task_id=task_id,
                            task_budget=task_budget, now=now)
    created: list[LLMBudgetWarning] = []
    levels = sorted({conf.budget_warning_percent(), 100})
    for state in states:
        for level in levels:
            if state.spent * 100 < state.limit * level:
                continue
            try:
                with transaction.atomic():
                    warning = LLMBudgetWarning.objects.for_org(organization).create(
                        organization=organization, window=state.window, period_start=state.period_start,
                        task_id=state.task_id, level=level, spent=state.spent, limit=state.limit,
                        currency=conf.currency(),
                    )
                    audit_record(organization=organization, actor=None, actor_label="llm gateway",
                                 action="llm.budget_warning", target=warning,
                                 after={"window": state.window, "level": level, "spent": str(state.spent),
                                        "limit": str(state.limit), "task_id": state.task_id})
            except IntegrityError:  # already recorded (or a racing call recorded it)
                continue
            created.append(warning)
            transaction.on_commit(
                lambda w=warning: budget_warning.send(sender=LLMBudgetWarning, organization=organization, warning=w)
            )
    return created


# --- extensions ------------------------------------------------------------------------


def llm_budget_extension_request(*, organization: Organization, shortfall: BudgetShortfall,
                                 requested_by: User | None = None, requested_by_label: str = "",
                                 amount: Decimal | None = None, reason: str = "",
                                 run_id: int | None = None) -> ApprovalRequest:
    """Ask (an ``approvals:decide`` holder) for more budget; approving it grants the extension."""
    from accounts.services.approvals import approval_request_create

    if shortfall.organization_id != organization.pk:
        raise InvalidInput("the budget shortfall belongs to another organization", field="shortfall")
    amount = Decimal(amount if amount is not None else shortfall.suggested_extension)
    if amount <= 0:
        raise InvalidInput("the extension must be a positive amount", field="amount")
    window_label = {"daily": "today's", "monthly": "this month's", "task": f"task {shortfall.task_id}'s"}
    arguments = {**shortfall.as_dict(), "amount": str(amount), "run_id": run_id}
    return approval_request_create(
        organization=organization,
        kind=APPROVAL_KIND,
        title=f"Extend {window_label.get(shortfall.window, 'the')} AI budget by {amount} {shortfall.currency}",
        reason=reason or (f"{shortfall.spent} of {shortfall.limit} {shortfall.currency} spent; the work is paused "
                          "until more budget is approved."),
        requested_by=requested_by,
        requested_by_label=requested_by_label,
        arguments=arguments,
        subject_type="task" if shortfall.task_id is not None else "llm_budget",
        subject_id=shortfall.task_id if shortfall.task_id is not None else "",
        cost_estimate=amount.quantize(CENT, rounding=ROUND_UP),
        currency=shortfall.currency,
    )


def llm_budget_extension_grant(*, organization: Organization, window: str, amount: Decimal,
                               actor: User | None, period_start: date | None = None, task_id: int | None = None,
                               approval: ApprovalRequest | None = None) -> LLMBudgetExtension:
    """Add ``amount`` to one window's limit (granted once per approval)."""
    if window not in BudgetWindow.values:
        raise InvalidInput(f"unknown budget window {window!r}", field="window")
    if window == BudgetWindow.TASK and task_id is None:
        raise InvalidInput("a task extension needs the task", field="task_id")
    if window != BudgetWindow.TASK and period_start is None:
        raise InvalidInput("a daily or monthly extension needs its period", field="period_start")
    amount = Decimal(amount)
    if amount <= 0:
        raise InvalidInput("the extension must be a positive amount", field="amount")
    with transaction.atomic():
        if approval is not None:
            existing = LLMBudgetExtension.objects.for_org(organization).filter(approval=approval).first()
            if existing is not None:
                return existing
        extension = LLMBudgetExtension.objects.for_org(organization).create(
            organization=organization, window=window, period_start=period_start if task_id is None else None,
            task_id=task_id, amount=amount, currency=conf.currency(), approval=approval, granted_by=actor,
        )
        audit_record(organization=organization, actor=actor, action="llm.budget_extended", target=extension,
                     after={"window": window, "amount": str(amount), "task_id": task_id,
                            "period_start": period_start.isoformat() if period_start else None,
                            "approval_id": approval.pk if approval else None})
    return extension


def on_budget_approval_decided(approval: ApprovalRequest) -> None:
    """Decision handler of ``llm_budget`` approvals: an approved one grants its extension (idempotent)."""
    from accounts.models import ApprovalStatus

    if approval.status != ApprovalStatus.APPROVED:
        return
    args = approval.arguments or {}
    period = args.get("period_start")
    llm_budget_extension_grant(
        organization=approval.organization,
        window=str(args.get("window")),
        amount=Decimal(str(args.get("amount"))),
        actor=approval.decided_by,
        period_start=date.fromisoformat(period) if period else None,
        task_id=args.get("task_id"),
        approval=approval,
    )
