from accounts.models import AuditEvent


def test_owner_lists_members_of_own_org(tenants, client_for):
    """An owner sees the five members of their organization and none of the other's."""
    a, _b = tenants
    response = client_for(a.owner).get(f"/api/v1/orgs/{a.slug}/members/")
    assert response.status_code == 200, response.content
    emails = {m["email"] for m in response.json()["results"]}
    assert emails == {u.email for u in a.users.values()}


def test_other_org_slug_is_404(tenants, client_for):
    """A member of one organization gets 404 for another organization's members."""
    a, b = tenants
    response = client_for(a.owner).get(f"/api/v1/orgs/{b.slug}/members/")
    assert response.status_code == 404
    response = client_for(a.owner).get("/api/v1/orgs/no-such-org/members/")
    assert response.status_code == 404


def test_create_organization_audited(tenants, client_for):
    """Creating an organization makes the caller owner and writes an audit event."""
    a, _ = tenants
    response = client_for(a.viewer).post("/api/v1/orgs/", {"name": "New Co", "timezone": "Europe/Paris"})
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "owner"
    org_id = response.json()["id"]
    events = AuditEvent.objects.dangerously_unscoped().filter(organization_id=org_id, action="organization.created")
    assert events.exists()
