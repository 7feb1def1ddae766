"""Invitations by email: a token shown once, stored hashed, for one address, used once, expiring."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.errors import Forbidden, InvalidInput, NotFound
from accounts.models import Invitation, Membership
from accounts.roles import Role
from accounts.services.invitations import invitation_accept, invitation_create, invitation_revoke
from tests.factories import UserFactory


def _open_invitation(tenant, email="new.hire@example.test", role=Role.MANAGER):
    issued = invitation_create(organization=tenant.organization, actor=tenant.owner, email=email, role=role)
    return issued.invitation, issued.token


def test_invite_by_api_returns_the_link_once_and_emails_it(tenant_a, client_for, django_capture_on_commit_callbacks):
    """An admin invites by email: the accept link is in the response and the email, and only a hash is stored."""
    client = client_for(tenant_a.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/orgs/{tenant_a.slug}/invitations/", {"email": "New.Hire@Example.test", "role": "manager"}
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.hire@example.test"
    assert body["role"] == "manager"
    assert body["status"] == "open"
    token = body["accept_url"].rstrip("/").rsplit("/", 1)[-1]
    invitation = Invitation.objects.for_org(tenant_a.organization).get(pk=body["id"])
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert invitation.expires_at > timezone.now() + timedelta(days=1)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.hire@example.test"]
    assert token in mail.outbox[0].body
    listing = client.get(f"/api/v1/orgs/{tenant_a.slug}/invitations/")
    assert token not in listing.content.decode()
    assert "accept_url" not in listing.content.decode()


def test_invitee_accepts_and_joins_with_the_role(tenant_a):
    """Accepting with the invited address creates the membership with the invited role."""
    invitation, token = _open_invitation(tenant_a)
    user = UserFactory(email="new.hire@example.test")
    membership = invitation_accept(token=token, user=user)
    assert membership.organization_id == tenant_a.organization.pk
    assert membership.role == Role.MANAGER
    invitation.refresh_from_db()
    assert invitation.accepted_by_id == user.pk
    assert invitation.accepted_at is not None


def test_expired_invitation_is_refused(tenant_a):
    """An invitation past its expiry cannot be accepted."""
    invitation, token = _open_invitation(tenant_a)
    Invitation.objects.for_org(tenant_a.organization).filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    user = UserFactory(email="new.hire@example.test")
    with pytest.raises(InvalidInput) as refused:
        invitation_accept(token=token, user=user)
    assert refused.value.code == "expired"
    assert not Membership.objects.for_org(tenant_a.organization).filter(user=user).exists()


def test_expired_invitation_makes_way_for_a_new_one(tenant_a):
    """After an invitation expires, the same address can be invited again; the old token stays dead."""
    invitation, old_token = _open_invitation(tenant_a)
    Invitation.objects.for_org(tenant_a.organization).filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    _new, new_token = _open_invitation(tenant_a)
    user = UserFactory(email="new.hire@example.test")
    with pytest.raises(NotFound):
        invitation_accept(token=old_token, user=user)
    assert invitation_accept(token=new_token, user=user).role == Role.MANAGER


def test_open_invitation_cannot_be_duplicated_and_members_cannot_be_invited(tenant_a, client_for):
    """Inviting an address with an open invitation, or an existing member, is a 409 on the email field."""
    _open_invitation(tenant_a)
    client = client_for(tenant_a.owner)
    url = f"/api/v1/orgs/{tenant_a.slug}/invitations/"
    again = client.post(url, {"email": "NEW.HIRE@example.test", "role": "viewer"})
    assert again.status_code == 409
    assert "email" in again.json()
    member = client.post(url, {"email": tenant_a.viewer.email})
    assert member.status_code == 409
    assert "email" in member.json()


def test_wrong_email_cannot_accept(tenant_a):
    """Someone logged in with another address cannot use the invitation; it stays open for the invitee."""
    invitation, token = _open_invitation(tenant_a)
    intruder = UserFactory(email="intruder@example.test")
    with pytest.raises(Forbidden):
        invitation_accept(token=token, user=intruder)
    assert not Membership.objects.for_org(tenant_a.organization).filter(user=intruder).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_invitation_is_used_once(tenant_a):
    """An accepted invitation cannot be used again (even after the person left)."""
    _invitation, token = _open_invitation(tenant_a)
    user = UserFactory(email="new.hire@example.test")
    membership = invitation_accept(token=token, user=user)
    membership.delete()
    with pytest.raises(NotFound):
        invitation_accept(token=token, user=user)
    assert not Membership.objects.for_org(tenant_a.organization).filter(user=user).exists()


def test_unknown_token_is_not_found(tenant_a):
    """A made-up token finds nothing."""
    with pytest.raises(NotFound):
        invitation_accept(token="not-a-real-token", user=tenant_a.viewer)


def test_revoked_invitation_cannot_be_accepted(tenant_a, client_for):
    """An admin revokes an open invitation (204); the token then finds nothing and the list says revoked."""
    invitation, token = _open_invitation(tenant_a)
    client = client_for(tenant_a.admin)
    response = client.delete(f"/api/v1/orgs/{tenant_a.slug}/invitations/{invitation.pk}/")
    assert response.status_code == 204
    assert client.delete(f"/api/v1/orgs/{tenant_a.slug}/invitations/{invitation.pk}/").status_code == 204
    with pytest.raises(NotFound):
        invitation_accept(token=token, user=UserFactory(email="new.hire@example.test"))
    detail = client.get(f"/api/v1/orgs/{tenant_a.slug}/invitations/{invitation.pk}/")
    assert detail.json()["status"] == "revoked"


def test_accepted_invitation_cannot_be_revoked(tenant_a):
    """Revoking after acceptance is refused: the person is a member now."""
    invitation, token = _open_invitation(tenant_a)
    invitation_accept(token=token, user=UserFactory(email="new.hire@example.test"))
    invitation.refresh_from_db()
    with pytest.raises(InvalidInput):
        invitation_revoke(invitation=invitation, actor=tenant_a.owner)


@pytest.mark.parametrize(
    ("inviter", "role", "status"),
    [
        ("admin", "owner", 403),
        ("admin", "admin", 201),
        ("owner", "owner", 201),
        ("manager", "viewer", 403),  # no members:manage scope at all
    ],
)
def test_role_above_the_inviter_is_refused(inviter, role, status, tenant_a, client_for):
    """Nobody invites to a role above their own; a refused invitation leaves no row."""
    client = client_for(getattr(tenant_a, inviter))
    response = client.post(f"/api/v1/orgs/{tenant_a.slug}/invitations/", {"email": "up@example.test", "role": role})
    assert response.status_code == status, response.content
    exists = Invitation.objects.for_org(tenant_a.organization).filter(email="up@example.test").exists()
    assert exists == (status == 201)


def test_invitation_from_another_organization_cannot_be_revoked(tenants, client_for):
    """An admin of A gets 404 revoking B's invitation, which stays open."""
    a, b = tenants
    invitation, _token = _open_invitation(b)
    client = client_for(a.admin)
    assert client.delete(f"/api/v1/orgs/{a.slug}/invitations/{invitation.pk}/").status_code == 404
    assert client.delete(f"/api/v1/orgs/{b.slug}/invitations/{invitation.pk}/").status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
