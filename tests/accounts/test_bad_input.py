"""Bad input gets 400 with field-level messages, unknown ids 404, missing scopes 403; never a 500."""

from __future__ import annotations

import json

import pytest

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from accounts.roles import Scope


def _send(client, method: str, url: str, body: object = None, raw: str | None = None):
    data = raw if raw is not None else ("" if body is None else json.dumps(body))
    return client.generic(method, url, data=data, content_type="application/json")


def _counts() -> tuple[int, ...]:
    return (
        Organization.objects.count(),
        Membership.objects.dangerously_unscoped().count(),
        Invitation.objects.dangerously_unscoped().count(),
        ApiKey.objects.dangerously_unscoped().count(),
        AuditEvent.objects.dangerously_unscoped().count(),
    )


ORGS = "/api/v1/orgs/"
BAD_BODIES = [
    # (method, path under the org or "" for /orgs/, body, field expected in the answer)
    ("POST", None, {}, "name"),
    ("POST", None, {"name": ""}, "name"),
    ("POST", None, {"name": "   "}, "name"),
    ("POST", None, {"name": "x" * 201}, "name"),
    ("POST", None, {"name": "Ok", "slug": "Not A Slug!"}, "slug"),
    ("POST", None, {"name": "Ok", "slug": "UPPER"}, "slug"),
    ("POST", None, {"name": "Ok", "slug": "-leading"}, "slug"),
    ("POST", None, {"name": "Ok", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ("POST", None, {"name": "Nul\x00byte"}, "name"),
    ("POST", None, {"name": ["a", "list"]}, "name"),
    ("POST", None, {"name": "!!!"}, "slug"),  # nothing to make a slug of
    ("PATCH", "", {"timezone": "Nowhere/Town"}, "timezone"),
    ("PATCH", "", {"name": ""}, "name"),
    ("PATCH", "", {"name": None}, "name"),
    ("PATCH", "members/{member}/", {}, "role"),
    ("PATCH", "members/{member}/", {"role": "emperor"}, "role"),
    ("PATCH", "members/{member}/", {"role": 50}, "role"),
    ("POST", "invitations/", {}, "email"),
    ("POST", "invitations/", {"email": "not-an-email"}, "email"),
    ("POST", "invitations/", {"email": "ok@example.test", "role": "overlord"}, "role"),
    ("POST", "api-keys/", {"scopes": [Scope.ORG_READ]}, "name"),
    ("POST", "api-keys/", {"name": "k"}, "scopes"),
    ("POST", "api-keys/", {"name": "k", "scopes": []}, "scopes"),
    ("POST", "api-keys/", {"name": "k", "scopes": ["root:all"]}, "scopes"),
    ("POST", "api-keys/", {"name": "k", "scopes": "org:read"}, "scopes"),
    ("POST", "api-keys/", {"name": "   ", "scopes": [Scope.ORG_READ]}, "name"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_BODIES)
def test_bad_body_is_400_with_the_field_and_changes_nothing(method, path, body, field, tenant_a, client_for):
    """Malformed or missing fields get a 400 naming the field, and nothing is written."""
    member = Membership.objects.for_org(tenant_a.organization).get(user=tenant_a.member)
    url = ORGS if path is None else f"{ORGS}{tenant_a.slug}/{path.format(member=member.pk)}"
    before = _counts()
    response = _send(client_for(tenant_a.owner), method, url, body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert isinstance(response.json()[field], list | dict)  # a list field reports per item
    assert _counts() == before


@pytest.mark.parametrize(
    "raw",
    ['{"name": ', "[1, 2, 3]", '"just a string"', "null"],
    ids=["truncated", "array", "string", "null"],
)
def test_malformed_json_is_400(raw, tenant_a, client_for):
    """A body that is not a JSON object is a 400, not a 500."""
    response = _send(client_for(tenant_a.owner), "POST", f"{ORGS}{tenant_a.slug}/invitations/", raw=raw)
    assert response.status_code == 400, response.content


def test_taken_slug_is_409_on_the_slug_field(tenants, client_for):
    """Creating an organization with a slug in use (by anyone) is a 409 naming slug."""
    a, b = tenants
    response = _send(client_for(a.owner), "POST", ORGS, {"name": "Copy", "slug": b.slug})
    assert response.status_code == 409
    assert "slug" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "members/999999999/",
        "members/abc/",
        "members/99999999999999999999999999/",
        "members/-1/",
        "invitations/999999999/",
        "api-keys/999999999/",
        "api-keys/999999999/revoke/",
        "audit-events/999999999/",
        "audit-events/1.5/",
    ],
)
def test_unknown_ids_are_404(path, tenant_a, client_for):
    """An id that does not exist (or is not a number) is a 404 for every method the route has."""
    client = client_for(tenant_a.owner)
    url = f"{ORGS}{tenant_a.slug}/{path}"
    methods = ["POST"] if path.endswith("revoke/") else ["GET", "PATCH", "DELETE"]
    for method in methods:
        response = _send(client, method, url, {"role": "viewer"})
        assert response.status_code in (404, 405), f"{method} {url}: {response.status_code}"
        if method == "GET" or path.endswith("revoke/"):
            assert response.status_code == 404


@pytest.mark.parametrize("slug", ["no-such-org", "x" * 200, "UPPER", "a_b"])
def test_unknown_organization_is_404(slug, tenant_a, client_for):
    """An unknown or malformed slug is a 404 like a foreign one."""
    client = client_for(tenant_a.owner)
    assert client.get(f"{ORGS}{slug}/").status_code == 404
    assert client.get(f"{ORGS}{slug}/members/").status_code == 404


def test_missing_scope_is_403_with_a_reason(tenant_a, client_for):
    """A member without the scope gets 403 saying which scope is needed."""
    response = client_for(tenant_a.viewer).post(f"{ORGS}{tenant_a.slug}/invitations/", {"email": "x@example.test"})
    assert response.status_code == 403
    assert Scope.MEMBERS_MANAGE in response.json()["detail"]


def test_unauthenticated_is_401(tenant_a, api):
    """No credentials: 401 on every accounts endpoint, never data."""
    for url in (ORGS, f"{ORGS}{tenant_a.slug}/", f"{ORGS}{tenant_a.slug}/members/"):
        assert api.get(url).status_code == 401


def test_method_not_allowed_is_405(tenant_a, client_for):
    """A method a route does not have is a 405 for a member (the audit log cannot be written to)."""
    client = client_for(tenant_a.owner)
    assert _send(client, "POST", f"{ORGS}{tenant_a.slug}/audit-events/", {"action": "x"}).status_code == 405
    assert _send(client, "PUT", f"{ORGS}{tenant_a.slug}/", {"name": "x"}).status_code == 405
