from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Invitation, Membership
from accounts.roles import Role
from accounts.services.invitations import invitation_create
from tests.factories import UserFactory


@pytest.fixture
def issued(tenant_a):
    return invitation_create(
        organization=tenant_a.organization, actor=tenant_a.owner, email="maria@example.test", role=Role.MANAGER
    )


def _path(issued) -> str:
    return f"/invitations/{issued.token}/"


def test_logged_out_visitor_sees_the_organization_and_role_with_ways_to_log_in(tenant_a, issued, client):
    """The invitation page names the organization and role and links to log in or sign up, returning here."""
    page = client.get(_path(issued))
    assert page.status_code == 200
    html = page.content.decode()
    assert tenant_a.organization.name in html
    assert "<strong>Manager</strong>" in html
    assert f"/login/?next=%2Finvitations%2F{issued.token}%2F" in html
    assert f"/signup/?next=%2Finvitations%2F{issued.token}%2F&amp;email=maria%40example.test" in html
    assert "Accept invitation" not in html


def test_logged_out_post_is_sent_to_log_in(issued, client):
    """Accepting while logged out leads to the login page, which brings the user back."""
    response = client.post(_path(issued))
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=%2Finvitations%2F{issued.token}%2F"


def test_sign_up_from_an_invitation_returns_to_it_and_accepts(tenant_a, issued, client):
    """A new user signs up from the invitation, comes back to it and joins with the invited role."""
    signup = client.get(f"/signup/?next=/invitations/{issued.token}/&email=maria@example.test")
    assert b'value="maria@example.test"' in signup.content
    response = client.post(
        "/signup/", {"email": "maria@example.test", "password": "a-long-passphrase", "next": _path(issued)}
    )
    assert response["Location"] == _path(issued)
    assert b"Accept invitation" in client.get(_path(issued)).content
    response = client.post(_path(issued))
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/{tenant_a.slug}/"
    membership = Membership.objects.for_org(tenant_a.organization).get(user__email="maria@example.test")
    assert membership.role == Role.MANAGER
    assert client.session["current_org"] == tenant_a.slug


def test_a_used_invitation_gives_a_clear_message(tenant_a, issued, page_for):
    """Once accepted, the same link says it was already used (404) and creates nothing more."""
    client = page_for(UserFactory(email="maria@example.test"))
    assert client.post(_path(issued)).status_code == 302
    again = client.get(_path(issued))
    assert again.status_code == 404
    assert b"already used" in again.content
    assert client.post(_path(issued)).status_code == 404
    assert Membership.objects.for_org(tenant_a.organization).count() == 6


def test_an_expired_invitation_gives_a_clear_message(tenant_a, issued, page_for):
    """An expired link says so and asks for a new one; accepting it does nothing."""
    Invitation.objects.for_org(tenant_a.organization).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = page_for(UserFactory(email="maria@example.test"))
    page = client.get(_path(issued))
    assert page.status_code == 400
    assert b"has expired" in page.content
    assert client.post(_path(issued)).status_code == 400
    assert not Membership.objects.for_org(tenant_a.organization).filter(user__email="maria@example.test").exists()


def test_an_unknown_token_gives_a_clear_message(db, client):
    """A made-up token is 'does not exist or was already used'."""
    page = client.get("/invitations/made-up-token/")
    assert page.status_code == 404
    assert b"does not exist" in page.content


def test_someone_else_cannot_accept(tenant_a, issued, page_for):
    """A user logged in with another address is warned and refused (403); no membership is made."""
    client = page_for(tenant_a.viewer)
    page = client.get(_path(issued))
    assert b"This invitation is for maria@example.test" in page.content
    assert b"Accept invitation" not in page.content
    response = client.post(_path(issued))
    assert response.status_code == 403
    assert b"log in with that address" in response.content
    assert not Membership.objects.for_org(tenant_a.organization).filter(user__email="maria@example.test").exists()
