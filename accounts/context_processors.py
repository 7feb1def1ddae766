from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.selectors import organizations_for_user


def organizations(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    orgs = list(organizations_for_user(user))
    current_slug = request.session.get("current_org")
    current = next((o for o in orgs if o.slug == current_slug), orgs[0] if orgs else None)
    return {"user_organizations": orgs, "current_organization": current}
