"""Reads of the gateway's records: usage over a period."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from agents.llm import conf
from agents.models import CallOutcome, LLMCall, Locality

if TYPE_CHECKING:
    from accounts.models import Organization

_TOTALS = {
    "calls": Count("id"),
    "tokens_in": Sum("tokens_in", default=0),
    "tokens_out": Sum("tokens_out", default=0),
    "cost": Sum("cost", default=Decimal(0)),
}


def llm_calls(*, organization: Organization, since: datetime, until: datetime) -> QuerySet[LLMCall]:
    return LLMCall.objects.for_org(organization).filter(created_at__gte=since, created_at__lt=until)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def llm_usage_summary(*, organization: Organization, since: datetime, until: datetime) -> dict[str, Any]:
    """Totals, by model, by user, local versus cloud, and by day (in the organization's time zone)."""
    calls = llm_calls(organization=organization, since=since, until=until)
    totals = calls.aggregate(
        **_TOTALS,
        ok=Count("id", filter=Q(outcome=CallOutcome.OK)),
        fallback=Count("id", filter=Q(outcome=CallOutcome.FALLBACK)),
        error=Count("id", filter=Q(outcome=CallOutcome.ERROR)),
        refused=Count("id", filter=Q(outcome=CallOutcome.REFUSED)),
    )
    answered = calls.exclude(deployment="")
    by_model = list(
        answered.values("model", "deployment", "locality").annotate(**_TOTALS).order_by("-cost", "-calls", "model")
    )
    by_user = [
        {"user_id": row["user_id"], "email": row["user__email"] or "", **{k: row[k] for k in _TOTALS}}
        for row in calls.values("user_id", "user__email").annotate(**_TOTALS).order_by("-cost", "-calls", "user_id")
    ]
    localities = {row["locality"]: row for row in answered.values("locality").annotate(**_TOTALS)}
    by_locality = {
        value: {k: (localities.get(value) or {}).get(k, 0) for k in _TOTALS} for value in Locality.values
    }
    local_calls = by_locality[Locality.LOCAL]["calls"]
    cloud_calls = by_locality[Locality.CLOUD]["calls"]
    local_tokens = by_locality[Locality.LOCAL]["tokens_in"] + by_locality[Locality.LOCAL]["tokens_out"]
    cloud_tokens = by_locality[Locality.CLOUD]["tokens_in"] + by_locality[Locality.CLOUD]["tokens_out"]
    tz = zoneinfo.ZoneInfo(organization.timezone or "UTC")
    by_day = list(
        calls.annotate(day=TruncDate("created_at", tzinfo=tz)).values("day").annotate(**_TOTALS).order_by("day")
    )
    return {
        "since": since,
        "until": until,
        "currency": conf.currency(),
        "totals": totals,
        "by_model": by_model,
        "by_user": by_user,
        "by_locality": by_locality,
        "local_share": {
            "calls": _share(local_calls, local_calls + cloud_calls),
            "tokens": _share(local_tokens, local_tokens + cloud_tokens),
        },
        "by_day": by_day,
    }
