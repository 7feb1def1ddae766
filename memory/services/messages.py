"""Indexing the messages and passages facts come from, so retrieval can search both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from memory import conf, embeddings, privacy
from memory.errors import SecretRefused
from memory.models import Message, SourceType
from memory.services.facts import ensure_memory_on


@dataclass
class MessageInput:
    text: str
    speaker: str = ""
    source_type: str = SourceType.MESSAGE
    source_id: str = ""
    source_link: str = ""
    occurred_at: datetime | None = None


def validate_message_input(candidate: MessageInput) -> None:
    text = (candidate.text or "").strip()
    if not text:
        raise InvalidInput("a message needs a text", field="text")
    if len(text) > conf.MAX_SOURCE_TEXT_CHARS:
        raise InvalidInput(f"at most {conf.MAX_SOURCE_TEXT_CHARS} characters", field="text")
    if len(candidate.speaker or "") > conf.MAX_NAME_CHARS:
        raise InvalidInput(f"at most {conf.MAX_NAME_CHARS} characters", field="speaker")
    if len(candidate.source_id or "") > 200:
        raise InvalidInput("at most 200 characters", field="source_id")
    if len(candidate.source_link or "") > 500:
        raise InvalidInput("at most 500 characters", field="source_link")
    if candidate.source_type not in SourceType.values:
        raise InvalidInput(f"unknown source type {candidate.source_type!r}", field="source_type")
    findings = privacy.scan_fields({"text": candidate.text, "speaker": candidate.speaker,
                                    "source_link": candidate.source_link})
    if findings:
        raise SecretRefused(findings)


def embedding_text(text: str, speaker: str = "") -> str:
    """What a message's embedding encodes: who said it and what."""
    text = text.strip()
    return f"{speaker.strip()}: {text}" if speaker.strip() else text


def messages_record(
    *, organization: Organization, candidates: Sequence[MessageInput], actor: User | None = None
) -> list[Message | InvalidInput]:
    """Index messages (one embedding batch). A message holding a secret is refused whole and reported.

    A message already indexed under the same source type and id is returned as it is.
    """
    ensure_memory_on(organization=organization)
    results: list[Message | InvalidInput] = [InvalidInput("not processed")] * len(candidates)
    fresh: list[tuple[int, MessageInput]] = []
    ids = [c.source_id for c in candidates if c.source_id]
    known = {
        (m.source_type, m.source_id): m
        for m in Message.objects.for_org(organization).filter(source_id__in=ids).order_by("id")
    } if ids else {}
    seen: set[tuple[str, str]] = set()
    for index, candidate in enumerate(candidates):
        try:
            validate_message_input(candidate)
        except InvalidInput as refused:
            results[index] = refused
            continue
        key = (candidate.source_type, candidate.source_id)
        if candidate.source_id and key in known:
            results[index] = known[key]
            continue
        if candidate.source_id and key in seen:
            results[index] = InvalidInput("the same message twice in one batch", field="source_id")
            continue
        seen.add(key)
        fresh.append((index, candidate))
    vectors = embeddings.embed_texts([embedding_text(c.text, c.speaker) for _, c in fresh])
    rows = [
        Message(
            organization=organization,
            source_type=candidate.source_type,
            source_id=candidate.source_id,
            source_link=candidate.source_link,
            speaker=candidate.speaker.strip(),
            text=candidate.text.strip(),
            occurred_at=candidate.occurred_at,
            created_by=actor if actor is not None and actor.pk else None,
            embedding=vector,
        )
        for (_, candidate), vector in zip(fresh, vectors, strict=True)
    ]
    with transaction.atomic():
        created = Message.objects.for_org(organization).bulk_create(rows, batch_size=500)
    for (index, _), message in zip(fresh, created, strict=True):
        results[index] = message
    return results


def message_record(*, organization: Organization, candidate: MessageInput, actor: User | None = None) -> Message:
    """Index one message, or raise what refused it."""
    result = messages_record(organization=organization, candidates=[candidate], actor=actor)[0]
    if isinstance(result, InvalidInput):
        raise result
    return result
