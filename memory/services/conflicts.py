"""Resolving a conflict: a person says which statement holds."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.errors import InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory.models import Conflict, ConflictResolution, ConflictStatus, Fact, FactStatus
from memory.services.facts import _sync_attributes, supersede


def conflict_resolve(
    *, organization: Organization, conflict: Conflict, resolution: str, actor: User | None
) -> Conflict:
    """Apply the answer to "You said X before, now Y. Which is correct?".

    * ``accept_new``: the change is confirmed; the earlier fact ends where the new one starts (or now)
      and points at it; history is kept.
    * ``keep_existing``: the new statement was wrong and is deleted.
    * ``keep_both``: both hold (the new fact becomes current as well).
    """
    if conflict.organization_id != organization.pk:
        raise NotFound("no such conflict")
    if resolution not in ConflictResolution.values:
        raise InvalidInput(f"choose one of {', '.join(ConflictResolution.values)}", field="resolution")
    with transaction.atomic():
        locked = Conflict.objects.for_org(organization).select_for_update().filter(pk=conflict.pk).first()
        if locked is None:
            raise NotFound("no such conflict")
        if locked.status != ConflictStatus.PENDING:
            raise InvalidInput("this conflict is already resolved", field="status")
        facts = Fact.objects.for_org(organization).select_for_update()
        existing = facts.get(pk=locked.existing_fact_id)
        proposed = facts.get(pk=locked.proposed_fact_id)
        locked.status = ConflictStatus.RESOLVED
        locked.resolution = resolution
        locked.resolved_by = actor if actor is not None and actor.pk else None
        locked.resolved_at = timezone.now()
        if resolution == ConflictResolution.KEEP_EXISTING:
            # The conflict row goes with the rejected fact (cascade); keep a resolved copy of the answer.
            locked.proposed_fact = existing
            locked.save()
            _other_conflicts(organization, proposed, exclude=locked.pk).delete()
            proposed.delete()
        else:
            locked.save()
            if proposed.valid_from is None and resolution == ConflictResolution.ACCEPT_NEW:
                proposed.valid_from = proposed.created_at
            proposed.status = FactStatus.ACTIVE
            proposed.save(update_fields=["status", "valid_from", "updated_at"])
            if resolution == ConflictResolution.ACCEPT_NEW and existing.status == FactStatus.ACTIVE:
                supersede(old=[existing], new=proposed, actor=actor)
            _sync_attributes(proposed)
        audit_record(organization=organization, actor=actor, action="memory.conflict.resolve", target=locked,
                     target_label=str(locked), after={"resolution": resolution})
    return locked


def _other_conflicts(organization: Organization, fact: Fact, *, exclude: int) -> QuerySet[Conflict]:
    return Conflict.objects.for_org(organization).filter(proposed_fact=fact).exclude(pk=exclude)
