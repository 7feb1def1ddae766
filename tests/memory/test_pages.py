"""The Business Memory page: totals, search, edit, conflicts, forget and clear, per role and organization."""

from __future__ import annotations

import pytest
from django.test import Client

from memory.models import Conflict, Fact
from memory.services.entities import entity_upsert
from memory.services.facts import FactInput, fact_remember

pytestmark = pytest.mark.django_db


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def remember(org, text, **kwargs):
    return fact_remember(organization=org, candidate=FactInput(text=text, **kwargs))


def test_page_shows_totals_facts_search_and_conflicts(tenant_a):
    """A viewer sees totals, facts, search results and pending questions, but no edit controls."""
    org = tenant_a.organization
    remember(org, "We invoice on the first business day", category="company")
    person = entity_upsert(organization=org, kind="person", name="John", attributes={"role": "CFO"})[0]
    remember(org, "John is the CEO", subject=person, predicate="role", value="CEO", category="team")
    response = page_for(tenant_a.viewer).get(f"/orgs/{tenant_a.slug}/memory/", {"q": "when do we invoice"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Business Memory" in html
    assert "We invoice on the first business day" in html
    assert "You said" in html
    assert "Delete" not in html


def test_member_edits_resolves_forgets_and_clears(tenant_a):
    """A member edits a fact (new version), answers a question, forgets a topic and clears their data."""
    org = tenant_a.organization
    client = page_for(tenant_a.member)
    fact = remember(org, "Standup is at 9:30", category="team").fact
    assert client.post(f"/orgs/{tenant_a.slug}/memory/facts/{fact.pk}/edit/", {"text": "Standup is at 10:00"}
                       ).status_code == 302
    assert Fact.objects.for_org(org).get(status="active").text == "Standup is at 10:00"
    person = entity_upsert(organization=org, kind="person", name="John", attributes={"role": "CFO"})[0]
    conflict = remember(org, "John is the CEO", subject=person, predicate="role", value="CEO",
                        category="team").conflict
    client.post(f"/orgs/{tenant_a.slug}/memory/conflicts/{conflict.pk}/resolve/", {"resolution": "accept_new"})
    assert Conflict.objects.for_org(org).get(pk=conflict.pk).status == "resolved"
    remember(org, "Falcon ships in May", category="projects")
    client.post(f"/orgs/{tenant_a.slug}/memory/forget/", {"topic": "Falcon"})
    assert not Fact.objects.for_org(org).filter(text__icontains="falcon").exists()
    assert client.post(f"/orgs/{tenant_a.slug}/memory/clear/", {"scope": "all"}).status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/memory/clear/", {"scope": "mine"}).status_code == 302


def test_viewer_cannot_post_and_other_organization_is_404(tenants):
    """A viewer's posts are refused; another organization's page and rows answer 404 and change nothing."""
    a, b = tenants
    fact_b = remember(b.organization, "B's fact", category="company").fact
    viewer = page_for(a.viewer)
    assert viewer.post(f"/orgs/{a.slug}/memory/forget/", {"topic": "x"}).status_code == 403
    owner = page_for(a.owner)
    assert owner.get(f"/orgs/{b.slug}/memory/").status_code == 404
    assert owner.post(f"/orgs/{a.slug}/memory/facts/{fact_b.pk}/delete/").status_code == 404
    assert owner.post(f"/orgs/{b.slug}/memory/facts/{fact_b.pk}/delete/").status_code == 404
    assert owner.post(f"/orgs/{b.slug}/memory/clear/", {"scope": "all"}).status_code == 404
    assert Fact.objects.for_org(b.organization).filter(pk=fact_b.pk).exists()
