"""Template context for the navigation: the caller's organizations and the current one."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Membership
from accounts.page_access import SESSION_KEY


def organizations(request: HttpRequest) -> dict[str, Any]:
    """``user_organizations``, ``current_organization``, ``current_membership`` and ``org_scopes``.

    The page's own organization (set by ``org_page``) wins; otherwise the one
    stored in the session by the switcher, if the user still belongs to it;
    otherwise the first by name.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    access = getattr(request, "org_access", None)
    memberships = list(
        Membership.objects.dangerously_unscoped()  # the caller's own memberships, across organizations
        .filter(user=user)
        .select_related("organization")
        .order_by("organization__name", "organization__slug")
    )
    wanted = access.organization.slug if access is not None else request.session.get(SESSION_KEY)
    current = next((m for m in memberships if m.organization.slug == wanted), memberships[0] if memberships else None)
    return {
        "user_organizations": [m.organization for m in memberships],
        "current_organization": current.organization if current else None,
        "current_membership": current,
        "org_scopes": current.scopes if current else frozenset(),
    }
