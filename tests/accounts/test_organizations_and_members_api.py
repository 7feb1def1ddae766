"""My organizations (list, create, update) and members (list, change role, remove) through the API."""

from __future__ import annotations

from accounts.models import AuditEvent, Membership, Organization
from accounts.roles import Role
from tests.accounts.factories import make_member


def test_my_organizations_lists_only_mine_with_my_role(tenants, client_for):
    """The list holds the caller's organizations only, each with the caller's role there."""
    a, b = tenants
    Membership.objects.for_org(b.organization).create(organization=b.organization, user=a.viewer, role=Role.ADMIN)
    Organization.objects.create(slug="stranger", name="Stranger Things Ltd")
    response = client_for(a.viewer).get("/api/v1/orgs/")
    assert response.status_code == 200
    rows = {row["slug"]: row["role"] for row in response.json()["results"]}
    assert rows == {a.slug: "viewer", b.slug: "admin"}


def test_create_organization_with_derived_slug(tenant_a, client_for):
    """Creating an organization derives the slug from the name and makes the caller its only member, as owner."""
    response = client_for(tenant_a.member).post("/api/v1/orgs/", {"name": "Blue Harbor Café"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "blue-harbor-cafe"
    assert body["timezone"] == "UTC"
    organization = Organization.objects.get(pk=body["id"])
    memberships = list(Membership.objects.for_org(organization).values_list("user_id", "role"))
    assert memberships == [(tenant_a.member.pk, Role.OWNER)]


def test_update_organization(tenant_a, client_for):
    """An admin renames the organization and changes its time zone; one audit event records before/after."""
    response = client_for(tenant_a.admin).patch(
        f"/api/v1/orgs/{tenant_a.slug}/", {"name": "Acme Holdings", "timezone": "Europe/Berlin"}
    )
    assert response.status_code == 200, response.content
    tenant_a.organization.refresh_from_db()
    assert (tenant_a.organization.name, tenant_a.organization.timezone) == ("Acme Holdings", "Europe/Berlin")
    event = AuditEvent.objects.for_org(tenant_a.organization).get(action="organization.updated")
    assert event.before == {"name": "Acme Corp", "timezone": "UTC"}
    assert event.after == {"name": "Acme Holdings", "timezone": "Europe/Berlin"}


def test_update_without_change_writes_nothing(tenant_a, client_for):
    """Saving the same values is a 200 with no audit event."""
    response = client_for(tenant_a.owner).patch(f"/api/v1/orgs/{tenant_a.slug}/", {"name": "Acme Corp"})
    assert response.status_code == 200
    assert not AuditEvent.objects.for_org(tenant_a.organization).filter(action="organization.updated").exists()


def test_slug_cannot_be_changed(tenant_a, client_for):
    """The slug is the organization's address in every URL: PATCH ignores it."""
    response = client_for(tenant_a.owner).patch(f"/api/v1/orgs/{tenant_a.slug}/", {"slug": "hijack"})
    assert response.status_code == 200
    tenant_a.organization.refresh_from_db()
    assert tenant_a.organization.slug == "acme"


def test_members_list_is_paginated_and_query_bounded(tenant_a, client_for, django_assert_max_num_queries):
    """Listing members costs a fixed number of queries however many members there are."""
    for _ in range(20):
        make_member(tenant_a.organization)
    client = client_for(tenant_a.viewer)
    with django_assert_max_num_queries(8):
        response = client.get(f"/api/v1/orgs/{tenant_a.slug}/members/?limit=10")
    assert response.status_code == 200
    assert response.json()["count"] == 25
    assert len(response.json()["results"]) == 10
    roles = [row["role"] for row in client.get(f"/api/v1/orgs/{tenant_a.slug}/members/").json()["results"]]
    assert roles[0] == "owner"


def test_change_role_and_remove(tenant_a, client_for):
    """An admin changes a member's role and removes them; each writes its event."""
    target = make_member(tenant_a.organization, Role.VIEWER)
    client = client_for(tenant_a.admin)
    url = f"/api/v1/orgs/{tenant_a.slug}/members/{target.pk}/"
    response = client.patch(url, {"role": "manager"})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "manager"
    target.refresh_from_db()
    assert target.role == Role.MANAGER
    assert client.delete(url).status_code == 204
    assert not Membership.objects.for_org(tenant_a.organization).filter(pk=target.pk).exists()
    actions = list(
        AuditEvent.objects.for_org(tenant_a.organization).order_by("id").values_list("action", flat=True)
    )
    assert actions[-2:] == ["member.role_changed", "member.removed"]


def test_member_can_leave(tenant_a, client_for):
    """A viewer removes their own membership and loses access (404 afterwards)."""
    own = Membership.objects.for_org(tenant_a.organization).get(user=tenant_a.viewer)
    client = client_for(tenant_a.viewer)
    assert client.delete(f"/api/v1/orgs/{tenant_a.slug}/members/{own.pk}/").status_code == 204
    assert client.get(f"/api/v1/orgs/{tenant_a.slug}/").status_code == 404


def test_cross_organization_member_change_is_404_and_changes_nothing(tenants, client_for):
    """An owner of A cannot change or remove a member of B, by either slug."""
    a, b = tenants
    target = Membership.objects.for_org(b.organization).get(user=b.member)
    client = client_for(a.owner)
    for slug in (a.slug, b.slug):
        url = f"/api/v1/orgs/{slug}/members/{target.pk}/"
        assert client.patch(url, {"role": "viewer"}).status_code == 404
        assert client.delete(url).status_code == 404
    target.refresh_from_db()
    assert target.role == Role.MEMBER
