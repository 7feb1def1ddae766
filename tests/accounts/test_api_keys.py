"""API keys: shown once, stored hashed, scoped, bound to one organization and to their creator's role."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from accounts.errors import InvalidInput
from accounts.models import ApiKey, Membership
from accounts.roles import Role, Scope
from accounts.services.api_keys import api_key_create
from accounts.services.members import membership_change_role, membership_remove
from tests.accounts.factories import make_api_key


def key_client(secret: str, keyword: str = "Api-Key") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {secret}")
    return client


def test_secret_is_shown_once_and_only_its_hash_is_stored(tenants, client_for):
    """Creating a key returns its secret once; lists and details never do, and the row holds only a SHA-256 hash."""
    a, _ = tenants
    client = client_for(a.admin)
    response = client.post(f"/api/v1/orgs/{a.slug}/api-keys/", {"name": "CI", "scopes": [Scope.MEMBERS_READ]})
    assert response.status_code == 201, response.content
    secret = response.json()["key"]
    assert secret.startswith("stf_")
    assert len(secret) > 40
    key_id = response.json()["id"]

    listing = client.get(f"/api/v1/orgs/{a.slug}/api-keys/")
    detail = client.get(f"/api/v1/orgs/{a.slug}/api-keys/{key_id}/")
    for answer in (listing, detail):
        assert answer.status_code == 200
        assert secret not in answer.content.decode()
        assert '"key"' not in answer.content.decode()

    row = ApiKey.objects.for_org(a.organization).get(pk=key_id)
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(getattr(row, f.attname)) for f in ApiKey._meta.concrete_fields]
    assert not any(secret in value for value in stored)
    assert secret.split("_", 1)[1].startswith(row.prefix)


def test_key_authenticates_and_stamps_last_use(tenants):
    """A valid key acts in its organization (both header keywords) and records when it was last used."""
    a, _ = tenants
    key, secret = make_api_key(a.organization, a.admin, scopes=[Scope.MEMBERS_READ])
    assert key.last_used_at is None
    for keyword in ("Api-Key", "Bearer"):
        response = key_client(secret, keyword).get(f"/api/v1/orgs/{a.slug}/members/")
        assert response.status_code == 200, response.content
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_key_of_one_organization_is_404_in_another(tenants):
    """A key of A gets 404 on B, even when its creator is also a member of B; B is not listed."""
    a, b = tenants
    Membership.objects.for_org(b.organization).create(organization=b.organization, user=a.admin, role=Role.ADMIN)
    _key, secret = make_api_key(a.organization, a.admin)
    client = key_client(secret)
    assert client.get(f"/api/v1/orgs/{b.slug}/").status_code == 404
    assert client.get(f"/api/v1/orgs/{b.slug}/members/").status_code == 404
    assert client.post(f"/api/v1/orgs/{b.slug}/invitations/", {"email": "x@example.test"}).status_code == 404
    slugs = [org["slug"] for org in client.get("/api/v1/orgs/").json()["results"]]
    assert slugs == [a.slug]


def test_revoked_unknown_or_malformed_key_is_401(tenants, client_for):
    """A revoked key, an unknown key and an empty key header are refused with 401."""
    a, _ = tenants
    key, secret = make_api_key(a.organization, a.admin, scopes=[Scope.MEMBERS_READ])
    assert key_client(secret).get(f"/api/v1/orgs/{a.slug}/members/").status_code == 200
    revoke = client_for(a.admin).post(f"/api/v1/orgs/{a.slug}/api-keys/{key.pk}/revoke/")
    assert revoke.status_code == 200
    assert revoke.json()["revoked_at"] is not None
    response = key_client(secret).get(f"/api/v1/orgs/{a.slug}/members/")
    assert response.status_code == 401
    assert "Api-Key" in response["WWW-Authenticate"]
    assert key_client("stf_notakey_whatsoever").get(f"/api/v1/orgs/{a.slug}/").status_code == 401
    assert key_client("").get(f"/api/v1/orgs/{a.slug}/").status_code == 401


def test_key_scopes_limit_access(tenants):
    """A key reaches only what its scopes allow: 403 for the rest, even if its creator could."""
    a, _ = tenants
    _key, secret = make_api_key(a.organization, a.owner, scopes=[Scope.ORG_READ])
    client = key_client(secret)
    assert client.get(f"/api/v1/orgs/{a.slug}/").status_code == 200
    assert client.get(f"/api/v1/orgs/{a.slug}/members/").status_code == 403
    assert client.get(f"/api/v1/orgs/{a.slug}/audit-events/").status_code == 403
    assert client.patch(f"/api/v1/orgs/{a.slug}/", {"name": "Renamed"}).status_code == 403
    assert client.post("/api/v1/orgs/", {"name": "By key"}).status_code == 403


def test_key_cannot_leave_on_behalf_of_its_creator(tenants):
    """Leaving needs only membership in person; a key without members:manage cannot remove its creator."""
    a, _ = tenants
    _key, secret = make_api_key(a.organization, a.member, scopes=[Scope.ORG_READ])
    own = Membership.objects.for_org(a.organization).get(user=a.member)
    assert key_client(secret).delete(f"/api/v1/orgs/{a.slug}/members/{own.pk}/").status_code == 403
    assert Membership.objects.for_org(a.organization).filter(pk=own.pk).exists()


def test_key_never_exceeds_its_creators_current_role(tenants):
    """After its creator is demoted, a key loses the scopes the new role lacks."""
    a, _ = tenants
    _key, secret = make_api_key(a.organization, a.admin, scopes=[Scope.MEMBERS_READ, Scope.MEMBERS_MANAGE])
    client = key_client(secret)
    invite = {"email": "first@example.test", "role": "viewer"}
    assert client.post(f"/api/v1/orgs/{a.slug}/invitations/", invite).status_code == 201

    admin = Membership.objects.for_org(a.organization).get(user=a.admin)
    membership_change_role(membership=admin, actor=a.owner, role=Role.MEMBER)
    invite = {"email": "second@example.test", "role": "viewer"}
    assert client.post(f"/api/v1/orgs/{a.slug}/invitations/", invite).status_code == 403
    assert client.get(f"/api/v1/orgs/{a.slug}/members/").status_code == 200


def test_removed_creator_key_stops_working(tenants):
    """Removing a member revokes their keys, and they stay dead if the person comes back."""
    a, _ = tenants
    key, secret = make_api_key(a.organization, a.admin, scopes=[Scope.ORG_READ])
    assert key_client(secret).get(f"/api/v1/orgs/{a.slug}/").status_code == 200
    membership_remove(membership=Membership.objects.for_org(a.organization).get(user=a.admin), actor=a.owner)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key_client(secret).get(f"/api/v1/orgs/{a.slug}/").status_code == 401
    Membership.objects.for_org(a.organization).create(organization=a.organization, user=a.admin, role=Role.ADMIN)
    assert key_client(secret).get(f"/api/v1/orgs/{a.slug}/").status_code == 401


def test_key_of_a_non_member_is_refused_even_unrevoked(tenants):
    """Authentication itself refuses a key whose creator no longer belongs to the key's organization."""
    a, _ = tenants
    _key, secret = make_api_key(a.organization, a.admin, scopes=[Scope.ORG_READ])
    Membership.objects.for_org(a.organization).filter(user=a.admin).delete()  # bypassing the service
    assert key_client(secret).get(f"/api/v1/orgs/{a.slug}/").status_code == 401
    assert key_client(secret).get("/api/v1/orgs/").status_code == 401


def test_key_of_an_inactive_user_is_refused(tenants):
    """A key of a deactivated user does not authenticate."""
    a, _ = tenants
    _key, secret = make_api_key(a.organization, a.admin, scopes=[Scope.ORG_READ])
    a.admin.is_active = False
    a.admin.save(update_fields=["is_active"])
    assert key_client(secret).get(f"/api/v1/orgs/{a.slug}/").status_code == 401


def test_key_cannot_mint_a_key_with_more_scopes_than_itself(tenants):
    """A key with apikeys:manage creates keys only within its own scopes."""
    a, _ = tenants
    _key, secret = make_api_key(a.organization, a.owner, scopes=[Scope.API_KEYS_MANAGE, Scope.ORG_READ])
    client = key_client(secret)
    wider = client.post(f"/api/v1/orgs/{a.slug}/api-keys/", {"name": "wider", "scopes": [Scope.MEMBERS_MANAGE]})
    assert wider.status_code == 400
    assert "scopes" in wider.json()
    narrower = client.post(f"/api/v1/orgs/{a.slug}/api-keys/", {"name": "narrower", "scopes": [Scope.ORG_READ]})
    assert narrower.status_code == 201, narrower.content


def test_key_scopes_never_exceed_the_creators_role(tenants):
    """A member cannot issue a key with a scope that the member role lacks."""
    a, _ = tenants
    with pytest.raises(InvalidInput) as refused:
        api_key_create(organization=a.organization, actor=a.member, name="k", scopes=[Scope.MEMBERS_MANAGE])
    assert refused.value.field == "scopes"
    issued = api_key_create(organization=a.organization, actor=a.member, name="k", scopes=[Scope.TASKS_WRITE])
    assert issued.api_key.scopes == [Scope.TASKS_WRITE]


def test_revoking_another_organizations_key_is_404(tenants, client_for):
    """An admin of A cannot revoke B's key, by either slug."""
    a, b = tenants
    key, _secret = make_api_key(b.organization, b.admin, scopes=[Scope.ORG_READ])
    client = client_for(a.admin)
    assert client.post(f"/api/v1/orgs/{a.slug}/api-keys/{key.pk}/revoke/").status_code == 404
    assert client.post(f"/api/v1/orgs/{b.slug}/api-keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
