"""Writing facts: privacy filter, deduplication, conflicts and temporal supersession.

* The same subject, predicate and value said again reinforces the fact
  (confidence grows, ``mentions`` counts) instead of adding a copy; a fact with
  no predicate deduplicates on its normalized text.
* The same subject and predicate with a different value, valid at overlapping
  times, is a contradiction: the new statement is stored as a *pending* fact
  behind a :class:`~memory.models.Conflict` ("You said X before, now Y. Which is
  correct?"). Nothing is overwritten; retrieval ignores pending facts.
* A confirmed change closes the earlier fact (``valid_to``, ``superseded_by``,
  status superseded): history is kept, so time-scoped questions still work.
* Some predicates hold several values at once (``uses``, ``likes``...); some
  roles belong to one person at a time ("CFO"): naming a second holder is a
  conflict too.

Audit events name facts by id only: the audit log is append-only and must not
keep what a later "forget" removes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.errors import InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory import conf, embeddings, privacy
from memory.errors import MemoryDisabled, SecretRefused
from memory.models import Category, Conflict, Entity, Fact, FactStatus, Message, SourceType
from memory.normalize import normalize_text, predicate_key, text_key, value_key
from memory.services.settings import memory_settings_get

# Predicates that hold several values at the same time: a new value is added, never a conflict.
MULTI_VALUED_PREDICATES = frozenset(
    {"uses", "likes", "dislikes", "prefers", "works_on", "knows", "owns", "speaks", "has", "attended",
     "visited", "mentioned", "note", "said", "interested_in", "member_of", "skill", "hobby", "goal"}
)
# Predicates mirrored in the subject entity's attributes while the fact is current.
ATTRIBUTE_PREDICATES = frozenset({"email", "role", "title", "phone", "department", "location"})
ROLE_PREDICATES = frozenset({"role", "title"})
# Roles one person holds at a time: naming a second current holder asks which is right.
EXCLUSIVE_ROLES = frozenset(
    {"ceo", "cfo", "cto", "coo", "cmo", "cio", "ciso", "cpo", "chro", "president", "chief executive officer",
     "chief financial officer", "chief technology officer", "chief operating officer", "general counsel"}
)


@dataclass
class FactInput:
    """A candidate fact, as the agent's extractor or a person states it."""

    text: str
    category: str = Category.OTHER
    subject: Entity | None = None
    predicate: str = ""
    value: str = ""
    confidence: float = 0.8
    source_type: str = SourceType.USER
    source_id: str = ""
    source_link: str = ""
    source_text: str = ""
    source_message: Message | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@dataclass
class WriteResult:
    """What a write did: ``created``, ``reinforced``, ``conflict`` (pending) or ``superseded`` (confirmed change)."""

    outcome: str
    fact: Fact
    conflict: Conflict | None = None
    superseded: list[Fact] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.conflict is not None:
            return self.conflict.question
        return {
            "created": "Remembered.",
            "reinforced": "I already knew that; it is now more certain.",
            "superseded": "Updated; the earlier value is kept in the history.",
        }.get(self.outcome, "")


# --- validation --------------------------------------------------------------------------------


def validate_fact_input(candidate: FactInput, *, organization: Organization) -> None:
    """Field-level checks; raises :class:`InvalidInput` or :class:`SecretRefused`."""
    text = (candidate.text or "").strip()
    if not text:
        raise InvalidInput("a fact needs a text", field="text")
    if len(text) > conf.MAX_TEXT_CHARS:
        raise InvalidInput(f"at most {conf.MAX_TEXT_CHARS} characters", field="text")
    if len(candidate.value or "") > conf.MAX_VALUE_CHARS:
        raise InvalidInput(f"at most {conf.MAX_VALUE_CHARS} characters", field="value")
    if len(candidate.predicate or "") > conf.MAX_PREDICATE_CHARS:
        raise InvalidInput(f"at most {conf.MAX_PREDICATE_CHARS} characters", field="predicate")
    if len(candidate.source_text or "") > conf.MAX_SOURCE_TEXT_CHARS:
        raise InvalidInput(f"at most {conf.MAX_SOURCE_TEXT_CHARS} characters", field="source_text")
    if len(candidate.source_id or "") > 200:
        raise InvalidInput("at most 200 characters", field="source_id")
    if len(candidate.source_link or "") > 500:
        raise InvalidInput("at most 500 characters", field="source_link")
    if candidate.category not in Category.values:
        raise InvalidInput(f"unknown category {candidate.category!r}; choose from {', '.join(Category.values)}",
                           field="category")
    if candidate.source_type not in SourceType.values:
        raise InvalidInput(f"unknown source type {candidate.source_type!r}", field="source_type")
    if not 0 <= float(candidate.confidence) <= 1:
        raise InvalidInput("between 0 and 1", field="confidence")
    if candidate.predicate and not predicate_key(candidate.predicate):
        raise InvalidInput("a predicate needs letters or digits", field="predicate")
    if candidate.predicate and not (candidate.value or "").strip():
        raise InvalidInput("a fact with a predicate needs a value", field="value")
    if candidate.valid_from and candidate.valid_to and candidate.valid_to < candidate.valid_from:
        raise InvalidInput("ends before it starts", field="valid_to")
    for name, entity in (("subject", candidate.subject),):
        if entity is not None and entity.organization_id != organization.pk:
            raise InvalidInput("no such entity in this organization", field=name)
    if candidate.source_message is not None and candidate.source_message.organization_id != organization.pk:
        raise InvalidInput("no such message in this organization", field="source_message")
    findings = privacy.scan_fields(
        {"text": candidate.text, "value": candidate.value, "predicate": candidate.predicate,
         "source_text": candidate.source_text, "source_link": candidate.source_link}
    )
    if findings:
        raise SecretRefused(findings)


def ensure_memory_on(*, organization: Organization, category: str | None = None) -> None:
    current = memory_settings_get(organization=organization)
    if not current.enabled:
        raise MemoryDisabled()
    if category is not None and category not in current.allowed_categories:
        raise InvalidInput(f"this organization does not keep {category!r} facts", field="category")


# --- writing -----------------------------------------------------------------------------------


def fact_remember(
    *,
    organization: Organization,
    candidate: FactInput,
    actor: User | None = None,
    confirmed: bool = False,
    embedding: Sequence[float] | None = None,
) -> WriteResult:
    """Store ``candidate`` with deduplication and conflict detection (see the module docstring).

    ``confirmed``: the person stated a change outright (an edit, "Sarah's email changed to..."), so a
    contradicted fact is superseded at once instead of asking.
    """
    validate_fact_input(candidate, organization=organization)
    ensure_memory_on(organization=organization, category=candidate.category)
    if embedding is None:
        embedding = embeddings.embed_text(candidate.text.strip())
    with transaction.atomic():
        _lock(organization, candidate)
        return _write(organization=organization, candidate=candidate, actor=actor, confirmed=confirmed,
                      embedding=embedding)


def facts_remember_many(
    *, organization: Organization, candidates: Sequence[FactInput], actor: User | None = None
) -> list[WriteResult | InvalidInput]:
    """Write several candidates with one embedding batch; each gets its result or its refusal."""
    valid: list[tuple[int, FactInput]] = []
    results: list[WriteResult | InvalidInput] = [InvalidInput("not processed")] * len(candidates)
    for index, candidate in enumerate(candidates):
        try:
            validate_fact_input(candidate, organization=organization)
            ensure_memory_on(organization=organization, category=candidate.category)
        except InvalidInput as refused:
            results[index] = refused
            continue
        valid.append((index, candidate))
    vectors = embeddings.embed_texts([c.text.strip() for _, c in valid])
    for (index, candidate), vector in zip(valid, vectors, strict=True):
        with transaction.atomic():
            _lock(organization, candidate)
            results[index] = _write(organization=organization, candidate=candidate, actor=actor, confirmed=False,
                                    embedding=vector)
    return results


def _lock(organization: Organization, candidate: FactInput) -> None:
    """Serialize writes about the same subject and predicate (or the same text) within the organization."""
    if candidate.subject is not None and candidate.predicate:
        key = f"{organization.pk}:{candidate.subject.pk}:{predicate_key(candidate.predicate)}"
    else:
        key = f"{organization.pk}:text:{text_key(candidate.text)}"
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])
    if candidate.predicate and predicate_key(candidate.predicate) in ROLE_PREDICATES:
        role_key = f"{organization.pk}:role:{value_key(candidate.value)}"
        number = int.from_bytes(hashlib.sha256(role_key.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def _overlapping(queryset: Any, valid_from: datetime | None, valid_to: datetime | None) -> Any:
    """Rows whose validity interval [from, to) overlaps the given one (empty ends are open)."""
    if valid_to is not None:
        queryset = queryset.exclude(valid_from__gte=valid_to)
    if valid_from is not None:
        queryset = queryset.exclude(valid_to__lte=valid_from)
    return queryset


def _write(
    *,
    organization: Organization,
    candidate: FactInput,
    actor: User | None,
    confirmed: bool,
    embedding: Sequence[float],
) -> WriteResult:
    facts = Fact.objects.for_org(organization)
    predicate = predicate_key(candidate.predicate) if candidate.predicate else ""
    new_value_key = value_key(candidate.value) if candidate.value else ""
    structured = candidate.subject is not None and bool(predicate)

    if structured:
        same_slot = _overlapping(
            facts.filter(subject=candidate.subject, predicate=predicate), candidate.valid_from, candidate.valid_to
        )
        same = same_slot.filter(value_key=new_value_key, status__in=[FactStatus.ACTIVE, FactStatus.PENDING])
        existing = same.order_by("status", "-created_at").first()  # active before pending
        if existing is not None:
            return _reinforce(existing, candidate)
        contradicted: list[Fact] = []
        if predicate not in MULTI_VALUED_PREDICATES:
            contradicted = list(same_slot.filter(status=FactStatus.ACTIVE).order_by("-created_at"))
        if predicate in ROLE_PREDICATES and normalize_text(candidate.value) in EXCLUSIVE_ROLES:
            other_holders = _overlapping(
                facts.filter(predicate=predicate, value_key=new_value_key, status=FactStatus.ACTIVE)
                .exclude(subject=candidate.subject),
                candidate.valid_from,
                candidate.valid_to,
            )
            contradicted += list(other_holders.order_by("-created_at"))
    else:
        existing = (
            facts.filter(text_key=text_key(candidate.text), subject=candidate.subject,
                         status__in=[FactStatus.ACTIVE, FactStatus.PENDING])
            .order_by("status", "-created_at")
            .first()
        )
        if existing is None:
            existing = _near_duplicate(organization, candidate, embedding)
        if existing is not None:
            return _reinforce(existing, candidate)
        contradicted = []

    valid_from = candidate.valid_from
    if contradicted and confirmed and valid_from is None:
        valid_from = timezone.now()
    fact = Fact(
        organization=organization,
        category=candidate.category,
        subject=candidate.subject,
        predicate=predicate,
        value=(candidate.value or "").strip(),
        value_key=new_value_key,
        text=candidate.text.strip(),
        text_key=text_key(candidate.text),
        status=FactStatus.PENDING if contradicted and not confirmed else FactStatus.ACTIVE,
        confidence=float(candidate.confidence),
        source_type=candidate.source_type,
        source_id=candidate.source_id or "",
        source_link=candidate.source_link or "",
        source_text=candidate.source_text or "",
        source_message=candidate.source_message,
        valid_from=valid_from,
        valid_to=candidate.valid_to,
        created_by=actor if actor is not None and actor.pk else None,
        embedding=list(embedding),
    )
    fact.save()
    audit_record(organization=organization, actor=actor, action="memory.fact.create", target=fact,
                 target_label=str(fact), after={"category": fact.category, "status": fact.status})

    if contradicted and not confirmed:
        conflict = Conflict.objects.for_org(organization).create(
            organization=organization,
            existing_fact=contradicted[0],
            proposed_fact=fact,
            question=conflict_question(contradicted[0], fact),
        )
        return WriteResult("conflict", fact, conflict=conflict)
    if contradicted:
        supersede(old=contradicted, new=fact, actor=actor)
        _sync_attributes(fact)
        return WriteResult("superseded", fact, superseded=contradicted)
    _sync_attributes(fact)
    return WriteResult("created", fact)


def _near_duplicate(organization: Organization, candidate: FactInput, embedding: Sequence[float]) -> Fact | None:
    """A free-text fact saying the same thing in other words (cosine distance under the threshold)."""
    threshold = conf.dedup_max_distance()
    if threshold <= 0:
        return None
    from pgvector.django import CosineDistance

    return (
        Fact.objects.for_org(organization)
        .filter(predicate="", subject=candidate.subject, status=FactStatus.ACTIVE, category=candidate.category)
        .annotate(distance=CosineDistance("embedding", list(embedding)))
        .filter(distance__lt=threshold)
        .order_by("distance")
        .first()
    )


def _reinforce(existing: Fact, candidate: FactInput) -> WriteResult:
    """Said again: confidence grows (independent evidence, noisy-or), the mention is counted."""
    existing.confidence = round(1 - (1 - existing.confidence) * (1 - float(candidate.confidence)), 6)
    existing.mentions += 1
    updates = ["confidence", "mentions", "updated_at"]
    if not existing.source_text and candidate.source_text:
        existing.source_text = candidate.source_text
        existing.source_type = candidate.source_type
        existing.source_id = candidate.source_id
        existing.source_link = candidate.source_link
        existing.source_message = candidate.source_message
        updates += ["source_text", "source_type", "source_id", "source_link", "source_message"]
    existing.save(update_fields=updates)
    return WriteResult("reinforced", existing)


def conflict_question(existing: Fact, proposed: Fact) -> str:
    return f"You said {_said(existing)} before, now {_said(proposed)}. Which is correct?"


def _said(fact: Fact) -> str:
    text = fact.text.strip().rstrip(".")
    return f'"{text}"'


def supersede(*, old: Sequence[Fact], new: Fact, actor: User | None) -> None:
    """Close each of ``old`` where ``new`` starts (or now) and point it at ``new``."""
    ends = new.valid_from or timezone.now()
    for fact in old:
        fact.valid_to = max(ends, fact.valid_from) if fact.valid_from else ends
        fact.status = FactStatus.SUPERSEDED
        fact.superseded_by = new
        fact.save(update_fields=["valid_to", "status", "superseded_by", "updated_at"])
        audit_record(organization=new.organization, actor=actor, action="memory.fact.supersede", target=fact,
                     target_label=str(fact), after={"superseded_by": new.pk})
        if fact.subject_id and fact.predicate in ATTRIBUTE_PREDICATES:
            _clear_attribute(fact)


def _sync_attributes(fact: Fact) -> None:
    """Mirror a current attribute fact (email, role...) on its subject entity."""
    if fact.subject is None or fact.predicate not in ATTRIBUTE_PREDICATES or fact.status != FactStatus.ACTIVE:
        return
    if fact.valid_to is not None and fact.valid_to <= timezone.now():
        return
    subject = fact.subject
    if subject.attributes.get(fact.predicate) != fact.value:
        subject.attributes = {**subject.attributes, fact.predicate: fact.value}
        subject.save(update_fields=["attributes", "updated_at"])


def _clear_attribute(fact: Fact) -> None:
    subject = Entity.objects.for_org(fact.organization).filter(pk=fact.subject_id).first()
    if subject is not None and subject.attributes.get(fact.predicate) == fact.value:
        attributes = dict(subject.attributes)
        attributes.pop(fact.predicate, None)
        subject.attributes = attributes
        subject.save(update_fields=["attributes", "updated_at"])


# --- editing and deleting ----------------------------------------------------------------------


def fact_get(*, organization: Organization, fact_id: int) -> Fact:
    fact = Fact.objects.for_org(organization).filter(pk=fact_id).first()
    if fact is None:
        raise NotFound("no such fact")
    return fact


def fact_update(
    *,
    organization: Organization,
    fact: Fact,
    actor: User | None,
    text: str | None = None,
    value: str | None = None,
    category: str | None = None,
    confidence: float | None = None,
    valid_from: datetime | Any | None = ...,
    valid_to: datetime | Any | None = ...,
) -> WriteResult:
    """Edit a fact. A new value or text is a confirmed change: the old version is superseded, kept in history."""
    if fact.organization_id != organization.pk:
        raise NotFound("no such fact")
    if fact.status != FactStatus.ACTIVE:
        raise InvalidInput("only a current fact can be edited; resolve its conflict first", field="status")
    changes_content = (text is not None and text.strip() != fact.text) or (
        value is not None and value.strip() != fact.value
    )
    if changes_content:
        candidate = FactInput(
            text=text if text is not None else fact.text,
            category=category or fact.category,
            subject=fact.subject,
            predicate=fact.predicate,
            value=value if value is not None else fact.value,
            confidence=confidence if confidence is not None else fact.confidence,
            source_type=SourceType.USER,
            valid_from=timezone.now() if valid_from is ... else valid_from,
            valid_to=None if valid_to is ... else valid_to,
        )
        validate_fact_input(candidate, organization=organization)
        ensure_memory_on(organization=organization, category=candidate.category)
        vector = embeddings.embed_text(candidate.text.strip())
        with transaction.atomic():
            locked = Fact.objects.for_org(organization).select_for_update().get(pk=fact.pk)
            if locked.status != FactStatus.ACTIVE:
                raise InvalidInput("the fact changed meanwhile; reload it", field="status")
            new = _new_version(organization, locked, candidate, actor, vector)
            supersede(old=[locked], new=new, actor=actor)
            _sync_attributes(new)
            return WriteResult("superseded", new, superseded=[locked])
    with transaction.atomic():
        locked = Fact.objects.for_org(organization).select_for_update().get(pk=fact.pk)
        before = {"category": locked.category, "confidence": locked.confidence}
        if category is not None:
            if category not in Category.values:
                raise InvalidInput(f"unknown category {category!r}", field="category")
            locked.category = category
        if confidence is not None:
            if not 0 <= confidence <= 1:
                raise InvalidInput("between 0 and 1", field="confidence")
            locked.confidence = confidence
        if valid_from is not ...:
            locked.valid_from = valid_from
        if valid_to is not ...:
            locked.valid_to = valid_to
        if locked.valid_from and locked.valid_to and locked.valid_to < locked.valid_from:
            raise InvalidInput("ends before it starts", field="valid_to")
        locked.save()
        audit_record(organization=organization, actor=actor, action="memory.fact.update", target=locked,
                     target_label=str(locked), before=before,
                     after={"category": locked.category, "confidence": locked.confidence})
        return WriteResult("updated", locked)


def _new_version(
    organization: Organization, old: Fact, candidate: FactInput, actor: User | None, vector: Sequence[float]
) -> Fact:
    new = Fact.objects.for_org(organization).create(
        organization=organization,
        category=candidate.category,
        subject=old.subject,
        predicate=old.predicate,
        value=candidate.value.strip(),
        value_key=value_key(candidate.value) if candidate.value else "",
        text=candidate.text.strip(),
        text_key=text_key(candidate.text),
        confidence=candidate.confidence,
        source_type=SourceType.USER,
        valid_from=candidate.valid_from,
        valid_to=candidate.valid_to,
        created_by=actor if actor is not None and actor.pk else None,
        embedding=list(vector),
    )
    audit_record(organization=organization, actor=actor, action="memory.fact.create", target=new,
                 target_label=str(new), after={"category": new.category, "replaces": old.pk})
    return new


def fact_delete(*, organization: Organization, fact: Fact, actor: User | None) -> None:
    """Delete a fact for good: its text, source text and embedding (its conflicts go with it)."""
    if fact.organization_id != organization.pk:
        raise NotFound("no such fact")
    with transaction.atomic():
        label = str(fact)
        Fact.objects.for_org(organization).filter(pk=fact.pk).delete()
        audit_record(organization=organization, actor=actor, action="memory.fact.delete", target=None,
                     target_label=label)


def facts_mark_used(*, organization: Organization, fact_ids: Sequence[int]) -> None:
    """Record that these facts were put in front of the assistant (keeps them from expiring)."""
    if not fact_ids:
        return
    Fact.objects.for_org(organization).filter(pk__in=list(fact_ids)).update(
        last_used_at=timezone.now(), use_count=F("use_count") + 1
    )


def fact_history(*, organization: Organization, fact: Fact) -> list[Fact]:
    """Every version of the fact's subject and predicate (or its supersession chain), oldest first."""
    facts = Fact.objects.for_org(organization)
    if fact.subject_id and fact.predicate:
        versions = facts.filter(subject_id=fact.subject_id, predicate=fact.predicate)
        if fact.predicate in MULTI_VALUED_PREDICATES:
            versions = versions.filter(value_key=fact.value_key)
        return list(versions.order_by(F("valid_from").asc(nulls_first=True), "created_at", "id"))
    chain = {fact.pk: fact}
    frontier = [fact]
    while frontier:
        current = frontier.pop()
        linked = list(facts.filter(superseded_by=current)) + (
            [current.superseded_by] if current.superseded_by_id else []
        )
        for item in linked:
            if item is not None and item.pk not in chain:
                chain[item.pk] = item
                frontier.append(item)
    return sorted(chain.values(), key=lambda f: (f.valid_from or f.created_at, f.created_at, f.pk))
