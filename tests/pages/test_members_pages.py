from __future__ import annotations

import re

from django.core import mail

from accounts.models import AuditEvent, Invitation, Membership
from accounts.roles import Role
from tests.factories import MembershipFactory


def _without_csrf(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def _invitations(tenant):
    return Invitation.objects.for_org(tenant.organization)


def _role_of(tenant, user) -> int:
    return Membership.objects.for_org(tenant.organization).get(user=user).role


def _membership(tenant, user) -> Membership:
    return Membership.objects.for_org(tenant.organization).get(user=user)


def test_members_page_lists_the_organizations_members_only(tenants, page_for, django_assert_max_num_queries):
    """The members page lists every member of the organization and nobody else, in a fixed number of queries."""
    a, b = tenants
    client = page_for(a.owner)
    client.get(f"/orgs/{a.slug}/members/")
    extra = [MembershipFactory(organization=a.organization, role=Role.MEMBER).user for _ in range(10)]
    with django_assert_max_num_queries(8):  # no query per member
        page = client.get(f"/orgs/{a.slug}/members/")
    assert page.status_code == 200
    html = page.content.decode()
    for user in [*a.users.values(), *extra]:
        assert user.email in html
    for user in b.users.values():
        assert user.email not in html


def test_viewer_sees_the_list_but_no_invite_or_role_controls(tenant_a, page_for):
    """A viewer can read the member list; the invite form and role selects are not shown."""
    html = page_for(tenant_a.viewer).get(f"/orgs/{tenant_a.slug}/members/").content.decode()
    assert tenant_a.owner.email in html
    assert "Invite someone" not in html
    assert "/members/invite/" not in html
    assert 'name="role"' not in html
    assert "Leave" in html  # a viewer may still leave


def test_viewer_cannot_post_an_invitation(tenant_a, page_for):
    """A viewer who posts the invite form anyway is refused (403) and nothing is created."""
    response = page_for(tenant_a.viewer).post(
        f"/orgs/{tenant_a.slug}/members/invite/", {"email": "new@example.test", "role": Role.VIEWER}
    )
    assert response.status_code == 403
    assert not _invitations(tenant_a).exists()
    assert len(mail.outbox) == 0


def test_manager_cannot_change_roles_or_remove_members(tenant_a, page_for):
    """Roles without members:manage are refused when posting role changes or removals."""
    client = page_for(tenant_a.manager)
    target = _membership(tenant_a, tenant_a.member)
    assert client.post(f"/orgs/{tenant_a.slug}/members/{target.pk}/role/", {"role": Role.VIEWER}).status_code == 403
    assert client.get(f"/orgs/{tenant_a.slug}/members/{target.pk}/remove/").status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/members/{target.pk}/remove/").status_code == 403
    assert _role_of(tenant_a, tenant_a.member) == Role.MEMBER


def test_admin_invites_by_email_and_sees_the_link_once(tenant_a, page_for, django_capture_on_commit_callbacks):
    """Inviting creates an invitation with the role, emails it and shows the accept link on the next page."""
    client = page_for(tenant_a.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/orgs/{tenant_a.slug}/members/invite/", {"email": "Maria@Example.test", "role": Role.MANAGER}
        )
    assert response.status_code == 200
    invitation = _invitations(tenant_a).get()
    assert invitation.email == "maria@example.test"
    assert invitation.role == Role.MANAGER
    assert "http://testserver/invitations/" in response.content.decode()
    assert len(mail.outbox) == 1
    listing = client.get(f"/orgs/{tenant_a.slug}/members/").content.decode()
    assert "maria@example.test" in listing  # listed as an open invitation
    assert "/invitations/" not in listing.replace(f"/orgs/{tenant_a.slug}/invitations/", "")  # but no link


def test_invite_form_offers_only_roles_up_to_ones_own(tenant_a, page_for):
    """An admin is not offered the owner role, and posting it anyway is a form error."""
    client = page_for(tenant_a.admin)
    html = client.get(f"/orgs/{tenant_a.slug}/members/").content.decode()
    invite_form = html[html.index("Invite someone"):]
    assert ">Owner</option>" not in invite_form
    response = client.post(f"/orgs/{tenant_a.slug}/members/invite/", {"email": "x@example.test", "role": Role.OWNER})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
    assert not _invitations(tenant_a).exists()


def test_inviting_an_existing_member_is_a_form_error(tenant_a, page_for):
    """A refused invitation (already a member) is shown on the email field with 409."""
    response = page_for(tenant_a.owner).post(
        f"/orgs/{tenant_a.slug}/members/invite/", {"email": tenant_a.viewer.email, "role": Role.VIEWER}
    )
    assert response.status_code == 409
    assert b"is already a member" in response.content
    assert not _invitations(tenant_a).exists()


def test_owner_changes_a_role(tenant_a, page_for):
    """Changing a member's role saves it, audits it and confirms it."""
    client = page_for(tenant_a.owner)
    target = _membership(tenant_a, tenant_a.member)
    response = client.post(f"/orgs/{tenant_a.slug}/members/{target.pk}/role/", {"role": Role.MANAGER}, follow=True)
    assert response.status_code == 200
    assert f"{tenant_a.member.email} is now Manager" in response.content.decode()
    assert _role_of(tenant_a, tenant_a.member) == Role.MANAGER
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="member.role_changed").exists()


def test_demoting_the_last_owner_is_shown_next_to_the_row(tenant_a, page_for):
    """The service's refusal (last owner) appears as an error on that member's row, not a 500."""
    client = page_for(tenant_a.owner)
    own = _membership(tenant_a, tenant_a.owner)
    response = client.post(f"/orgs/{tenant_a.slug}/members/{own.pk}/role/", {"role": Role.ADMIN})
    assert response.status_code == 400
    assert f'id="role-error-{own.pk}"'.encode() in response.content
    assert b"at least one owner" in response.content
    assert _role_of(tenant_a, tenant_a.owner) == Role.OWNER


def test_admin_cannot_change_an_owner(tenant_a, page_for):
    """An admin gets no control for an owner's row, and a forged post is refused with 403."""
    client = page_for(tenant_a.admin)
    owner = _membership(tenant_a, tenant_a.owner)
    html = client.get(f"/orgs/{tenant_a.slug}/members/").content.decode()
    assert f'id="role-{owner.pk}"' not in html
    response = client.post(f"/orgs/{tenant_a.slug}/members/{owner.pk}/role/", {"role": Role.VIEWER})
    assert response.status_code == 403
    assert b"above your own" in response.content
    assert _role_of(tenant_a, tenant_a.owner) == Role.OWNER


def test_remove_asks_for_confirmation_then_removes(tenant_a, page_for):
    """Removing a member shows a confirmation page (GET) and removes on POST."""
    client = page_for(tenant_a.admin)
    target = _membership(tenant_a, tenant_a.member)
    confirm = client.get(f"/orgs/{tenant_a.slug}/members/{target.pk}/remove/")
    assert confirm.status_code == 200
    assert tenant_a.member.email.encode() in confirm.content
    assert Membership.objects.for_org(tenant_a.organization).filter(pk=target.pk).exists()
    response = client.post(f"/orgs/{tenant_a.slug}/members/{target.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.for_org(tenant_a.organization).filter(pk=target.pk).exists()


def test_viewer_can_leave(tenant_a, page_for):
    """Any member can remove themselves; they land on the start page afterwards."""
    client = page_for(tenant_a.viewer)
    own = _membership(tenant_a, tenant_a.viewer)
    response = client.post(f"/orgs/{tenant_a.slug}/members/{own.pk}/remove/")
    assert response["Location"] == "/"
    assert not Membership.objects.for_org(tenant_a.organization).filter(pk=own.pk).exists()
    assert client.get(f"/orgs/{tenant_a.slug}/").status_code == 404


def test_revoke_an_open_invitation(tenant_a, page_for):
    """Revoking an invitation closes it."""
    client = page_for(tenant_a.owner)
    client.post(f"/orgs/{tenant_a.slug}/members/invite/", {"email": "x@example.test", "role": Role.MEMBER})
    invitation = _invitations(tenant_a).get()
    response = client.post(f"/orgs/{tenant_a.slug}/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


# --- Cross-organization: 404 exactly like a non-existent slug, with no side effect -----------


def test_foreign_organization_pages_are_404_like_unknown_ones(tenants, page_for):
    """Every organization page answers a non-member with the same 404 as a slug that does not exist."""
    a, b = tenants
    client = page_for(a.owner)
    for suffix in ("", "members/", "api-keys/", "members/1/remove/"):
        foreign = client.get(f"/orgs/{b.slug}/{suffix}")
        unknown = client.get(f"/orgs/no-such-org/{suffix}")
        assert foreign.status_code == unknown.status_code == 404, suffix
        assert _without_csrf(foreign.content) == _without_csrf(unknown.content)


def test_posting_to_a_foreign_organization_changes_nothing(tenants, page_for):
    """Invites, role changes, removals and revocations aimed at another organization are 404 and change nothing."""
    a, b = tenants
    client = page_for(a.owner)
    b_member = _membership(b, b.member)
    b_client = page_for(b.owner)
    b_client.post(f"/orgs/{b.slug}/members/invite/", {"email": "keep@example.test", "role": Role.MEMBER})
    b_invitation = _invitations(b).get()
    audit_before = AuditEvent.objects.dangerously_unscoped().count()

    assert client.post(f"/orgs/{b.slug}/members/invite/", {"email": "x@e.test", "role": 10}).status_code == 404
    assert client.post(f"/orgs/{b.slug}/members/{b_member.pk}/role/", {"role": 10}).status_code == 404
    assert client.post(f"/orgs/{b.slug}/members/{b_member.pk}/remove/").status_code == 404
    assert client.post(f"/orgs/{b.slug}/invitations/{b_invitation.pk}/revoke/").status_code == 404
    # Another organization's ids through one's own slug are not found either.
    assert client.post(f"/orgs/{a.slug}/members/{b_member.pk}/role/", {"role": 10}).status_code == 404
    assert client.post(f"/orgs/{a.slug}/members/{b_member.pk}/remove/").status_code == 404
    assert client.post(f"/orgs/{a.slug}/invitations/{b_invitation.pk}/revoke/").status_code == 404

    assert _role_of(b, b.member) == Role.MEMBER
    assert Membership.objects.for_org(b.organization).count() == 5
    b_invitation.refresh_from_db()
    assert b_invitation.revoked_at is None
    assert not Invitation.objects.dangerously_unscoped().filter(email="x@e.test").exists()
    assert AuditEvent.objects.dangerously_unscoped().count() == audit_before
