"""Per-organization memory settings."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory.models import Category, MemorySettings

MAX_EXPIRY_DAYS = 3650


def memory_settings_get(*, organization: Organization) -> MemorySettings:
    """The organization's settings (the defaults until someone changes them)."""
    found = MemorySettings.objects.for_org(organization).first()
    if found is not None:
        return found
    return MemorySettings(organization=organization)


def memory_settings_update(
    *,
    organization: Organization,
    actor: User | None,
    enabled: bool | None = None,
    allowed_categories: Iterable[str] | None = None,
    auto_expiry_days: int | None = None,
) -> MemorySettings:
    with transaction.atomic():
        current, _ = MemorySettings.objects.for_org(organization).select_for_update().get_or_create(
            organization=organization
        )
        before = _snapshot(current)
        if enabled is not None:
            current.enabled = bool(enabled)
        if allowed_categories is not None:
            categories = list(dict.fromkeys(allowed_categories))
            unknown = [c for c in categories if c not in Category.values]
            if unknown:
                choices = ", ".join(Category.values)
                raise InvalidInput(f"unknown categories {unknown}; choose from {choices}", field="allowed_categories")
            current.allowed_categories = categories
        if auto_expiry_days is not None:
            if not 0 <= auto_expiry_days <= MAX_EXPIRY_DAYS:
                raise InvalidInput(f"between 0 (never) and {MAX_EXPIRY_DAYS} days", field="auto_expiry_days")
            current.auto_expiry_days = auto_expiry_days
        current.updated_by = actor
        current.save()
        audit_record(organization=organization, actor=actor, action="memory.settings.update", target=current,
                     target_label="memory settings", before=before, after=_snapshot(current))
    return current


def _snapshot(current: MemorySettings) -> dict[str, object]:
    return {
        "enabled": current.enabled,
        "allowed_categories": list(current.allowed_categories),
        "auto_expiry_days": current.auto_expiry_days,
    }
