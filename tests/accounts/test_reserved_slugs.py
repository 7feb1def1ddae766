import pytest

from accounts.models import Organization


@pytest.mark.parametrize("slug", ["new", "switch"])
def test_reserved_slug_is_refused(tenants, client_for, slug):
    """An organization cannot take a slug that would hide a portal page."""
    a, _ = tenants
    before = Organization.objects.count()
    response = client_for(a.owner).post("/api/v1/orgs/", {"name": "Clash", "slug": slug})
    assert response.status_code == 400
    assert "reserved" in response.json()["slug"][0]
    assert Organization.objects.count() == before
