"""Read-only queries of the accounts app."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Membership, Organization, User


def organizations_for_user(user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(
        pk__in=Membership.objects.dangerously_unscoped().filter(user=user).values("organization_id")
    ).order_by("name")


def membership_for(*, user: User, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.for_org(organization).filter(user=user).first()


def organization_for_member(*, user: User, slug: str) -> tuple[Organization, Membership] | None:
    """The organization ``slug`` if ``user`` belongs to it; ``None`` for "no such" and "not yours" alike."""
    if not user.is_authenticated:
        return None
    membership = (
        Membership.objects.dangerously_unscoped()
        .select_related("organization")
        .filter(user=user, organization__slug=slug)
        .first()
    )
    if membership is None:
        return None
    return membership.organization, membership
