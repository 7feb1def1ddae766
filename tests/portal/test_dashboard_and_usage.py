"""The dashboard (open tasks, running work, approvals waiting for me, spend this month) and the LLM usage page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automation.services.tasks import task_start
from tests.portal.factories import make_approval, make_llm_call, make_payment, make_task

pytestmark = pytest.mark.django_db


def _stat(html: str, label: str) -> str:
    match = re.search(r'<span class="stat-value">([^<]*)</span><span class="stat-label">' + re.escape(label), html)
    assert match, label
    return match.group(1)


def test_the_dashboard_counts_open_and_running_work_and_my_approvals(tenant_a, page_for):
    """Open tasks, the one in progress, and the approvals this manager may decide are shown and linked."""
    org = tenant_a.organization
    make_task(org, title="Pending one")
    running = make_task(org, title="Being done", assignee=tenant_a.member)
    task_start(task=running, actor=tenant_a.member)
    done = make_task(org, title="Finished")
    task_start(task=done, actor=tenant_a.member)
    from automation.services.tasks import task_complete

    task_complete(task=done, actor=tenant_a.member)
    waiting = make_approval(org, title="Laptop for Maria", requested_by=tenant_a.member)
    make_approval(org, title="My own payment", requested_by=tenant_a.manager, financial=True,
                  cost_estimate="10", currency="EUR")
    html = page_for(tenant_a.manager).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert "<h1>Acme Corp</h1>" in html
    assert _stat(html, "open task") == "2"
    assert _stat(html, "in progress") == "1"
    assert _stat(html, "approval waiting for you") == "1"
    running_section = html[html.index('id="running-heading"'):]
    running_section = running_section[:running_section.index("</section>")]
    assert "Being done" in running_section
    assert tenant_a.member.email in running_section
    assert f'href="/orgs/{tenant_a.slug}/approvals/#approval-{waiting.pk}"' in html
    assert "My own payment" not in html


def test_spend_this_month_shows_model_cost_and_payments_by_role(tenant_a, page_for):
    """Model spend this month (not last month's) for managers; the payment log's net total only for admins."""
    org = tenant_a.organization
    make_llm_call(org, user=tenant_a.member, cost=Decimal("1.25"))
    make_llm_call(org, user=tenant_a.member, cost=Decimal("0.50"))
    make_llm_call(org, cost=Decimal("9"), at=timezone.now() - timedelta(days=45))
    make_payment(org, amount=180000)
    make_payment(org, amount=20000, kind="refund")
    make_payment(org, amount=5000, status="canceled")
    manager = page_for(tenant_a.manager).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert "1.7500 USD" in manager
    assert "Payments" not in manager
    admin = page_for(tenant_a.admin).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert "1600.00 EUR" in admin
    assert "200.00 refunded" in admin
    member = page_for(tenant_a.member).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert "Spend this month" not in member
    viewer = page_for(tenant_a.viewer).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert "API keys" not in viewer
    assert "LLM usage" not in viewer
    assert f'href="/orgs/{tenant_a.slug}/tasks/"' in viewer


def test_dashboard_queries_are_bounded(tenant_a, page_for):
    """The dashboard's query count does not grow with tasks, runs and approvals."""
    org = tenant_a.organization
    client = page_for(tenant_a.owner)

    def add(count: int) -> None:
        for index in range(count):
            task = make_task(org, title=f"Task {index}", assignee=tenant_a.member)
            if index % 2 == 0:
                task_start(task=task, actor=tenant_a.member)
            make_approval(org, title=f"Approval {index}", requested_by=tenant_a.member)
            make_llm_call(org, user=tenant_a.member)
            make_payment(org, amount=1000 + index)

    add(2)
    client.get(f"/orgs/{tenant_a.slug}/")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/orgs/{tenant_a.slug}/")
    add(14)
    with CaptureQueriesContext(connection) as many:
        client.get(f"/orgs/{tenant_a.slug}/")
    assert len(many) == len(few), [q["sql"] for q in many]


def test_the_account_pages_at_orgs_new_and_switch_still_answer(tenant_a, page_for):
    """The dashboard's address does not swallow /orgs/new/ or /orgs/switch/."""
    client = page_for(tenant_a.member)
    assert b"New organization" in client.get("/orgs/new/").content
    assert client.post("/orgs/switch/", {"organization": tenant_a.slug})["Location"] == f"/orgs/{tenant_a.slug}/"


def test_the_usage_page_shows_local_versus_cloud_cost_by_day_model_and_user(tenant_a, page_for):
    """Shares, a bar per day of the period, and the rows by model and by user come from the organization's calls."""
    org = tenant_a.organization
    make_llm_call(org, user=tenant_a.member, locality="local", model="hosted_vllm/qwen", deployment="local-qwen",
                  cost=Decimal("0"))
    make_llm_call(org, user=tenant_a.member, cost=Decimal("0.30"))
    make_llm_call(org, user=tenant_a.owner, cost=Decimal("0.10"), at=timezone.now() - timedelta(days=3))
    make_llm_call(org, user=tenant_a.owner, locality="local", model="hosted_vllm/qwen", deployment="local-qwen",
                  cost=Decimal("0"), at=timezone.now() - timedelta(days=3))
    html = page_for(tenant_a.manager).get(f"/orgs/{tenant_a.slug}/usage/", {"days": 7}).content.decode()
    assert "On-prem 50.0% and cloud 50.0% of the calls" in html
    chart = html[html.index('class="bar-chart"'):html.index("</svg>", html.index('class="bar-chart"'))]
    assert chart.count('<rect class="bar"') == 7
    assert "0.3000 USD, 2 calls" in chart
    model_rows = html[html.index('id="model-heading"'):]
    assert "hosted_vllm/qwen" in model_rows
    assert "openai/gpt-4o-mini" in model_rows
    user_rows = html[html.index('id="user-heading"'):]
    assert tenant_a.member.email in user_rows
    assert tenant_a.owner.email in user_rows
    wide = page_for(tenant_a.manager).get(f"/orgs/{tenant_a.slug}/usage/", {"days": 90}).content.decode()
    assert wide.count('<rect class="bar"') == 90
    assert page_for(tenant_a.manager).get(f"/orgs/{tenant_a.slug}/usage/", {"days": "x"}).status_code == 200


def test_usage_needs_the_usage_scope_and_stays_in_its_organization(tenants, page_for):
    """Members and viewers get 403; another organization's usage is 404; its calls never count here."""
    a, b = tenants
    make_llm_call(b.organization, user=b.member, model="openai/globex-secret-model", cost=Decimal("5"))
    assert page_for(a.member).get(f"/orgs/{a.slug}/usage/").status_code == 403
    assert page_for(a.viewer).get(f"/orgs/{a.slug}/usage/").status_code == 403
    assert page_for(a.owner).get(f"/orgs/{b.slug}/usage/").status_code == 404
    assert page_for(a.owner).get(f"/orgs/{b.slug}/").status_code == 404
    html = page_for(a.owner).get(f"/orgs/{a.slug}/usage/").content.decode()
    assert "globex-secret-model" not in html
    assert "No calls in this period." in html
    assert "5.0000" not in page_for(a.owner).get(f"/orgs/{a.slug}/").content.decode()
