"""The memory API: facts, conflicts, entities and graph, export/import, analytics, settings, forget."""

from __future__ import annotations

import pytest

from memory.models import Conflict, Entity, Fact
from memory.services.entities import entity_upsert
from memory.services.facts import FactInput, fact_remember

pytestmark = pytest.mark.django_db


def base(tenant):
    return f"/api/v1/orgs/{tenant.slug}/memory"


def test_fact_lifecycle_create_search_edit_history_delete(tenant_a, client_for):
    """A member remembers, finds, edits (new version with history) and deletes a fact."""
    client = client_for(tenant_a.member)
    url = base(tenant_a)
    created = client.post(f"{url}/facts/", {"text": "Invoices go out on the 1st of the month",
                                            "category": "company"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["outcome"] == "created"
    fact_id = created.json()["fact"]["id"]
    again = client.post(f"{url}/facts/", {"text": "invoices go out on the 1st of the month", "category": "company"},
                        format="json")
    assert again.json()["outcome"] == "reinforced"
    found = client.get(f"{url}/facts/search/", {"q": "when are invoices sent"})
    assert found.status_code == 200
    assert found.json()[0]["fact"]["id"] == fact_id
    edited = client.patch(f"{url}/facts/{fact_id}/", {"text": "Invoices go out on the 2nd of the month"},
                          format="json")
    assert edited.status_code == 200, edited.content
    new_id = edited.json()["fact"]["id"]
    history = client.get(f"{url}/facts/{new_id}/history/").json()
    assert [h["text"] for h in history] == ["Invoices go out on the 1st of the month",
                                            "Invoices go out on the 2nd of the month"]
    listed = client.get(f"{url}/facts/").json()
    assert [f["id"] for f in listed["results"]] == [new_id]
    assert client.delete(f"{url}/facts/{new_id}/").status_code == 204
    assert not Fact.objects.for_org(tenant_a.organization).filter(pk=new_id).exists()


def test_conflict_is_created_and_resolved_through_the_api(tenant_a, client_for):
    """A contradiction answers with the question; resolving it supersedes the old value."""
    client = client_for(tenant_a.member)
    url = base(tenant_a)
    person = client.post(f"{url}/entities/", {"kind": "person", "name": "John Park",
                                             "attributes": {"email": "john@acme.example"}}, format="json").json()
    result = client.post(f"{url}/facts/", {"text": "John Park's email is jp@acme.example", "subject": person["id"],
                                           "predicate": "email", "value": "jp@acme.example", "category": "team"},
                         format="json").json()
    assert result["outcome"] == "conflict"
    assert result["conflict"]["question"].startswith("You said")
    pending = client.get(f"{url}/conflicts/", {"status": "pending"}).json()["results"]
    assert [c["id"] for c in pending] == [result["conflict"]["id"]]
    resolved = client.post(f"{url}/conflicts/{pending[0]['id']}/resolve/", {"resolution": "accept_new"},
                           format="json")
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert Entity.objects.for_org(tenant_a.organization).get(pk=person["id"]).attributes["email"] == "jp@acme.example"
    again = client.post(f"{url}/conflicts/{pending[0]['id']}/resolve/", {"resolution": "keep_both"}, format="json")
    assert again.status_code == 400


def test_entities_relationships_and_graph(tenant_a, client_for):
    """Entities and relationships come back as a graph of nodes and edges."""
    client = client_for(tenant_a.member)
    url = base(tenant_a)
    ann = client.post(f"{url}/entities/", {"kind": "person", "name": "Ann"}, format="json").json()
    team = client.post(f"{url}/entities/", {"kind": "team", "name": "Engineering", "aliases": ["eng"]},
                       format="json").json()
    rel = client.post(f"{url}/relationships/", {"kind": "member_of", "source": ann["id"], "target": team["id"]},
                      format="json")
    assert rel.status_code == 201, rel.content
    graph = client.get(f"{url}/entities/graph/").json()
    assert {n["name"] for n in graph["nodes"]} == {"Ann", "Engineering"}
    assert graph["edges"] == [{"id": rel.json()["id"], "kind": "member_of", "source": ann["id"],
                               "target": team["id"], "valid_from": None, "valid_to": None}]
    detail = client.get(f"{url}/entities/{ann['id']}/").json()
    assert [r["kind"] for r in detail["relationships"]] == ["member_of"]
    resolved = client.get(f"{url}/resolve/", {"phrase": "the eng team"}).json()
    assert [e["name"] for e in resolved["entities"]] == ["Ann"]


def test_relationship_or_subject_of_another_organization_is_400(tenants, client_for):
    """Pointing at another organization's entity is refused with the field named, and nothing is written."""
    a, b = tenants
    theirs = entity_upsert(organization=b.organization, kind="team", name="Their team")[0]
    client = client_for(a.member)
    mine = client.post(f"{base(a)}/entities/", {"kind": "person", "name": "Ann"}, format="json").json()
    rel = client.post(f"{base(a)}/relationships/", {"kind": "member_of", "source": mine["id"],
                                                    "target": theirs.pk}, format="json")
    assert rel.status_code == 400
    assert "target" in rel.json()
    fact = client.post(f"{base(a)}/facts/", {"text": "x", "subject": theirs.pk}, format="json")
    assert fact.status_code == 400
    assert "subject" in fact.json()
    assert not Fact.objects.for_org(a.organization).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "ok", "category": "gossip"}, "category"),
        ({"text": "ok", "value": "v" * 1001}, "value"),
        ({"text": "ok", "confidence": 2}, "confidence"),
        ({"text": "ok", "valid_from": "2024-01-02T00:00:00Z", "valid_to": "2023-01-01T00:00:00Z"}, "valid_to"),
        ({"text": "my password is hunter2"}, "text"),
    ],
)
def test_bad_fact_input_is_400_with_the_field(tenant_a, client_for, payload, field):
    """Empty or over-long values, unknown categories, bad periods and secrets: 400 naming the field."""
    response = client_for(tenant_a.member).post(f"{base(tenant_a)}/facts/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert "hunter2" not in response.content.decode()
    assert not Fact.objects.for_org(tenant_a.organization).exists()


def test_viewer_reads_but_cannot_write(tenant_a, client_for):
    """memory:read lets a viewer list and search; writing needs memory:write."""
    client = client_for(tenant_a.viewer)
    assert client.get(f"{base(tenant_a)}/facts/").status_code == 200
    assert client.get(f"{base(tenant_a)}/facts/search/", {"q": "anything"}).status_code == 200
    assert client.post(f"{base(tenant_a)}/facts/", {"text": "x"}, format="json").status_code == 403
    assert client.post(f"{base(tenant_a)}/forget/", {"topic": "x"}, format="json").status_code == 403


def test_settings_need_an_admin_and_clear_all_needs_org_write(tenant_a, client_for):
    """A member reads settings but cannot change them, and can clear only their own data."""
    member, admin = client_for(tenant_a.member), client_for(tenant_a.admin)
    url = base(tenant_a)
    assert member.get(f"{url}/settings/").json()["auto_expiry_days"] == 180
    assert member.patch(f"{url}/settings/", {"enabled": False}, format="json").status_code == 403
    changed = admin.patch(f"{url}/settings/", {"allowed_categories": ["company"], "auto_expiry_days": 30},
                          format="json")
    assert changed.status_code == 200
    assert changed.json()["allowed_categories"] == ["company"]
    assert admin.patch(f"{url}/settings/", {"auto_expiry_days": -1}, format="json").status_code == 400
    assert admin.patch(f"{url}/settings/", {"allowed_categories": ["gossip"]}, format="json").status_code == 400
    refused = member.post(f"{url}/facts/", {"text": "We like tea", "category": "preferences"}, format="json")
    assert refused.status_code == 400
    assert member.post(f"{url}/clear/", {"scope": "all"}, format="json").status_code == 403
    assert member.post(f"{url}/clear/", {"scope": "mine"}, format="json").status_code == 200
    assert admin.post(f"{url}/clear/", {"scope": "all"}, format="json").status_code == 200


def test_export_import_round_trip_through_the_api(tenants, client_for):
    """JSON exported from one organization imports into another with the same facts; Markdown is readable."""
    a, b = tenants
    fact_remember(organization=a.organization, candidate=FactInput(text="We ship on Tuesdays", category="company"))
    exported = client_for(a.admin).get(f"{base(a)}/export/")
    assert exported.status_code == 200
    markdown = client_for(a.admin).get(f"{base(a)}/export-markdown/")
    assert markdown["Content-Type"].startswith("text/markdown")
    assert "We ship on Tuesdays" in markdown.content.decode()
    imported = client_for(b.admin).post(f"{base(b)}/import/", exported.json(), format="json")
    assert imported.status_code == 201, imported.content
    assert imported.json()["facts"] == 1
    assert list(Fact.objects.for_org(b.organization).values_list("text", flat=True)) == ["We ship on Tuesdays"]
    bad = client_for(b.admin).post(f"{base(b)}/import/", {"format": "staffer-memory", "version": 1, "facts": [
        {"ref": "f1", "text": "fine"}, {"ref": "f2", "text": "bad", "category": "nope"}]}, format="json")
    assert bad.status_code == 400
    assert "facts[1].category" in bad.json()["detail"]
    assert Fact.objects.for_org(b.organization).count() == 1


def test_forget_about_analytics_and_my_data(tenant_a, client_for):
    """Forget a topic, ask what is known about someone, read analytics and my data."""
    client = client_for(tenant_a.member)
    url = base(tenant_a)
    client.post(f"{url}/entities/", {"kind": "person", "name": "Mia Member",
                                     "attributes": {"email": tenant_a.member.email}}, format="json")
    client.post(f"{url}/facts/", {"text": "Project Falcon is late", "category": "projects"}, format="json")
    about = client.get(f"{url}/about/", {"q": "Mia Member"}).json()
    assert about["entity"]["name"] == "Mia Member"
    assert [f["predicate"] for f in about["facts"]] == ["email"]
    mine = client.get(f"{url}/my-data/").json()
    assert len(mine["facts"]) == 2
    dry = client.post(f"{url}/forget/", {"topic": "Falcon", "dry_run": True}, format="json").json()
    assert dry["facts"] == 1
    gone = client.post(f"{url}/forget/", {"topic": "Falcon"}, format="json").json()
    assert gone["facts"] == 1
    assert client.post(f"{url}/forget/", {}, format="json").status_code == 400
    stats = client.get(f"{url}/analytics/").json()
    assert stats["facts_current"] == 1
    assert stats["by_category"]["team"] == 1
    assert Conflict.objects.for_org(tenant_a.organization).count() == 0
