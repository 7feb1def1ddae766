"""Fail-closed organization scoping.

SECURITY: every organization-owned model uses :class:`OrgScopedManager` as its
default manager. A query through it runs only inside an organization scope
(``with org_scope(org):``) or through ``for_org(org)``; anything else raises
:class:`OrganizationScopeRequired`. ``dangerously_unscoped()`` is the one
escape hatch (migrations, admin for superusers, cross-tenant system jobs) and
is meant to be searched for in review.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

if TYPE_CHECKING:
    from accounts.models import Organization

_current_org: contextvars.ContextVar[Organization | None] = contextvars.ContextVar("staffer_org", default=None)

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=models.Model)


class OrganizationScopeRequired(RuntimeError):
    """An organization-owned table was queried with no organization in scope."""


def current_organization() -> Organization | None:
    return _current_org.get()


@contextmanager
def org_scope(organization: Organization) -> Iterator[Organization]:
    """Run the block with ``organization`` as the scope of every default manager."""
    if organization is None or organization.pk is None:
        raise OrganizationScopeRequired("org_scope() needs a saved organization")
    token = _current_org.set(organization)
    try:
        yield organization
    finally:
        _current_org.reset(token)


def with_org_scope(func: F) -> F:
    """Decorate a Celery task (or any callable) taking ``organization_id``.

    The organization is loaded fresh and put in scope for the call.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from accounts.models import Organization

        organization_id = kwargs.get("organization_id")
        if organization_id is None:
            raise OrganizationScopeRequired(f"{func.__name__} needs organization_id=")
        organization = Organization.objects.get(pk=organization_id)
        with org_scope(organization):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class OrgScopedQuerySet(models.QuerySet[M]):
    pass


class OrgScopedManager(models.Manager[M]):
    """Default manager of organization-owned models: refuses to run unscoped."""

    def get_queryset(self) -> models.QuerySet[M]:
        organization = _current_org.get()
        if organization is None:
            raise OrganizationScopeRequired(
                f"{self.model.__name__} queried with no organization in scope; "
                "use .for_org(org), org_scope(org) or, deliberately, .dangerously_unscoped()"
            )
        return self._unscoped().filter(organization=organization)

    def _unscoped(self) -> models.QuerySet[M]:
        return OrgScopedQuerySet(self.model, using=self._db)

    def for_org(self, organization: Organization) -> models.QuerySet[M]:
        if organization is None or organization.pk is None:
            raise OrganizationScopeRequired("for_org() needs a saved organization")
        return self._unscoped().filter(organization=organization)

    def dangerously_unscoped(self) -> models.QuerySet[M]:
        """Every organization's rows. Only for system jobs and superuser tools."""
        return self._unscoped()


class OrganizationOwned(models.Model):
    """Abstract base of every row that belongs to one organization."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")

    objects = OrgScopedManager()

    class Meta:
        abstract = True
