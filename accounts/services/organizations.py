from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.errors import Conflict, InvalidInput
from accounts.models import Membership, Organization, User
from accounts.models.organizations import validate_timezone
from accounts.roles import Role
from accounts.services.audit import audit_record

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")


def _check_timezone(timezone: str) -> None:
    from django.core.exceptions import ValidationError

    try:
        validate_timezone(timezone)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], field="timezone") from exc


# Paths that sit beside /orgs/<slug>/ in the portal.
RESERVED_SLUGS = frozenset({"new", "switch", "admin", "api", "static", "media"})


def _check_slug(slug: str) -> None:
    if not _SLUG.match(slug):
        raise InvalidInput("use 1–60 lowercase letters, digits and hyphens", field="slug")
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"the slug {slug!r} is reserved; choose another", field="slug")


def organization_create(*, user: User, name: str, slug: str = "", timezone: str = "UTC") -> Organization:
    """Create an organization with ``user`` as its owner."""
    name = name.strip()
    if not name:
        raise InvalidInput("a name is required", field="name")
    slug = slug or slugify(name)[:60].strip("-")
    _check_slug(slug)
    _check_timezone(timezone)
    try:
        with transaction.atomic():
            organization = Organization.objects.create(slug=slug, name=name, timezone=timezone)
            Membership.objects.for_org(organization).create(organization=organization, user=user, role=Role.OWNER)
            audit_record(
                organization=organization,
                actor=user,
                action="organization.created",
                target=organization,
                after={"slug": slug, "name": name, "timezone": timezone},
            )
    except IntegrityError as exc:
        raise Conflict(f"the slug {slug!r} is taken", field="slug") from exc
    return organization


def organization_update(
    *, organization: Organization, actor: User, name: str | None = None, timezone: str | None = None
) -> Organization:
    before = {"name": organization.name, "timezone": organization.timezone}
    if name is not None:
        if not name.strip():
            raise InvalidInput("a name is required", field="name")
        organization.name = name.strip()
    if timezone is not None:
        _check_timezone(timezone)
        organization.timezone = timezone
    after = {"name": organization.name, "timezone": organization.timezone}
    if after == before:
        return organization
    with transaction.atomic():
        organization.save(update_fields=["name", "timezone", "updated_at"])
        audit_record(
            organization=organization,
            actor=actor,
            action="organization.updated",
            target=organization,
            before=before,
            after=after,
        )
    return organization
