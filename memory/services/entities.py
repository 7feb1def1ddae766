"""Entities (people, companies, teams, projects, tools) and their relationships.

Time-varying attributes (email, role...) are facts about the entity, written
through :func:`memory.services.facts.fact_remember` so that a change is a
conflict or a confirmed supersession with history; the entity's ``attributes``
mirror the current values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.errors import InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory import conf, privacy
from memory.errors import SecretRefused
from memory.models import Category, Entity, EntityKind, Relationship, RelationshipKind, SourceType
from memory.normalize import name_key
from memory.services.facts import ATTRIBUTE_PREDICATES, FactInput, WriteResult, ensure_memory_on, fact_remember

MAX_ALIASES = 20
MAX_ATTRIBUTES = 30


def _clean_name(name: str, *, field: str = "name") -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("a name is needed", field=field)
    if len(name) > conf.MAX_NAME_CHARS:
        raise InvalidInput(f"at most {conf.MAX_NAME_CHARS} characters", field=field)
    return name


def _clean_aliases(aliases: Iterable[str]) -> list[str]:
    cleaned = list(dict.fromkeys(_clean_name(a, field="aliases") for a in aliases))
    if len(cleaned) > MAX_ALIASES:
        raise InvalidInput(f"at most {MAX_ALIASES} aliases", field="aliases")
    return cleaned


def _check_attributes(attributes: Mapping[str, Any]) -> None:
    if not isinstance(attributes, Mapping):
        raise InvalidInput("an object of names and values", field="attributes")
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes", field="attributes")
    for key, value in attributes.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            raise InvalidInput("attribute names are 1-100 characters", field="attributes")
        if isinstance(value, dict | list) or len(str(value)) > conf.MAX_VALUE_CHARS:
            raise InvalidInput(f"attribute {key!r}: a short text value", field="attributes")


def entity_find(*, organization: Organization, name: str, kind: str | None = None) -> Entity | None:
    """The entity called ``name`` (or having it as an alias), preferring an exact name."""
    key = name_key(name)
    if not key:
        return None
    entities = Entity.objects.for_org(organization)
    if kind:
        entities = entities.filter(kind=kind)
    found = entities.filter(key=key).order_by("id").first()
    if found is None:
        found = entities.filter(alias_keys__contains=[key]).order_by("id").first()
    return found


def entity_get(*, organization: Organization, entity_id: int) -> Entity:
    entity = Entity.objects.for_org(organization).filter(pk=entity_id).first()
    if entity is None:
        raise NotFound("no such entity")
    return entity


def entity_upsert(
    *,
    organization: Organization,
    kind: str,
    name: str,
    aliases: Iterable[str] = (),
    attributes: Mapping[str, Any] | None = None,
    actor: User | None = None,
    valid_from: datetime | None = None,
    source_type: str = SourceType.USER,
) -> tuple[Entity, list[WriteResult]]:
    """The entity of that kind and name (created when new), with aliases merged and attributes written.

    Attributes such as email and role go through the fact write path (deduplication, conflicts); the
    others are stored on the entity directly. Returns the entity and the results of the attribute writes.
    """
    if kind not in EntityKind.values:
        raise InvalidInput(f"unknown kind {kind!r}; choose from {', '.join(EntityKind.values)}", field="kind")
    name = _clean_name(name)
    alias_list = _clean_aliases(aliases)
    attributes = dict(attributes or {})
    _check_attributes(attributes)
    findings = privacy.scan_fields({"name": name, "aliases": alias_list, "attributes": attributes})
    if findings:
        raise SecretRefused(findings)
    ensure_memory_on(organization=organization)
    with transaction.atomic():
        entity = entity_find(organization=organization, name=name, kind=kind)
        created = entity is None
        if entity is None:
            entity = Entity(organization=organization, kind=kind, name=name, key=name_key(name),
                            created_by=actor if actor is not None and actor.pk else None)
        merged = list(dict.fromkeys([*entity.aliases, *alias_list]))
        entity.aliases = [a for a in merged if name_key(a) != entity.key]
        entity.alias_keys = list(dict.fromkeys([entity.key, *(name_key(a) for a in entity.aliases)]))
        plain = {k: v for k, v in attributes.items() if k not in ATTRIBUTE_PREDICATES}
        entity.attributes = {**entity.attributes, **plain}
        try:
            with transaction.atomic():
                entity.save()
        except IntegrityError as exc:
            raise InvalidInput("an entity of this kind and name already exists", field="name") from exc
        if created:
            audit_record(organization=organization, actor=actor, action="memory.entity.create", target=entity,
                         target_label=str(entity), after={"kind": kind})
    results = []
    for predicate, value in attributes.items():
        if predicate in ATTRIBUTE_PREDICATES and str(value).strip():
            results.append(
                fact_remember(
                    organization=organization,
                    candidate=FactInput(
                        text=f"{entity.name}'s {predicate} is {value}",
                        category=Category.TEAM if kind == EntityKind.PERSON else Category.COMPANY,
                        subject=entity,
                        predicate=predicate,
                        value=str(value),
                        confidence=0.9,
                        source_type=source_type,
                        valid_from=valid_from,
                    ),
                    actor=actor,
                )
            )
    entity.refresh_from_db()
    return entity, results


def entity_update(
    *,
    organization: Organization,
    entity: Entity,
    actor: User | None,
    name: str | None = None,
    aliases: Iterable[str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Entity:
    """Rename, replace aliases or set plain attributes (email and role change through facts)."""
    if entity.organization_id != organization.pk:
        raise NotFound("no such entity")
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = _clean_name(name)
    if aliases is not None:
        fields["aliases"] = _clean_aliases(aliases)
    if attributes is not None:
        _check_attributes(attributes)
        fields["attributes"] = dict(attributes)
    findings = privacy.scan_fields(fields)
    if findings:
        raise SecretRefused(findings)
    with transaction.atomic():
        locked = Entity.objects.for_org(organization).select_for_update().get(pk=entity.pk)
        if "name" in fields:
            locked.name = fields["name"]
            locked.key = name_key(locked.name)
        if "aliases" in fields:
            locked.aliases = [a for a in fields["aliases"] if name_key(a) != locked.key]
        locked.alias_keys = list(dict.fromkeys([locked.key, *(name_key(a) for a in locked.aliases)]))
        if "attributes" in fields:
            current = {k: v for k, v in locked.attributes.items() if k in ATTRIBUTE_PREDICATES}
            locked.attributes = {**{k: v for k, v in fields["attributes"].items()
                                    if k not in ATTRIBUTE_PREDICATES}, **current}
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as exc:
            raise InvalidInput("an entity of this kind and name already exists", field="name") from exc
        audit_record(organization=organization, actor=actor, action="memory.entity.update", target=locked,
                     target_label=str(locked))
    return locked


def entity_delete(*, organization: Organization, entity: Entity, actor: User | None) -> None:
    """Delete the entity, its relationships and every fact about it."""
    if entity.organization_id != organization.pk:
        raise NotFound("no such entity")
    with transaction.atomic():
        label = str(entity)
        Entity.objects.for_org(organization).filter(pk=entity.pk).delete()
        audit_record(organization=organization, actor=actor, action="memory.entity.delete", target=None,
                     target_label=label)


def _entity_in_org(organization: Organization, value: Entity | int, field: str) -> Entity:
    entity_id = value.pk if isinstance(value, Entity) else value
    found = Entity.objects.for_org(organization).filter(pk=entity_id).first()
    if found is None:
        raise InvalidInput("no such entity in this organization", field=field)
    return found


def relationship_create(
    *,
    organization: Organization,
    kind: str,
    source: Entity | int,
    target: Entity | int,
    actor: User | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    confidence: float = 1.0,
) -> Relationship:
    """``source`` *kind* ``target`` from ``valid_from``; an identical current one is returned as it is."""
    if kind not in RelationshipKind.values:
        raise InvalidInput(f"unknown kind {kind!r}; choose from {', '.join(RelationshipKind.values)}", field="kind")
    source_entity = _entity_in_org(organization, source, "source")
    target_entity = _entity_in_org(organization, target, "target")
    if source_entity.pk == target_entity.pk:
        raise InvalidInput("an entity cannot relate to itself", field="target")
    if valid_from and valid_to and valid_to <= valid_from:
        raise InvalidInput("ends before it starts", field="valid_to")
    if not 0 <= confidence <= 1:
        raise InvalidInput("between 0 and 1", field="confidence")
    ensure_memory_on(organization=organization)
    with transaction.atomic():
        same = Relationship.objects.for_org(organization).filter(
            kind=kind, source=source_entity, target=target_entity
        )
        if valid_to is not None:
            same = same.exclude(valid_from__gte=valid_to)
        if valid_from is not None:
            same = same.exclude(valid_to__lte=valid_from)
        existing = same.order_by("id").first()
        if existing is not None:
            return existing
        relationship = Relationship.objects.for_org(organization).create(
            organization=organization, kind=kind, source=source_entity, target=target_entity,
            valid_from=valid_from, valid_to=valid_to, confidence=confidence,
            created_by=actor if actor is not None and actor.pk else None,
        )
        audit_record(organization=organization, actor=actor, action="memory.relationship.create",
                     target=relationship, target_label=str(relationship), after={"kind": kind})
    return relationship


def relationship_end(
    *, organization: Organization, relationship: Relationship, actor: User | None, at: datetime
) -> Relationship:
    """The relationship stops holding at ``at`` (kept in history)."""
    if relationship.organization_id != organization.pk:
        raise NotFound("no such relationship")
    if relationship.valid_from and at <= relationship.valid_from:
        raise InvalidInput("ends before it starts", field="valid_to")
    with transaction.atomic():
        relationship.valid_to = at
        relationship.save(update_fields=["valid_to", "updated_at"])
        audit_record(organization=organization, actor=actor, action="memory.relationship.end",
                     target=relationship, target_label=str(relationship))
    return relationship


def relationship_delete(*, organization: Organization, relationship: Relationship, actor: User | None) -> None:
    if relationship.organization_id != organization.pk:
        raise NotFound("no such relationship")
    with transaction.atomic():
        label = str(relationship)
        Relationship.objects.for_org(organization).filter(pk=relationship.pk).delete()
        audit_record(organization=organization, actor=actor, action="memory.relationship.delete", target=None,
                     target_label=label)


def relationships_at(*, organization: Organization, at: datetime | None = None) -> Q:
    """A filter for relationships holding at ``at`` (all of them when ``at`` is None)."""
    if at is None:
        return Q()
    return (Q(valid_from__isnull=True) | Q(valid_from__lte=at)) & (Q(valid_to__isnull=True) | Q(valid_to__gt=at))
