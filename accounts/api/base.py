"""The base of every organization-scoped API view.

SECURITY: ``OrgScopedViewSet`` resolves ``{org_slug}`` from the URL, checks that
the caller belongs to it (an unknown slug and a foreign one give the same 404),
checks the scope the method or action needs, and scopes every queryset to the
organization. Subclasses narrow the queryset in ``scope_queryset``; overriding
``get_queryset`` is refused at class creation.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from rest_framework import exceptions, viewsets
from rest_framework.request import Request

from accounts import tenancy
from accounts.api.authentication import request_api_key
from accounts.models import Membership, Organization
from accounts.selectors import organization_for_member

NOT_FOUND = "Not found."

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def resolve_organization(request: Request, slug: str) -> tuple[Organization, Membership, frozenset[str]]:
    """The organization named by ``slug`` and the caller's scopes in it, or 404."""
    found = organization_for_member(user=request.user, slug=slug)
    if found is None:
        raise exceptions.NotFound(NOT_FOUND)
    organization, membership = found
    scopes = membership.scopes
    api_key = request_api_key(request)
    if api_key is not None:
        if api_key.organization_id != organization.pk:
            raise exceptions.NotFound(NOT_FOUND)
        # A key never exceeds its creator's current role.
        scopes = scopes & frozenset(api_key.scopes)
    return organization, membership, scopes


class OrgScopedMixin:
    """Organization resolution and scope checks for any DRF view."""

    read_scope: ClassVar[str]
    write_scope: ClassVar[str]
    action_scopes: ClassVar[dict[str, str]] = {}

    organization: Organization
    scopes: frozenset[str]
    membership: Membership | None = None

    def required_scope(self, request: Request) -> str:
        action = getattr(self, "action", None)
        if action and action in self.action_scopes:
            return self.action_scopes[action]
        return self.read_scope if request.method in SAFE_METHODS else self.write_scope

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.organization, self.membership, self.scopes = resolve_organization(request, kwargs["org_slug"])
        needed = self.required_scope(request)
        if needed not in self.scopes:
            raise exceptions.PermissionDenied(f"this needs the {needed} scope")
        self._org_token = tenancy._current_org.set(self.organization)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        token = getattr(self, "_org_token", None)
        if token is not None:
            tenancy._current_org.reset(token)
            self._org_token = None
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        context["organization"] = getattr(self, "organization", None)
        return context


class OrgScopedViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    model: ClassVar[type[models.Model]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: override scope_queryset(), not get_queryset()")

    def get_queryset(self) -> models.QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return self.model.objects.dangerously_unscoped().none()  # type: ignore[attr-defined]
        return self.scope_queryset(self.model.objects.for_org(self.organization))  # type: ignore[attr-defined]

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset
