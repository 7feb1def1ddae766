"""LLM usage API: totals by model, by user, local versus cloud, by day; scopes; other organizations see nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import CallOutcome, LLMCall
from tests.accounts.factories import key_header, make_api_key
from tests.agents.factories import make_llm_call

pytestmark = pytest.mark.django_db


def usage_url(slug: str) -> str:
    return f"/api/v1/orgs/{slug}/llm/usage/"


def calls_url(slug: str, pk: int | None = None) -> str:
    return f"/api/v1/orgs/{slug}/llm/calls/" + (f"{pk}/" if pk else "")


@pytest.fixture
def history(tenant_a, tenant_b):
    """Acme: cloud and on-prem calls by two users over two days, a refusal and a scripted call; Globex: one call."""
    org = tenant_a.organization
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    make_llm_call(org, user=tenant_a.member, at=yesterday, cost=Decimal("0.010"))
    make_llm_call(org, user=tenant_a.member, cost=Decimal("0.020"), outcome=CallOutcome.FALLBACK)
    make_llm_call(org, user=tenant_a.manager, model="hosted_vllm/qwen", deployment="gpu", locality="local",
                  tokens_in=300, tokens_out=100, cost=Decimal("0.002"))
    make_llm_call(org, user=tenant_a.manager, model="hosted_vllm/qwen", deployment="gpu", locality="local",
                  tokens_in=300, tokens_out=100, cost=Decimal("0.002"))
    make_llm_call(org, user=tenant_a.manager, model="hosted_vllm/qwen", deployment="gpu", locality="local",
                  tokens_in=300, tokens_out=100, cost=Decimal("0.002"))
    make_llm_call(org, user=None, model="scripted/staffer", deployment="scripted", locality="scripted",
                  scripted=True, cost=Decimal(0), role="extractor", tier="fast")
    make_llm_call(org, user=tenant_a.member, model="", deployment="", locality="", tokens_in=0, tokens_out=0,
                  cost=Decimal(0), outcome=CallOutcome.REFUSED, error="rate limited")
    make_llm_call(org, user=tenant_a.member, at=now - timedelta(days=60), cost=Decimal("5"))  # outside 30 days
    make_llm_call(tenant_b.organization, user=tenant_b.member, cost=Decimal("9"))
    return now


def test_usage_totals_by_model_user_locality_and_day(history, tenant_a, client_for):
    """The summary adds up this organization's calls of the period in every breakdown."""
    response = client_for(tenant_a.manager).get(usage_url(tenant_a.slug))
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["currency"] == "USD"
    totals = data["totals"]
    assert (totals["calls"], totals["ok"], totals["fallback"], totals["refused"], totals["error"]) == (7, 5, 1, 1, 0)
    assert Decimal(totals["cost"]) == Decimal("0.036")
    assert (totals["tokens_in"], totals["tokens_out"]) == (100 * 3 + 300 * 3, 20 * 3 + 100 * 3)

    by_model = {(row["deployment"], row["locality"]): row for row in data["by_model"]}
    assert set(by_model) == {("mini", "cloud"), ("gpu", "local"), ("scripted", "scripted")}
    assert by_model[("mini", "cloud")]["calls"] == 2
    assert Decimal(by_model[("gpu", "local")]["cost"]) == Decimal("0.006")

    by_user = {row["email"]: row for row in data["by_user"]}
    assert by_user[tenant_a.member.email]["calls"] == 3
    assert by_user[tenant_a.manager.email]["calls"] == 3
    assert by_user[""]["user_id"] is None  # system work

    assert data["by_locality"]["local"]["calls"] == 3
    assert data["by_locality"]["cloud"]["calls"] == 2
    assert data["by_locality"]["scripted"]["calls"] == 1
    assert data["local_share"]["calls"] == 0.6
    assert data["local_share"]["tokens"] == round(1200 / (1200 + 240), 4)

    days = {row["day"]: row for row in data["by_day"]}
    assert len(days) == 2
    assert sum(row["calls"] for row in days.values()) == 7
    assert Decimal(days[str((history - timedelta(days=1)).date())]["cost"]) == Decimal("0.010")


def test_a_period_can_be_chosen(history, tenant_a, client_for):
    """since/until narrow the summary (the 60-day-old call is inside a 90-day window)."""
    since = (history - timedelta(days=90)).isoformat()
    response = client_for(tenant_a.manager).get(usage_url(tenant_a.slug), {"since": since})
    assert response.json()["totals"]["calls"] == 8


@pytest.mark.parametrize(
    ("params", "field"),
    [({"since": "yesterday-ish"}, "since"), ({"until": "2020-13-45"}, "until"),
     ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
     ({"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since")],
)
def test_bad_periods_are_refused_with_the_field(tenant_a, client_for, params, field):
    """An unreadable date, a reversed period or one longer than a year: 400 naming the field."""
    response = client_for(tenant_a.manager).get(usage_url(tenant_a.slug), params)
    assert response.status_code == 400
    assert field in response.json()


def test_usage_needs_the_usage_read_scope(history, tenant_a, client_for):
    """A member (no usage:read) is refused; an API key with only usage:read is enough."""
    assert client_for(tenant_a.member).get(usage_url(tenant_a.slug)).status_code == 403
    assert client_for(tenant_a.member).get(calls_url(tenant_a.slug)).status_code == 403
    _, secret = make_api_key(tenant_a.organization, tenant_a.admin, scopes=["usage:read"])
    from rest_framework.test import APIClient

    response = APIClient().get(usage_url(tenant_a.slug), **key_header(secret))
    assert response.status_code == 200
    assert response.json()["totals"]["calls"] == 7


def test_the_other_organization_sees_nothing(history, tenant_a, tenant_b, client_for):
    """Globex's slug or call ids through Acme's member give 404; Acme's figures exclude Globex's calls."""
    client = client_for(tenant_a.manager)
    assert client.get(usage_url(tenant_b.slug)).status_code == 404
    assert client.get(calls_url(tenant_b.slug)).status_code == 404
    foreign = LLMCall.objects.for_org(tenant_b.organization).get()
    assert client.get(calls_url(tenant_a.slug, foreign.pk)).status_code == 404
    assert client.get(calls_url(tenant_b.slug, foreign.pk)).status_code == 404
    listed = client.get(calls_url(tenant_a.slug), {"limit": 100}).json()["results"]
    assert foreign.pk not in {row["id"] for row in listed}


def test_calls_are_listed_newest_first_with_filters(history, tenant_a, client_for, django_assert_max_num_queries):
    """The call list filters by outcome, user and scripted flag, in a fixed number of queries."""
    client = client_for(tenant_a.manager)
    with django_assert_max_num_queries(8):
        response = client.get(calls_url(tenant_a.slug))
    rows = response.json()["results"]
    assert len(rows) == 8
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)
    refused = client.get(calls_url(tenant_a.slug), {"outcome": "refused"}).json()["results"]
    assert [(r["outcome"], r["error"], r["user_email"]) for r in refused] == [
        ("refused", "rate limited", tenant_a.member.email)]
    scripted = client.get(calls_url(tenant_a.slug), {"scripted": "true"}).json()["results"]
    assert [r["deployment"] for r in scripted] == ["scripted"]
    mine = client.get(calls_url(tenant_a.slug), {"user": tenant_a.manager.pk}).json()["results"]
    assert len(mine) == 3
    extractions = client.get(calls_url(tenant_a.slug), {"agent_role": "extractor"}).json()["results"]
    assert [(r["agent_role"], r["tier"]) for r in extractions] == [("extractor", "fast")]
    one = client.get(calls_url(tenant_a.slug, mine[0]["id"])).json()
    assert one["deployment"] == "gpu"


@pytest.mark.parametrize("params", [{"outcome": "meh"}, {"user": "x"}, {"agent_role": "pilot"}, {"task_id": 0}])
def test_bad_call_filters_are_refused(tenant_a, client_for, params):
    """An unknown outcome or role, or a non-numeric id, is a 400 naming the filter."""
    response = client_for(tenant_a.manager).get(calls_url(tenant_a.slug), params)
    assert response.status_code == 400
    assert next(iter(params)) in response.json()
