from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.errors import Conflict, Forbidden, InvalidInput, NotFound
from accounts.models import Invitation, Membership, Organization, User
from accounts.roles import Role
from accounts.services.audit import audit_record
from accounts.services.tokens import hash_secret, new_secret


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str

    @property
    def accept_path(self) -> str:
        return reverse("invitation-accept", kwargs={"token": self.token})


def invitation_create(*, organization: Organization, actor: User, email: str, role: int) -> IssuedInvitation:
    """Invite ``email`` with ``role``; the token goes out by email and is returned once."""
    email = email.strip().lower()
    if not email:
        raise InvalidInput("an email address is required", field="email")
    try:
        role = Role(role)
    except ValueError as exc:
        raise InvalidInput(f"unknown role {role!r}", field="role") from exc
    actor_membership = Membership.objects.for_org(organization).filter(user=actor).first()
    if actor_membership is None or role > actor_membership.role:
        raise Forbidden("you cannot invite someone to a role above your own")
    if Membership.objects.for_org(organization).filter(user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member", field="email")
    token = new_secret()
    try:
        with transaction.atomic():
            # An expired invitation no longer counts as open: it makes way for the new one.
            Invitation.objects.for_org(organization).filter(
                email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=timezone.now()
            ).update(revoked_at=timezone.now())
            invitation = Invitation.objects.for_org(organization).create(
                organization=organization,
                email=email,
                role=role,
                token_hash=hash_secret(token),
                invited_by=actor,
                expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
            )
            audit_record(
                organization=organization,
                actor=actor,
                action="member.invited",
                target=invitation,
                target_label=email,
                after={"email": email, "role": role.slug},
            )
    except IntegrityError as exc:
        raise Conflict(f"{email} already has an open invitation", field="email") from exc
    issued = IssuedInvitation(invitation=invitation, token=token)
    transaction.on_commit(lambda: _send_invitation_email(issued, organization))
    return issued


def _send_invitation_email(issued: IssuedInvitation, organization: Organization) -> None:
    send_mail(
        subject=f"You are invited to {organization.name} on Staffer",
        message=(
            f"{issued.invitation.invited_by} invited you to join {organization.name} as "
            f"{Role(issued.invitation.role).label}.\n\nAccept: {issued.accept_path}\n\n"
            f"The link expires on {issued.invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        from_email=None,
        recipient_list=[issued.invitation.email],
        fail_silently=True,
    )


def invitation_lookup(*, token: str) -> Invitation:
    """Find an open invitation by its token (any organization: the token is the key)."""
    invitation = (
        Invitation.objects.dangerously_unscoped()
        .select_related("organization")
        .filter(token_hash=hash_secret(token), accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:
        raise NotFound("this invitation does not exist or was already used")
    if invitation.expires_at <= timezone.now():
        raise InvalidInput("this invitation has expired; ask for a new one", code="expired")
    return invitation


def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = invitation_lookup(token=token)
    if invitation.email.lower() != user.email.lower():
        raise Forbidden(f"this invitation is for {invitation.email}; log in with that address")
    organization = invitation.organization
    with transaction.atomic():
        # Lock the invitation so that it is accepted once, however many requests race.
        locked = Invitation.objects.for_org(organization).select_for_update().get(pk=invitation.pk)
        if locked.accepted_at is not None or locked.revoked_at is not None:
            raise NotFound("this invitation does not exist or was already used")
        membership, _created = Membership.objects.for_org(organization).get_or_create(
            organization=organization, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            organization=organization,
            actor=user,
            action="member.joined",
            target=membership,
            target_label=user.email,
            after={"role": Role(membership.role).slug, "via": "invitation"},
        )
    return membership


def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    if invitation.accepted_at is not None:
        raise InvalidInput("this invitation was already accepted")
    if invitation.revoked_at is not None:
        return
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            organization=invitation.organization,
            actor=actor,
            action="member.invitation_revoked",
            target=invitation,
            target_label=invitation.email,
        )
