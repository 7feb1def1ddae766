"""Organization access for server-rendered pages.

SECURITY: every page under ``/orgs/<slug>/`` goes through :func:`org_page` (or
:func:`org_access_for` in a class-based view). It resolves the organization only
among the caller's memberships, so an unknown slug and a foreign one give the
same 404, checks the scope the request needs (403 otherwise), and runs the view
inside :func:`accounts.tenancy.org_scope`, so default managers of
organization-owned models work and stay confined to that organization.

Usage::

    @org_page(Scope.MEMBERS_READ, unsafe_scope=Scope.MEMBERS_MANAGE)
    def members(request: HttpRequest, access: OrgAccess) -> HttpResponse:
        ...
        if access.can(Scope.MEMBERS_MANAGE): ...

Render inside the view (``render()``), not with a lazy ``TemplateResponse``:
the organization scope ends when the view returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Membership, Organization
from accounts.roles import Role
from accounts.selectors import organization_for_member
from accounts.tenancy import org_scope

SESSION_KEY = "current_org"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

OrgView = Callable[..., HttpResponse]


@dataclass(frozen=True)
class OrgAccess:
    """The organization a page is about and the caller's membership in it."""

    organization: Organization
    membership: Membership

    @property
    def scopes(self) -> frozenset[str]:
        return self.membership.scopes

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Refuse the request (403) unless the caller's role carries ``scope``."""
        if not self.can(scope):
            raise PermissionDenied(f"this needs the {scope} scope")


def org_access_for(request: HttpRequest, slug: str, scope: str | None = None) -> OrgAccess:
    """Resolve ``slug`` for the logged-in caller: 404 if not a member, 403 without ``scope``."""
    found = organization_for_member(user=request.user, slug=slug)  # type: ignore[arg-type]
    if found is None:
        raise Http404("No such organization.")
    organization, membership = found
    access = OrgAccess(organization=organization, membership=membership)
    if scope is not None:
        access.require(scope)
    request.org_access = access  # type: ignore[attr-defined]
    if request.session.get(SESSION_KEY) != organization.slug:
        request.session[SESSION_KEY] = organization.slug
    return access


def org_page(scope: str | None = None, *, unsafe_scope: str | None = None) -> Callable[[OrgView], OrgView]:
    """Decorate a page taking ``org_slug`` from the URL; the view gets ``access`` instead.

    ``scope`` is needed for every method; ``unsafe_scope`` additionally for POST and
    other unsafe methods. Views check finer scopes with ``access.require(...)``.
    """

    def decorate(view: OrgView) -> OrgView:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, org_slug: str, **kwargs: Any) -> HttpResponse:
            access = org_access_for(request, org_slug, scope)
            if unsafe_scope is not None and request.method not in SAFE_METHODS:
                access.require(unsafe_scope)
            with org_scope(access.organization):
                return view(request, access, *args, **kwargs)

        return login_required(wrapper)

    return decorate
