"""Every role against every accounts endpoint: the expected status.

The minimum role of each endpoint is written out here, not derived from
ROLE_SCOPES, so a change of the role -> scope mapping shows up as a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from accounts.models import AuditEvent, Membership
from accounts.roles import Role, Scope
from tests.accounts.factories import make_api_key, make_audit_event, make_invitation, make_member


@dataclass
class Setup:
    slug: str
    extra: Membership  # a plain member, the target of role changes and removals
    invitation_id: int
    api_key_id: int
    audit_event_id: int
    own_membership_id: int = 0


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[Setup], str]
    min_role: Role | None  # None: every member
    ok: int
    body: dict[str, Any] | None = None
    exceptions: dict[Role, int] = field(default_factory=dict)


ENDPOINTS = [
    Endpoint("my organizations", "GET", lambda s: "/api/v1/orgs/", None, 200),
    Endpoint("create organization", "POST", lambda s: "/api/v1/orgs/", None, 201, {"name": "Side Project"}),
    Endpoint("organization detail", "GET", lambda s: f"/api/v1/orgs/{s.slug}/", None, 200),
    Endpoint("update organization", "PATCH", lambda s: f"/api/v1/orgs/{s.slug}/", Role.ADMIN, 200, {"name": "New"}),
    Endpoint("list members", "GET", lambda s: f"/api/v1/orgs/{s.slug}/members/", None, 200),
    Endpoint("member detail", "GET", lambda s: f"/api/v1/orgs/{s.slug}/members/{s.extra.pk}/", None, 200),
    Endpoint(
        "change a member's role",
        "PATCH",
        lambda s: f"/api/v1/orgs/{s.slug}/members/{s.extra.pk}/",
        Role.ADMIN,
        200,
        {"role": "viewer"},
    ),
    Endpoint("remove a member", "DELETE", lambda s: f"/api/v1/orgs/{s.slug}/members/{s.extra.pk}/", Role.ADMIN, 204),
    Endpoint(
        "leave the organization",
        "DELETE",
        lambda s: f"/api/v1/orgs/{s.slug}/members/{s.own_membership_id}/",
        None,
        204,
        exceptions={Role.OWNER: 400},  # the only owner cannot leave
    ),
    Endpoint("list invitations", "GET", lambda s: f"/api/v1/orgs/{s.slug}/invitations/", Role.ADMIN, 200),
    Endpoint(
        "invitation detail", "GET", lambda s: f"/api/v1/orgs/{s.slug}/invitations/{s.invitation_id}/", Role.ADMIN, 200
    ),
    Endpoint(
        "invite",
        "POST",
        lambda s: f"/api/v1/orgs/{s.slug}/invitations/",
        Role.ADMIN,
        201,
        {"email": "new.person@example.test", "role": "member"},
    ),
    Endpoint(
        "revoke an invitation",
        "DELETE",
        lambda s: f"/api/v1/orgs/{s.slug}/invitations/{s.invitation_id}/",
        Role.ADMIN,
        204,
    ),
    Endpoint("list API keys", "GET", lambda s: f"/api/v1/orgs/{s.slug}/api-keys/", Role.ADMIN, 200),
    Endpoint("API key detail", "GET", lambda s: f"/api/v1/orgs/{s.slug}/api-keys/{s.api_key_id}/", Role.ADMIN, 200),
    Endpoint(
        "create an API key",
        "POST",
        lambda s: f"/api/v1/orgs/{s.slug}/api-keys/",
        Role.ADMIN,
        201,
        {"name": "ci", "scopes": [Scope.ORG_READ]},
    ),
    Endpoint(
        "revoke an API key",
        "POST",
        lambda s: f"/api/v1/orgs/{s.slug}/api-keys/{s.api_key_id}/revoke/",
        Role.ADMIN,
        200,
    ),
    Endpoint("list audit events", "GET", lambda s: f"/api/v1/orgs/{s.slug}/audit-events/", Role.MANAGER, 200),
    Endpoint(
        "audit event detail",
        "GET",
        lambda s: f"/api/v1/orgs/{s.slug}/audit-events/{s.audit_event_id}/",
        Role.MANAGER,
        200,
    ),
]


def expected_status(endpoint: Endpoint, role: Role) -> int:
    if role in endpoint.exceptions:
        return endpoint.exceptions[role]
    if endpoint.min_role is None or role >= endpoint.min_role:
        return endpoint.ok
    return 403


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.slug)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_role_gets_expected_status(endpoint: Endpoint, role: Role, tenants, client_for):
    """Each role gets the endpoint's success status from its minimum role up, and 403 below it."""
    a, _b = tenants
    user = a.users[role]
    setup = Setup(
        slug=a.slug,
        extra=make_member(a.organization, Role.MEMBER),
        invitation_id=make_invitation(a.organization, a.owner)[0].pk,
        api_key_id=make_api_key(a.organization, a.owner, scopes=[Scope.ORG_READ])[0].pk,
        audit_event_id=make_audit_event(a.organization, a.owner).pk,
        own_membership_id=Membership.objects.for_org(a.organization).get(user=user).pk,
    )
    events_before = AuditEvent.objects.dangerously_unscoped().count()
    response = client_for(user).generic(
        endpoint.method,
        endpoint.path(setup),
        data="" if endpoint.body is None else json.dumps(endpoint.body),
        content_type="application/json",
    )
    expected = expected_status(endpoint, role)
    assert response.status_code == expected, (
        f"{role.slug} {endpoint.method} {endpoint.path(setup)}: {response.status_code} {response.content[:300]!r}"
    )
    if expected >= 400 or endpoint.method == "GET":
        assert AuditEvent.objects.dangerously_unscoped().count() == events_before, "a refused request wrote an event"
    else:
        assert AuditEvent.objects.dangerously_unscoped().count() == events_before + 1, "a change wrote no event"


def test_matrix_covers_every_accounts_route():
    """The matrix names every accounts route (a new route must be added to it)."""
    from tests.tenancy.routes import org_scoped_api_routes

    covered = {
        e.path(Setup(slug="x", extra=Membership(pk=1), invitation_id=1, api_key_id=1, audit_event_id=1))
        .replace("/1/", "/{pk}/")
        .replace("/x/", "/{org}/")
        for e in ENDPOINTS
    }
    accounts_views = {"OrganizationDetailViewSet", "MembershipViewSet", "InvitationViewSet", "ApiKeyViewSet",
                      "AuditEventViewSet"}
    for route in org_scoped_api_routes():
        if route.view.__name__ not in accounts_views:
            continue
        path = route.url(org_slug="{org}", pk="{pk}")
        assert path in covered, f"{path} is missing from the role matrix"
