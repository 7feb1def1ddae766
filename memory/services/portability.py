"""Export and import of an organization's memory: JSON (lossless round trip) and Markdown (to read).

The JSON names rows by local references (``e1``, ``f7``, ``m3``) instead of
database ids, so a file imports into any organization. Embeddings are not
exported: they are derived from the text and recomputed on import.

An import is all-or-nothing: every row is validated first (fields, references,
the privacy filter) and the first problem is reported as ``facts[3].category:
...``; nothing is written unless every row is good. Rows identical to what the
organization already holds are skipped, so importing the same file twice adds
nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory import conf, embeddings, privacy
from memory.models import (
    Category,
    Conflict,
    ConflictStatus,
    Entity,
    EntityKind,
    Fact,
    FactStatus,
    Message,
    Relationship,
    RelationshipKind,
    SourceType,
)
from memory.normalize import name_key, predicate_key, text_key, value_key
from memory.services.facts import ensure_memory_on
from memory.services.messages import embedding_text

FORMAT = "staffer-memory"
VERSION = 1
MAX_ROWS = 50000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_json(*, organization: Organization) -> dict[str, Any]:
    """The organization's memory as a JSON-ready dict (stable order)."""
    entities = list(Entity.objects.for_org(organization).order_by("id"))
    facts = list(Fact.objects.for_org(organization).order_by("id"))
    messages = list(Message.objects.for_org(organization).order_by("id"))
    relationships = list(Relationship.objects.for_org(organization).order_by("id"))
    conflicts = list(Conflict.objects.for_org(organization).filter(status=ConflictStatus.PENDING).order_by("id"))
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "entities": [
            {"ref": f"e{e.pk}", "kind": e.kind, "name": e.name, "aliases": list(e.aliases),
             "attributes": dict(e.attributes)}
            for e in entities
        ],
        "relationships": [
            {"kind": r.kind, "source": f"e{r.source_id}", "target": f"e{r.target_id}",
             "valid_from": _iso(r.valid_from), "valid_to": _iso(r.valid_to), "confidence": r.confidence}
            for r in relationships
        ],
        "messages": [
            {"ref": f"m{m.pk}", "source_type": m.source_type, "source_id": m.source_id, "source_link": m.source_link,
             "speaker": m.speaker, "text": m.text, "occurred_at": _iso(m.occurred_at)}
            for m in messages
        ],
        "facts": [
            {
                "ref": f"f{f.pk}", "category": f.category, "subject": f"e{f.subject_id}" if f.subject_id else None,
                "predicate": f.predicate, "value": f.value, "text": f.text, "status": f.status,
                "confidence": f.confidence, "mentions": f.mentions,
                "source_type": f.source_type, "source_id": f.source_id, "source_link": f.source_link,
                "source_text": f.source_text, "source_message": f"m{f.source_message_id}" if f.source_message_id
                else None,
                "valid_from": _iso(f.valid_from), "valid_to": _iso(f.valid_to),
                "superseded_by": f"f{f.superseded_by_id}" if f.superseded_by_id else None,
                "last_used_at": _iso(f.last_used_at), "use_count": f.use_count,
            }
            for f in facts
        ],
        "conflicts": [
            {"existing": f"f{c.existing_fact_id}", "proposed": f"f{c.proposed_fact_id}", "question": c.question}
            for c in conflicts
        ],
    }


def fact_signature(fact: Fact | dict[str, Any], subject_name: str | None = None) -> tuple[Any, ...]:
    """What makes two facts the same fact (content, provenance and time), independent of database ids."""
    if isinstance(fact, Fact):
        return (
            fact.category, name_key(fact.subject.name) if fact.subject_id else None, fact.predicate, fact.value,
            fact.text, fact.status, round(fact.confidence, 6), fact.source_type, fact.source_id, fact.source_link,
            fact.source_text, _iso(fact.valid_from), _iso(fact.valid_to),
        )
    return (
        fact["category"], name_key(subject_name) if subject_name else None, fact["predicate"], fact["value"],
        fact["text"], fact["status"], round(float(fact["confidence"]), 6), fact["source_type"], fact["source_id"],
        fact["source_link"], fact["source_text"], fact["valid_from"], fact["valid_to"],
    )


# --- import -------------------------------------------------------------------------------------


class _Rows:
    """Validation helpers that name the row: ``facts[3].category``."""

    def __init__(self, section: str, index: int, row: Any) -> None:
        self.where = f"{section}[{index}]"
        if not isinstance(row, dict):
            self.fail("", "each row is an object")
        self.row = row

    def fail(self, name: str, message: str) -> None:
        field = f"{self.where}.{name}" if name else self.where
        raise InvalidInput(f"{field}: {message}", field=self.where)

    def text(self, name: str, *, max_length: int, required: bool = False, default: str = "") -> str:
        value = self.row.get(name, default)
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.fail(name, "must be a string")
        if required and not value.strip():
            self.fail(name, "must not be empty")
        if len(value) > max_length:
            self.fail(name, f"at most {max_length} characters")
        return value

    def choice(self, name: str, choices: list[str], default: str | None = None) -> str:
        value = self.row.get(name, default)
        if value not in choices:
            self.fail(name, f"unknown value {value!r}; choose from {', '.join(choices)}")
        return str(value)

    def when(self, name: str) -> datetime | None:
        value = self.row.get(name)
        if value in (None, ""):
            return None
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            self.fail(name, "not an ISO 8601 date and time")
        assert parsed is not None
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
        return parsed

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.row.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            self.fail(name, f"a number from {low:g} to {high:g}")
        return float(value)

    def ref(self, name: str, known: dict[str, Any], *, required: bool = False) -> Any:
        value = self.row.get(name)
        if value in (None, ""):
            if required:
                self.fail(name, "a reference is needed")
            return None
        if value not in known:
            self.fail(name, f"refers to {value!r}, which is not in the file")
        return known[value]

    def secrets(self, fields: dict[str, Any]) -> None:
        findings = privacy.scan_fields(fields)
        if findings:
            self.fail(findings[0].field, privacy.describe(findings))


def _section(data: dict[str, Any], name: str) -> list[Any]:
    rows = data.get(name, [])
    if not isinstance(rows, list):
        raise InvalidInput(f"{name}: a list of rows", field=name)
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"{name}: at most {MAX_ROWS} rows", field=name)
    return rows


def import_json(*, organization: Organization, data: Any, actor: User | None) -> dict[str, int]:
    """Import an export (see the module docstring). Returns the counts of rows added."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"not a memory export (format must be {FORMAT!r})", field="format")
    if data.get("version") != VERSION:
        raise InvalidInput(f"unsupported version {data.get('version')!r}", field="version")
    ensure_memory_on(organization=organization)

    # 1. Validate everything; build plain rows.
    entity_rows: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(_section(data, "entities")):
        row = _Rows("entities", index, raw)
        ref = row.text("ref", max_length=40, required=True)
        if ref in entity_rows:
            row.fail("ref", "used twice")
        aliases = raw.get("aliases", [])
        attributes = raw.get("attributes", {})
        if not isinstance(aliases, list) or not all(isinstance(a, str) and 0 < len(a) <= 200 for a in aliases):
            row.fail("aliases", "a list of names of 1-200 characters")
        if not isinstance(attributes, dict):
            row.fail("attributes", "an object")
        item = {"kind": row.choice("kind", EntityKind.values),
                "name": row.text("name", max_length=conf.MAX_NAME_CHARS, required=True).strip(),
                "aliases": aliases, "attributes": attributes}
        row.secrets({"name": item["name"], "aliases": aliases, "attributes": attributes})
        entity_rows[ref] = item

    relationship_rows = []
    for index, raw in enumerate(_section(data, "relationships")):
        row = _Rows("relationships", index, raw)
        item = {"kind": row.choice("kind", RelationshipKind.values),
                "source": row.ref("source", entity_rows, required=True) and raw["source"],
                "target": row.ref("target", entity_rows, required=True) and raw["target"],
                "valid_from": row.when("valid_from"), "valid_to": row.when("valid_to"),
                "confidence": row.number("confidence", 1.0, 0, 1)}
        if item["source"] == item["target"]:
            row.fail("target", "an entity cannot relate to itself")
        if item["valid_from"] and item["valid_to"] and item["valid_to"] <= item["valid_from"]:
            row.fail("valid_to", "ends before it starts")
        relationship_rows.append(item)

    message_rows: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(_section(data, "messages")):
        row = _Rows("messages", index, raw)
        ref = row.text("ref", max_length=40, required=True)
        if ref in message_rows:
            row.fail("ref", "used twice")
        item = {"source_type": row.choice("source_type", SourceType.values, SourceType.MESSAGE),
                "source_id": row.text("source_id", max_length=200),
                "source_link": row.text("source_link", max_length=500),
                "speaker": row.text("speaker", max_length=conf.MAX_NAME_CHARS),
                "text": row.text("text", max_length=conf.MAX_SOURCE_TEXT_CHARS, required=True).strip(),
                "occurred_at": row.when("occurred_at")}
        row.secrets({"text": item["text"], "speaker": item["speaker"], "source_link": item["source_link"]})
        message_rows[ref] = item

    fact_rows: dict[str, dict[str, Any]] = {}
    raw_facts = _section(data, "facts")
    refs = [r.get("ref") for r in raw_facts if isinstance(r, dict)]
    for index, raw in enumerate(raw_facts):
        row = _Rows("facts", index, raw)
        ref = row.text("ref", max_length=40, required=True)
        if ref in fact_rows:
            row.fail("ref", "used twice")
        item = {
            "category": row.choice("category", Category.values, Category.OTHER),
            "subject": row.ref("subject", entity_rows) and raw["subject"],
            "predicate": row.text("predicate", max_length=conf.MAX_PREDICATE_CHARS),
            "value": row.text("value", max_length=conf.MAX_VALUE_CHARS),
            "text": row.text("text", max_length=conf.MAX_TEXT_CHARS, required=True).strip(),
            "status": row.choice("status", FactStatus.values, FactStatus.ACTIVE),
            "confidence": row.number("confidence", 0.8, 0, 1),
            "mentions": int(row.number("mentions", 1, 1, 10**9)),
            "source_type": row.choice("source_type", SourceType.values, SourceType.IMPORT),
            "source_id": row.text("source_id", max_length=200),
            "source_link": row.text("source_link", max_length=500),
            "source_text": row.text("source_text", max_length=conf.MAX_SOURCE_TEXT_CHARS),
            "source_message": row.ref("source_message", message_rows) and raw["source_message"],
            "valid_from": row.when("valid_from"), "valid_to": row.when("valid_to"),
            "superseded_by": raw.get("superseded_by") or None,
            "last_used_at": row.when("last_used_at"),
            "use_count": int(row.number("use_count", 0, 0, 10**9)),
        }
        if item["superseded_by"] is not None and item["superseded_by"] not in refs:
            row.fail("superseded_by", f"refers to {item['superseded_by']!r}, which is not in the file")
        if item["predicate"] and not predicate_key(item["predicate"]):
            row.fail("predicate", "needs letters or digits")
        if item["valid_from"] and item["valid_to"] and item["valid_to"] < item["valid_from"]:
            row.fail("valid_to", "ends before it starts")
        row.secrets({"text": item["text"], "value": item["value"], "source_text": item["source_text"],
                     "source_link": item["source_link"]})
        fact_rows[ref] = item

    conflict_rows = []
    for index, raw in enumerate(_section(data, "conflicts")):
        row = _Rows("conflicts", index, raw)
        conflict_rows.append({"existing": row.ref("existing", fact_rows, required=True) and raw["existing"],
                              "proposed": row.ref("proposed", fact_rows, required=True) and raw["proposed"],
                              "question": row.text("question", max_length=5000, required=True)})

    # 2. Embed (outside the transaction), then write everything in one transaction.
    new_message_refs = list(message_rows)
    message_vectors = embeddings.embed_texts(
        [embedding_text(message_rows[r]["text"], message_rows[r]["speaker"]) for r in new_message_refs]
    )
    fact_refs = list(fact_rows)
    fact_vectors = embeddings.embed_texts([fact_rows[r]["text"] for r in fact_refs])

    added = defaultdict(int)
    with transaction.atomic():
        entity_by_ref: dict[str, Entity] = {}
        for ref, item in entity_rows.items():
            entity = Entity.objects.for_org(organization).filter(kind=item["kind"], key=name_key(item["name"])).first()
            if entity is None:
                entity = Entity(organization=organization, kind=item["kind"], name=item["name"],
                                key=name_key(item["name"]), created_by=actor if actor and actor.pk else None)
                added["entities"] += 1
            entity.aliases = list(dict.fromkeys([*entity.aliases, *item["aliases"]]))
            entity.alias_keys = list(dict.fromkeys([entity.key, *(name_key(a) for a in entity.aliases)]))
            entity.attributes = {**entity.attributes, **item["attributes"]}
            entity.save()
            entity_by_ref[ref] = entity

        for item in relationship_rows:
            source, target = entity_by_ref[item["source"]], entity_by_ref[item["target"]]
            exists = Relationship.objects.for_org(organization).filter(
                kind=item["kind"], source=source, target=target, valid_from=item["valid_from"],
                valid_to=item["valid_to"]).exists()
            if not exists:
                Relationship.objects.for_org(organization).create(
                    organization=organization, kind=item["kind"], source=source, target=target,
                    valid_from=item["valid_from"], valid_to=item["valid_to"], confidence=item["confidence"],
                    created_by=actor if actor and actor.pk else None)
                added["relationships"] += 1

        message_by_ref: dict[str, Message] = {}
        for ref, vector in zip(new_message_refs, message_vectors, strict=True):
            item = message_rows[ref]
            existing = Message.objects.for_org(organization).filter(
                text=item["text"], speaker=item["speaker"], source_type=item["source_type"],
                source_id=item["source_id"], occurred_at=item["occurred_at"]).first()
            if existing is None:
                existing = Message.objects.for_org(organization).create(
                    organization=organization, embedding=vector, created_by=actor if actor and actor.pk else None,
                    **item)
                added["messages"] += 1
            message_by_ref[ref] = existing

        known = {
            fact_signature(f): f
            for f in Fact.objects.for_org(organization).select_related("subject")
        }
        fact_by_ref: dict[str, Fact] = {}
        for ref, vector in zip(fact_refs, fact_vectors, strict=True):
            item = fact_rows[ref]
            subject = entity_by_ref[item["subject"]] if item["subject"] else None
            signature = fact_signature(
                {**item, "valid_from": _iso(item["valid_from"]), "valid_to": _iso(item["valid_to"])},
                subject.name if subject else None,
            )
            fact = known.get(signature)
            if fact is None:
                fact = Fact.objects.for_org(organization).create(
                    organization=organization, category=item["category"], subject=subject,
                    predicate=predicate_key(item["predicate"]) if item["predicate"] else "", value=item["value"],
                    value_key=value_key(item["value"]) if item["value"] else "", text=item["text"],
                    text_key=text_key(item["text"]), status=item["status"], confidence=item["confidence"],
                    mentions=item["mentions"], source_type=item["source_type"], source_id=item["source_id"],
                    source_link=item["source_link"], source_text=item["source_text"],
                    source_message=message_by_ref.get(item["source_message"]) if item["source_message"] else None,
                    valid_from=item["valid_from"], valid_to=item["valid_to"], last_used_at=item["last_used_at"],
                    use_count=item["use_count"], created_by=actor if actor and actor.pk else None,
                    embedding=vector,
                )
                known[signature] = fact
                added["facts"] += 1
            fact_by_ref[ref] = fact
        for ref, item in fact_rows.items():
            if item["superseded_by"]:
                fact = fact_by_ref[ref]
                successor = fact_by_ref[item["superseded_by"]]
                if fact.superseded_by_id != successor.pk:
                    fact.superseded_by = successor
                    fact.save(update_fields=["superseded_by"])

        for item in conflict_rows:
            existing, proposed = fact_by_ref[item["existing"]], fact_by_ref[item["proposed"]]
            if not Conflict.objects.for_org(organization).filter(
                proposed_fact=proposed, status=ConflictStatus.PENDING
            ).exists():
                Conflict.objects.for_org(organization).create(
                    organization=organization, existing_fact=existing, proposed_fact=proposed,
                    question=item["question"])
                added["conflicts"] += 1
        audit_record(organization=organization, actor=actor, action="memory.import", target=None,
                     target_label="memory import", after=dict(added))
    return {k: added.get(k, 0) for k in ("entities", "relationships", "messages", "facts", "conflicts")}


# --- Markdown -------------------------------------------------------------------------------------


def export_markdown(*, organization: Organization) -> str:
    """A human-readable export: current facts by category, history, people and teams, relationships."""
    facts = list(Fact.objects.for_org(organization).select_related("subject").order_by("category", "text", "id"))
    entities = list(Entity.objects.for_org(organization).order_by("kind", "name"))
    relationships = list(
        Relationship.objects.for_org(organization).select_related("source", "target").order_by("kind", "id")
    )
    lines = [f"# Business memory of {organization.name}", "",
             f"Exported {timezone.now():%Y-%m-%d %H:%M} UTC. {len(facts)} facts, {len(entities)} entities.", ""]
    labels = dict(Category.choices)
    now = timezone.now()
    current = [f for f in facts if f.status == FactStatus.ACTIVE and (f.valid_to is None or f.valid_to > now)]
    for category in Category.values:
        rows = [f for f in current if f.category == category]
        if not rows:
            continue
        lines += [f"## {labels[category]}", ""]
        for fact in rows:
            lines.append(f"- {_md(fact.text)}{_period(fact)} _(confidence {fact.confidence:.2f}"
                         f"{', from ' + _md(fact.source_type) if fact.source_type else ''})_")
        lines.append("")
    history = [f for f in facts if f not in current]
    if history:
        lines += ["## History and pending", ""]
        for fact in history:
            state = "pending confirmation" if fact.status == FactStatus.PENDING else "no longer current"
            lines.append(f"- {_md(fact.text)}{_period(fact)} _({state})_")
        lines.append("")
    if entities:
        lines += ["## People, teams and things", ""]
        for entity in entities:
            extras = ", ".join(f"{k}: {_md(str(v))}" for k, v in sorted(entity.attributes.items()))
            aliases = f" (also {', '.join(_md(a) for a in entity.aliases)})" if entity.aliases else ""
            lines.append(f"- **{_md(entity.name)}** ({entity.kind}){aliases}{' - ' + extras if extras else ''}")
        lines.append("")
    if relationships:
        lines += ["## Relationships", ""]
        kinds = dict(RelationshipKind.choices)
        for rel in relationships:
            lines.append(f"- {_md(rel.source.name)} {kinds[rel.kind]} {_md(rel.target.name)}{_period(rel)}")
        lines.append("")
    return "\n".join(lines)


def _period(row: Any) -> str:
    start, end = row.valid_from, row.valid_to
    if start is None and end is None:
        return ""
    if end is None:
        return f" (since {start:%Y-%m-%d})"
    if start is None:
        return f" (until {end:%Y-%m-%d})"
    return f" ({start:%Y-%m-%d} to {end:%Y-%m-%d})"


def _md(text: str) -> str:
    return text.replace("\n", " ").replace("*", "\\*").replace("_", "\\_")
