"""Reads of the portal's dashboard and usage pages: model spend, the payment log's totals, days of a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from accounts.models import Organization
from agents.llm import conf
from agents.llm.selectors import llm_calls
from tools.models import PaymentTransaction

# ISO 4217 currencies without minor units (amounts in the payment log are in minor units).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                          "XAF", "XOF", "XPF"})
# Payment statuses that moved no money (Stripe's words).
NOT_PAID = ("canceled", "requires_payment_method")


@dataclass(frozen=True)
class Spend:
    cost: Decimal
    calls: int
    currency: str


def llm_spend(*, organization: Organization, since: datetime, until: datetime) -> Spend:
    """What the organization's model calls cost in ``[since, until)``."""
    totals = llm_calls(organization=organization, since=since, until=until).aggregate(
        cost=Sum("cost", default=Decimal(0)), calls=Count("id")
    )
    return Spend(cost=totals["cost"], calls=totals["calls"], currency=conf.currency())


def _major(amount: int, currency: str) -> Decimal:
    return Decimal(amount) if currency in ZERO_DECIMAL else (Decimal(amount) / 100).quantize(Decimal("0.01"))


def payments_spend(*, organization: Organization, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per currency, from the tools' transaction log: paid, refunded and net, in major units. One query."""
    rows = (
        PaymentTransaction.objects.for_org(organization)
        .filter(created_at__gte=since, created_at__lt=until)
        .values("currency")
        .annotate(
            paid=Sum("amount", filter=Q(kind=PaymentTransaction.Kind.PAYMENT) & ~Q(status__in=NOT_PAID), default=0),
            refunded=Sum("amount", filter=Q(kind=PaymentTransaction.Kind.REFUND), default=0),
            count=Count("id", filter=Q(kind=PaymentTransaction.Kind.PAYMENT)),
        )
        .order_by("currency")
    )
    return [
        {
            "currency": row["currency"],
            "paid": _major(row["paid"], row["currency"]),
            "refunded": _major(row["refunded"], row["currency"]),
            "net": _major(row["paid"] - row["refunded"], row["currency"]),
            "count": row["count"],
        }
        for row in rows
    ]


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
