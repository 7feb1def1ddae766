"""Rows of the accounts app, made through its services (real hashes, real audit rows)."""

from __future__ import annotations

from collections.abc import Iterable

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from accounts.roles import Role, scopes_for_role
from accounts.services.api_keys import api_key_create
from accounts.services.audit import audit_record
from accounts.services.invitations import invitation_create
from tests.factories import MembershipFactory, UserFactory


def make_member(organization: Organization, role: Role = Role.MEMBER, email: str | None = None) -> Membership:
    user = UserFactory(**({"email": email} if email else {}))
    return MembershipFactory(organization=organization, user=user, role=role)


def make_api_key(
    organization: Organization, user: User, scopes: Iterable[str] | None = None, name: str = "test key"
) -> tuple[ApiKey, str]:
    """A key of ``user`` in ``organization`` (all of the user's scopes by default) and its secret."""
    if scopes is None:
        membership = Membership.objects.for_org(organization).get(user=user)
        scopes = scopes_for_role(membership.role)
    issued = api_key_create(organization=organization, actor=user, name=name, scopes=scopes)
    return issued.api_key, issued.secret


def make_invitation(
    organization: Organization, inviter: User, email: str = "invitee@example.test", role: Role = Role.MEMBER
) -> tuple[Invitation, str]:
    issued = invitation_create(organization=organization, actor=inviter, email=email, role=role)
    return issued.invitation, issued.token


def make_audit_event(organization: Organization, actor: User | None, action: str = "test.happened") -> AuditEvent:
    return audit_record(organization=organization, actor=actor, action=action)


def key_header(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
