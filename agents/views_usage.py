"""LLM usage page: local versus cloud share, cost by day, by model and by user, drawn on the server."""

from __future__ import annotations

import math
import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from agents.llm.selectors import llm_usage_summary
from agents.models import Locality
from agents.selectors_portal import days_between
from automation.views.common import render_org

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
CHART_WIDTH = 720
CHART_HEIGHT = 220
PLOT_LEFT = 56
PLOT_RIGHT = 8
PLOT_TOP = 12
PLOT_BOTTOM = 28
GRID_LINES = 4


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _percent(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def cost_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of cost per day, with y-axis gridlines and a few x-axis labels (SVG user units)."""
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    top = _nice_ceiling(max((float(d["cost"]) for d in days), default=0.0))
    slot = plot_width / max(len(days), 1)
    label_every = max(1, math.ceil(len(days) / 8))
    bars = []
    for index, day in enumerate(days):
        height = plot_height * float(day["cost"]) / top
        bars.append({
            **day,
            "x": round(PLOT_LEFT + index * slot + slot * 0.15, 2),
            "width": round(max(slot * 0.7, 1), 2),
            "y": round(PLOT_TOP + plot_height - height, 2),
            "height": round(height, 2),
            "label": f"{day['day']:%b} {day['day'].day}" if index % label_every == 0 else "",
            "label_x": round(PLOT_LEFT + index * slot + slot / 2, 2),
        })
    grid = [
        {"y": round(PLOT_TOP + plot_height * (1 - step / GRID_LINES), 2), "value": top * step / GRID_LINES}
        for step in range(GRID_LINES + 1)
    ]
    return {
        "bars": bars, "grid": grid, "width": CHART_WIDTH, "height": CHART_HEIGHT, "plot_left": PLOT_LEFT,
        "plot_right": CHART_WIDTH - PLOT_RIGHT, "axis_y": PLOT_TOP + plot_height, "label_y": CHART_HEIGHT - 8,
        "max": top,
    }


def locality_shares(by_locality: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each locality's share of calls, tokens and cost among answered calls."""
    total_calls = sum(row["calls"] for row in by_locality.values())
    total_tokens = sum(row["tokens_in"] + row["tokens_out"] for row in by_locality.values())
    total_cost = sum((row["cost"] for row in by_locality.values()), Decimal(0))
    return [
        {
            "locality": value, "label": label, **by_locality[value],
            "tokens": by_locality[value]["tokens_in"] + by_locality[value]["tokens_out"],
            "calls_pct": _percent(by_locality[value]["calls"], total_calls),
            "tokens_pct": _percent(by_locality[value]["tokens_in"] + by_locality[value]["tokens_out"], total_tokens),
            "cost_pct": _percent(float(by_locality[value]["cost"]), float(total_cost)),
        }
        for value, label in Locality.choices
    ]


def _with_share(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    top = max((float(row["cost"]) for row in rows), default=0.0)
    calls = max((row["calls"] for row in rows), default=0)
    # Bars scale to the largest cost, or to calls when nothing cost anything (scripted or local models).
    return [
        {**row, "bar_pct": _percent(float(row["cost"]), top) if top else _percent(row["calls"], calls)}
        for row in rows
    ]


@org_page(Scope.USAGE_READ)
@require_GET
def llm_usage(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    try:
        period = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        period = DEFAULT_PERIOD
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    tz = zoneinfo.ZoneInfo(organization.timezone or "UTC")
    now = timezone.now()
    first_day = now.astimezone(tz).date() - timedelta(days=period - 1)
    since = datetime.combine(first_day, time.min, tzinfo=tz)
    summary = llm_usage_summary(organization=organization, since=since, until=now)
    recorded = {row["day"]: row for row in summary["by_day"]}
    days = [
        {"day": day, "cost": recorded.get(day, {}).get("cost", Decimal(0)),
         "calls": recorded.get(day, {}).get("calls", 0)}
        for day in days_between(first_day, now.astimezone(tz).date())
    ]
    shares = locality_shares(summary["by_locality"])
    local = next(row for row in shares if row["locality"] == Locality.LOCAL)
    cloud = next(row for row in shares if row["locality"] == Locality.CLOUD)
    context = {
        "period": period,
        "periods": PERIODS,
        "since": since,
        "summary": summary,
        "currency": summary["currency"],
        "shares": shares,
        "local_vs_cloud": {
            "local_pct": _percent(local["calls"], local["calls"] + cloud["calls"]),
            "cloud_pct": _percent(cloud["calls"], local["calls"] + cloud["calls"]),
            "any": local["calls"] + cloud["calls"] > 0,
        },
        "chart": cost_chart(days),
        "days": days,
        "by_model": _with_share(summary["by_model"]),
        "by_user": _with_share(summary["by_user"]),
    }
    return render_org(request, access, "portal/llm_usage.html", context)
