"""Learning from conversations: facts extracted by a model, filtered for secrets, written to business memory.

Runs in the background for each user message (``agents.learn_from_message``):
the fast tier lists facts (subject, predicate, value, category, confidence);
each goes through memory's privacy filter (a fact holding a secret is dropped
and counted, never stored or echoed), then :func:`memory.services.facts.fact_remember`
with its provenance (the message id and text). A contradiction comes back as
a pending fact behind a conflict: its question ("You said X before, now Y.
Which is correct?") is posted to the thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from accounts.errors import InvalidInput, ServiceError
from accounts.models import Organization, User
from agents import prompts
from agents.llm.gateway import complete
from agents.models import Message, MessageRole
from agents.services.activity import message_add

logger = logging.getLogger(__name__)

FACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "properties": {
                    "subject": {"type": ["string", "null"]},
                    "kind": {"type": ["string", "null"]},
                    "predicate": {"type": ["string", "null"]},
                    "value": {"type": ["string", "number", "boolean", "null"]},
                    "category": {"type": ["string", "null"]},
                    "confidence": {"type": ["number", "null"]},
                    "text": {"type": ["string", "null"]},
                },
            },
        }
    },
    "required": ["facts"],
}

MIN_CONFIDENCE = 0.5


@dataclass
class Learned:
    """What one message taught memory."""

    created: list[int] = field(default_factory=list)
    reinforced: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)
    refused_secrets: int = 0
    skipped: int = 0


def extract_facts(*, organization: Organization, user: User | None, text: str, scenario: str = ""
                  ) -> tuple[list[dict[str, Any]], Any]:
    """The facts a model reads in ``text`` (raw, unchecked) and the gateway's result."""
    result = complete(
        organization=organization, user=user, role="extractor", purpose="extract", scenario=scenario,
        messages=[{"role": "system", "content": prompts.EXTRACTOR},
                  {"role": "user", "content": prompts.untrusted(text, source="message")}],
        response_schema=FACTS_SCHEMA,
    )
    facts = [f for f in (result.parsed or {}).get("facts", []) if isinstance(f, dict)]
    return facts, result


def _sentence(fact: dict[str, Any]) -> str:
    text = str(fact.get("text") or "").strip()
    if text:
        return text
    subject, predicate, value = (str(fact.get(k) or "").strip() for k in ("subject", "predicate", "value"))
    return " ".join(p for p in (subject, predicate.replace("_", " "), value) if p) + "."


def facts_write(
    *, organization: Organization, actor: User | None, facts: list[dict[str, Any]], source_id: str,
    source_text: str, source_type: str = "message", source_message: Any = None,
) -> tuple[Learned, list[Any]]:
    """Write extracted facts to memory (privacy filter first); return what happened and the conflicts raised."""
    from memory import privacy
    from memory.models import Category, EntityKind
    from memory.services.entities import entity_upsert
    from memory.services.facts import FactInput, fact_remember

    learned = Learned()
    conflicts = []
    for raw in facts:
        confidence = raw.get("confidence")
        confidence = float(confidence) if isinstance(confidence, int | float) else 0.8
        if confidence < MIN_CONFIDENCE:
            learned.skipped += 1
            continue
        text = _sentence(raw)
        subject_name = str(raw.get("subject") or "").strip()
        predicate = str(raw.get("predicate") or "").strip()[:100]
        value = str(raw.get("value") if raw.get("value") is not None else "").strip()
        if privacy.scan_fields({"text": text, "subject": subject_name, "value": value}):
            learned.refused_secrets += 1
            continue
        category = str(raw.get("category") or "other")
        category = category if category in Category.values else Category.OTHER
        kind = str(raw.get("kind") or "")
        subject = None
        try:
            if subject_name and kind in EntityKind.values and predicate and value:
                subject, _ = entity_upsert(organization=organization, kind=kind, name=subject_name, actor=actor,
                                           source_type=source_type)
            result = fact_remember(
                organization=organization, actor=actor,
                candidate=FactInput(
                    text=text, category=category, subject=subject, predicate=predicate if subject else "",
                    value=value if subject else "", confidence=min(max(confidence, 0.0), 1.0),
                    source_type=source_type, source_id=source_id[:200], source_text=source_text[:4000],
                    source_message=source_message,
                ),
            )
        except ServiceError:  # refused by memory (a secret it caught, memory off, a bad value): skip it
            learned.skipped += 1
            continue
        if result.conflict is not None:
            learned.conflicts.append(result.conflict.pk)
            conflicts.append(result.conflict)
        elif result.outcome == "reinforced":
            learned.reinforced.append(result.fact.pk)
        else:
            learned.created.append(result.fact.pk)
    return learned, conflicts


def learn_from_message(*, message: Message) -> Learned:
    """Extract facts from a user message into memory; ask about contradictions in its thread."""
    from memory.errors import MemoryDisabled
    from memory.services.messages import MessageInput, message_record

    organization = message.organization
    user = message.author
    thread = message.thread
    source_id = f"agents.message:{message.pk}"
    indexed = None
    try:
        indexed = message_record(organization=organization, actor=user, candidate=MessageInput(
            text=message.content, speaker=(user.full_name or user.email) if user else "",
            source_id=source_id, occurred_at=message.created_at))
    except MemoryDisabled:
        return Learned()
    except InvalidInput:  # the message holds a secret: memory keeps nothing of it
        return Learned(refused_secrets=1)
    try:
        facts, _ = extract_facts(organization=organization, user=user, text=message.content,
                                 scenario=str((message.metadata or {}).get("scenario") or ""))
    except ServiceError as exc:
        logger.info("no facts from message %s: %s", message.pk, exc.message)
        return Learned()
    learned, conflicts = facts_write(organization=organization, actor=user, facts=facts, source_id=source_id,
                                     source_text=message.content, source_message=indexed)
    for conflict in conflicts:
        message_add(thread=thread, role=MessageRole.ASSISTANT, content=conflict.question,
                    metadata={"kind": "memory_conflict", "conflict": conflict.pk, "reply_to": message.pk})
    return learned
