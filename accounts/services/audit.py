"""The audit log: one row per change, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from django.db import models

from accounts import request_context
from accounts.models import AuditEvent, Organization, User


def audit_record(
    *,
    organization: Organization,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    target_label: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append an audit event. Call inside the transaction of the change it records."""
    meta = request_context.current()
    return AuditEvent.objects.for_org(organization).create(
        organization=organization,
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label or (actor.email if actor is not None and actor.pk else "system"),
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target_label=target_label or (str(target)[:200] if target is not None else ""),
        before=before,
        after=after,
        ip_address=meta.ip,
        request_id=meta.request_id,
    )
