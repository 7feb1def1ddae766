"""Membership changes. An organization always keeps at least one owner."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.errors import Forbidden, InvalidInput, NotFound
from accounts.models import ApiKey, Membership, Organization, User
from accounts.roles import Role
from accounts.services.audit import audit_record


def _acting_role(organization: Organization, actor: User) -> int:
    membership = Membership.objects.for_org(organization).filter(user=actor).first()
    return membership.role if membership else 0


def _lock_owners(organization: Organization) -> int:
    """Count owners while holding their row locks (serializes concurrent demotions)."""
    owners = Membership.objects.for_org(organization).select_for_update().filter(role=Role.OWNER).order_by("pk")
    return len(list(owners.values_list("pk", flat=True)))


def _lock_membership(organization: Organization, pk: int) -> Membership:
    locked = Membership.objects.for_org(organization).select_for_update().filter(pk=pk).first()
    if locked is None:  # removed by someone else in the meantime
        raise NotFound("this member is no longer in the organization")
    return locked


def membership_change_role(*, membership: Membership, actor: User, role: int) -> Membership:
    try:
        new_role = Role(role)
    except ValueError as exc:
        raise InvalidInput(f"unknown role {role!r}", field="role") from exc
    organization = membership.organization
    actor_role = _acting_role(organization, actor)
    if new_role > actor_role or membership.role > actor_role:
        raise Forbidden("you cannot grant or change a role above your own")
    with transaction.atomic():
        owners = _lock_owners(organization)
        membership = _lock_membership(organization, membership.pk)
        if membership.role == Role.OWNER and new_role != Role.OWNER and owners <= 1:
            raise InvalidInput("an organization must keep at least one owner", field="role")
        before = {"role": Role(membership.role).slug}
        membership.role = new_role
        membership.save(update_fields=["role", "updated_at"])
        audit_record(
            organization=organization,
            actor=actor,
            action="member.role_changed",
            target=membership,
            target_label=membership.user.email,
            before=before,
            after={"role": new_role.slug},
        )
    return membership


def membership_remove(*, membership: Membership, actor: User) -> None:
    organization = membership.organization
    is_self = membership.user_id == actor.pk
    if not is_self and membership.role > _acting_role(organization, actor):
        raise Forbidden("you cannot remove a member whose role is above yours")
    with transaction.atomic():
        owners = _lock_owners(organization)
        membership = _lock_membership(organization, membership.pk)
        if membership.role == Role.OWNER and owners <= 1:
            raise InvalidInput("an organization must keep at least one owner; make someone else owner first")
        # The member's API keys in this organization are revoked with the membership
        # (authentication also refuses a key whose creator is no longer a member).
        keys = ApiKey.objects.for_org(organization).filter(created_by_id=membership.user_id, revoked_at__isnull=True)
        revoked = sorted(keys.values_list("prefix", flat=True))
        keys.update(revoked_at=timezone.now())
        audit_record(
            organization=organization,
            actor=actor,
            action="member.removed",
            target=membership,
            target_label=membership.user.email,
            before={"user": membership.user.email, "role": Role(membership.role).slug},
            after={"revoked_api_keys": revoked} if revoked else None,
        )
        membership.delete()
