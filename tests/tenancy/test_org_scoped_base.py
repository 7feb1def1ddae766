"""The org-scoped API base: one 404 for "no such organization" and "not yours", no scope left behind."""

from __future__ import annotations

import pytest

from accounts.api.base import OrgScopedViewSet
from accounts.models import Membership
from accounts.roles import Scope
from accounts.tenancy import current_organization


def test_overriding_get_queryset_is_refused():
    """A viewset that overrides get_queryset (and so could skip the organization filter) cannot be defined."""
    with pytest.raises(TypeError, match="scope_queryset"):

        class Leaky(OrgScopedViewSet):
            model = Membership
            read_scope = Scope.MEMBERS_READ
            write_scope = Scope.MEMBERS_MANAGE

            def get_queryset(self):
                return Membership.objects.dangerously_unscoped()


@pytest.mark.parametrize("path", ["", "members/", "api-keys/", "audit-events/"])
def test_unknown_and_foreign_organizations_answer_identically(path, tenants, client_for):
    """A foreign slug and a slug that does not exist give the same status and the same body."""
    a, b = tenants
    client = client_for(a.owner)
    foreign = client.get(f"/api/v1/orgs/{b.slug}/{path}")
    unknown = client.get(f"/api/v1/orgs/no-such-organization/{path}")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()


def test_scope_check_comes_after_membership(tenants, client_for):
    """A viewer of A asking for B's audit log gets 404 (not 403, which would confirm that B exists)."""
    a, b = tenants
    assert client_for(a.viewer).get(f"/api/v1/orgs/{b.slug}/audit-events/").status_code == 404
    assert client_for(a.viewer).get(f"/api/v1/orgs/{a.slug}/audit-events/").status_code == 403


def test_organization_scope_does_not_outlive_the_request(tenant_a, client_for):
    """After a request (successful or refused), no organization is left in scope on the thread."""
    client = client_for(tenant_a.viewer)
    assert client.get(f"/api/v1/orgs/{tenant_a.slug}/members/").status_code == 200
    assert current_organization() is None
    assert client.get(f"/api/v1/orgs/{tenant_a.slug}/audit-events/").status_code == 403
    assert current_organization() is None
    assert client.get(f"/api/v1/orgs/{tenant_a.slug}/members/999999/").status_code == 404
    assert current_organization() is None
