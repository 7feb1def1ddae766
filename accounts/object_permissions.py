"""Per-object grants, the one place that talks to django-guardian.

Roles and scopes decide what a member may do in an organization. A per-object
grant is for the genuine exceptions: a workflow shared with one person, an
agent restricted to a group. Grants never cross organizations: the object and
the grantee must belong to the same one.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from accounts.errors import InvalidInput
from accounts.models import Membership, User


def _check_same_organization(user: User, obj: models.Model) -> None:
    organization_id = getattr(obj, "organization_id", None)
    if organization_id is None:
        return
    is_member = Membership.objects.dangerously_unscoped().filter(user=user, organization_id=organization_id).exists()
    if not is_member:
        raise InvalidInput("a grant can only go to a member of the object's organization", field="user")


def _codename(permission: str, obj: models.Model) -> str:
    return permission if "." in permission else f"{obj._meta.app_label}.{permission}"


def object_grant(*, user: User, permission: str, obj: models.Model) -> None:
    _check_same_organization(user, obj)
    assign_perm(_codename(permission, obj), user, obj)


def object_revoke(*, user: User, permission: str, obj: models.Model) -> None:
    remove_perm(_codename(permission, obj), user, obj)


def object_has_permission(*, user: User, permission: str, obj: models.Model) -> bool:
    if not user.is_active:
        return False
    return user.has_perm(_codename(permission, obj), obj)


def objects_with_permission(*, user: User, permission: str, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
    """Narrow ``queryset`` (already organization-scoped) to the objects ``user`` was granted."""
    return get_objects_for_user(user, _codename(permission, queryset.model), klass=queryset, accept_global_perms=False)
