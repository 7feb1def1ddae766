"""Memory commands: remember, forget (a fact or a topic), what do you know about X, show and clear my data.

Forgetting is a hard delete of the rows that hold the topic: facts (text,
source text and embedding), messages, entities named by it (with their facts
and relationships) and conflicts quoting it. Audit events name only counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory import retrieval
from memory.models import Conflict, Entity, ExpiryReview, Fact, FactStatus, Message, Relationship
from memory.normalize import name_key
from memory.references import speaker_entity
from memory.services.facts import FactInput, WriteResult, fact_remember, facts_mark_used

MAX_TOPIC_CHARS = 200


def memory_remember(
    *, organization: Organization, actor: User | None, text: str, category: str = "other", **details: Any
) -> WriteResult:
    """"Remember that ..." from a person: a fact told by the user."""
    return fact_remember(
        organization=organization,
        candidate=FactInput(text=text, category=category, source_type="user", **details),
        actor=actor,
    )


@dataclass
class ForgetReport:
    topic: str
    facts: int = 0
    messages: int = 0
    entities: int = 0
    conflicts: int = 0

    @property
    def total(self) -> int:
        return self.facts + self.messages + self.entities + self.conflicts

    def as_dict(self) -> dict[str, Any]:
        return {"facts": self.facts, "messages": self.messages, "entities": self.entities,
                "conflicts": self.conflicts}


def _topic_querysets(organization: Organization, topic: str) -> dict[str, QuerySet[Any]]:
    key = name_key(topic)
    entities = (
        Entity.objects.for_org(organization)
        .annotate(attributes_text=Cast("attributes", TextField()), aliases_text=Cast("aliases", TextField()))
        .filter(Q(key=key) | Q(alias_keys__contains=[key]) | Q(name__icontains=topic)
                | Q(aliases_text__icontains=topic) | Q(attributes_text__icontains=topic))
    )
    facts = Fact.objects.for_org(organization).filter(
        Q(text__icontains=topic) | Q(value__icontains=topic) | Q(source_text__icontains=topic)
        | Q(subject__in=entities.values("pk"))
    )
    messages = Message.objects.for_org(organization).filter(Q(text__icontains=topic) | Q(speaker__iexact=topic))
    conflicts = Conflict.objects.for_org(organization).filter(question__icontains=topic)
    return {"entities": entities, "facts": facts, "messages": messages, "conflicts": conflicts}


def memory_forget_topic(
    *, organization: Organization, topic: str, actor: User | None, dry_run: bool = False
) -> ForgetReport:
    """Delete everything that mentions ``topic`` (or is about the entity it names). ``dry_run`` only counts."""
    topic = " ".join((topic or "").split())
    if len(topic) < 2:
        raise InvalidInput("say what to forget (at least 2 characters)", field="topic")
    if len(topic) > MAX_TOPIC_CHARS:
        raise InvalidInput(f"at most {MAX_TOPIC_CHARS} characters", field="topic")
    with transaction.atomic():
        sets = _topic_querysets(organization, topic)
        report = ForgetReport(
            topic=topic,
            facts=sets["facts"].count(),
            messages=sets["messages"].count(),
            entities=sets["entities"].count(),
            conflicts=sets["conflicts"].count(),
        )
        if dry_run:
            return report
        # Conflicts quoting the topic, then facts (their conflicts cascade), messages, entities.
        sets["conflicts"].delete()
        fact_ids = list(sets["facts"].values_list("pk", flat=True))
        Fact.objects.for_org(organization).filter(pk__in=fact_ids).delete()
        sets["messages"].delete()
        Entity.objects.for_org(organization).filter(pk__in=list(sets["entities"].values_list("pk", flat=True))).delete()
        audit_record(organization=organization, actor=actor, action="memory.forget", target=None,
                     target_label="a topic", after=report.as_dict())
    return report


def memory_forget_fact(*, organization: Organization, fact: Fact, actor: User | None) -> ForgetReport:
    """Forget one fact (and every version of it kept in its history)."""
    if fact.organization_id != organization.pk:
        raise InvalidInput("no such fact", field="fact")
    with transaction.atomic():
        versions = Fact.objects.for_org(organization).filter(pk=fact.pk)
        if fact.subject_id and fact.predicate:
            versions = Fact.objects.for_org(organization).filter(
                Q(pk=fact.pk) | Q(superseded_by=fact) | Q(supersedes=fact)
            )
        count = versions.count()
        Fact.objects.for_org(organization).filter(pk__in=list(versions.values_list("pk", flat=True))).delete()
        report = ForgetReport(topic="", facts=count)
        audit_record(organization=organization, actor=actor, action="memory.forget", target=None,
                     target_label="a fact", after=report.as_dict())
    return report


@dataclass
class Knowledge:
    """The answer to "what do you know about X"."""

    topic: str
    entity: Entity | None
    facts: list[Fact] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    hits: list[retrieval.Hit] = field(default_factory=list)


def memory_about(
    *, organization: Organization, topic: str, at: datetime | None = None, limit: int = 20
) -> Knowledge:
    """Everything current about ``topic``: the entity it names, its facts and relationships, related results."""
    topic = " ".join((topic or "").split())
    if not topic:
        raise InvalidInput("about what?", field="q")
    at = at or timezone.now()
    key = name_key(topic)
    entity = (
        Entity.objects.for_org(organization).filter(Q(key=key) | Q(alias_keys__contains=[key])).order_by("id").first()
    )
    knowledge = Knowledge(topic=topic, entity=entity)
    valid = (Q(valid_from__isnull=True) | Q(valid_from__lte=at)) & (Q(valid_to__isnull=True) | Q(valid_to__gt=at))
    if entity is not None:
        knowledge.facts = list(
            Fact.objects.for_org(organization).filter(valid, subject=entity).exclude(status=FactStatus.PENDING)
            .order_by("predicate", "-confidence")[:limit]
        )
        knowledge.relationships = list(
            Relationship.objects.for_org(organization).filter(valid).filter(Q(source=entity) | Q(target=entity))
            .select_related("source", "target")
        )
    known = {f.pk for f in knowledge.facts}
    knowledge.hits = [
        h for h in retrieval.search(organization=organization, query=topic, at=at, limit=limit)
        if not (h.fact is not None and h.fact.pk in known)
    ]
    facts_mark_used(organization=organization, fact_ids=[*known, *(h.fact.pk for h in knowledge.hits if h.fact)])
    return knowledge


def _my_rows(organization: Organization, user: User) -> tuple[QuerySet[Fact], QuerySet[Message], Entity | None]:
    me = speaker_entity(organization=organization, speaker=user)
    facts = Fact.objects.for_org(organization).filter(Q(created_by=user) | (Q(subject=me) if me else Q(pk__in=[])))
    messages = Message.objects.for_org(organization).filter(created_by=user)
    return facts, messages, me


def memory_show_my_data(*, organization: Organization, user: User) -> dict[str, Any]:
    """What memory holds that the user told it or that is about the user."""
    facts, messages, me = _my_rows(organization, user)
    return {
        "person": me,
        "facts": list(facts.select_related("subject").order_by("-updated_at")),
        "messages": list(messages.order_by("-created_at")),
    }


def memory_clear_my_data(*, organization: Organization, user: User, actor: User | None) -> ForgetReport:
    """Delete what the user told memory and the facts about the user (the person entity stays)."""
    with transaction.atomic():
        facts, messages, _ = _my_rows(organization, user)
        report = ForgetReport(topic="", facts=facts.count(), messages=messages.count())
        Fact.objects.for_org(organization).filter(pk__in=list(facts.values_list("pk", flat=True))).delete()
        messages.delete()
        audit_record(organization=organization, actor=actor, action="memory.clear_mine", target=None,
                     target_label="own memory data", after=report.as_dict())
    return report


def memory_clear_all(*, organization: Organization, actor: User | None) -> ForgetReport:
    """Delete the organization's whole memory (its settings stay)."""
    with transaction.atomic():
        report = ForgetReport(
            topic="",
            facts=Fact.objects.for_org(organization).count(),
            messages=Message.objects.for_org(organization).count(),
            entities=Entity.objects.for_org(organization).count(),
            conflicts=Conflict.objects.for_org(organization).count(),
        )
        Conflict.objects.for_org(organization).delete()
        Fact.objects.for_org(organization).delete()
        Relationship.objects.for_org(organization).delete()
        Entity.objects.for_org(organization).delete()
        Message.objects.for_org(organization).delete()
        ExpiryReview.objects.for_org(organization).delete()
        audit_record(organization=organization, actor=actor, action="memory.clear_all", target=None,
                     target_label="organization memory", after=report.as_dict())
    return report
