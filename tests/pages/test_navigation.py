from __future__ import annotations

from accounts.roles import Role
from tests.factories import MembershipFactory, OrganizationFactory


def test_switcher_lists_only_the_users_organizations(tenants, page_for):
    """The organization switcher offers the user's organizations and never another one."""
    a, b = tenants
    second = OrganizationFactory(slug="second", name="Second Shop")
    MembershipFactory(organization=second, user=a.member, role=Role.VIEWER)
    page = page_for(a.member).get(f"/orgs/{a.slug}/")
    assert b'<option value="acme" selected>Acme Corp</option>' in page.content
    assert b'<option value="second">Second Shop</option>' in page.content
    assert b.organization.name.encode() not in page.content


def test_switching_stores_the_organization_in_the_session(tenant_a, page_for):
    """Switching to another of one's organizations makes it current and opens its overview."""
    second = OrganizationFactory(slug="second", name="Second Shop")
    MembershipFactory(organization=second, user=tenant_a.member, role=Role.VIEWER)
    client = page_for(tenant_a.member)
    response = client.post("/orgs/switch/", {"organization": "second"})
    assert response.status_code == 302
    assert response["Location"] == "/orgs/second/"
    assert client.session["current_org"] == "second"
    assert client.get("/")["Location"] == "/orgs/second/"


def test_switching_to_a_foreign_organization_is_404_and_changes_nothing(tenants, page_for):
    """A foreign slug in the switcher answers 404, like an unknown one, and keeps the current organization."""
    a, b = tenants
    client = page_for(a.owner)
    client.post("/orgs/switch/", {"organization": a.slug})
    assert client.post("/orgs/switch/", {"organization": b.slug}).status_code == 404
    assert client.post("/orgs/switch/", {"organization": "no-such-org"}).status_code == 404
    assert client.session["current_org"] == a.slug


def test_navigation_shows_links_by_role_and_admin_only_to_staff(tenant_a, page_for):
    """API keys appear only for roles that manage them; the admin link only for staff users."""
    viewer_page = page_for(tenant_a.viewer).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert f'href="/orgs/{tenant_a.slug}/members/"' in viewer_page
    assert "API keys" not in viewer_page
    assert 'href="/admin/"' not in viewer_page
    owner = tenant_a.owner
    owner.is_staff = True
    owner.save()
    owner_page = page_for(owner).get(f"/orgs/{tenant_a.slug}/").content.decode()
    assert f'href="/orgs/{tenant_a.slug}/api-keys/"' in owner_page
    assert 'href="/admin/"' in owner_page


def test_a_removed_current_organization_falls_back_to_another(tenant_a, page_for):
    """If the session names an organization the user no longer belongs to, the first remaining one is used."""
    client = page_for(tenant_a.member)
    session = client.session
    session["current_org"] = "globex"
    session.save()
    assert client.get("/")["Location"] == f"/orgs/{tenant_a.slug}/"
