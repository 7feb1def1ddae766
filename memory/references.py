"""Reference resolution: "the team", "the engineering team", "my manager", "the CFO" → entities.

Read-only. Resolution uses entities, relationships valid at ``at`` (default
now) and role facts valid at ``at``, so "the CFO" in 2021 is whoever held the
role then. The speaker is a person entity, or a user matched to one by email.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization, User
from memory.models import Entity, EntityKind, Fact, FactStatus, Relationship, RelationshipKind
from memory.normalize import name_key, value_key

ROLE_SYNONYMS = {
    "ceo": ["chief executive officer", "chief executive"],
    "cfo": ["chief financial officer", "finance director"],
    "cto": ["chief technology officer", "chief technical officer"],
    "coo": ["chief operating officer"],
    "cmo": ["chief marketing officer"],
    "cio": ["chief information officer"],
    "ciso": ["chief information security officer"],
    "chro": ["chief human resources officer", "chief people officer"],
}
_ROLE_FORMS = {form: canonical for canonical, forms in ROLE_SYNONYMS.items() for form in [canonical, *forms]}

_MANAGER = re.compile(r"^(?:my|our)\s+(?:manager|boss|supervisor|line manager|lead)$")
_REPORTS = re.compile(r"^(?:my|our)\s+(?:direct\s+)?reports$")
_MY_TEAM = re.compile(r"^(?:my|our|the)\s+team$")
_NAMED_TEAM = re.compile(r"^(?:the\s+|our\s+)?(?P<name>.+?)\s+(?:team|department|dept|group|squad)$")
_POSSESSIVE_MANAGER = re.compile(r"^(?P<name>.+?)['’]s\s+(?:manager|boss|supervisor)$")
_LEADING = re.compile(r"^(?:the|our|my)\s+")


@dataclass
class Resolution:
    """What a phrase refers to: ``entities`` (people, or a team's members), and the ``group`` when a team."""

    phrase: str
    kind: str  # manager | reports | team | role | entity | unknown
    entities: list[Entity] = field(default_factory=list)
    group: Entity | None = None
    description: str = ""

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entities]


def _holds(at: datetime) -> Q:
    return (Q(valid_from__isnull=True) | Q(valid_from__lte=at)) & (Q(valid_to__isnull=True) | Q(valid_to__gt=at))


def speaker_entity(*, organization: Organization, speaker: User | Entity | None) -> Entity | None:
    """The person entity of the speaker: given directly, or the person whose email is the user's."""
    if speaker is None or isinstance(speaker, Entity):
        return speaker
    email = (speaker.email or "").strip().lower()
    if not email:
        return None
    people = Entity.objects.for_org(organization).filter(kind=EntityKind.PERSON)
    found = people.filter(attributes__email__iexact=email).order_by("id").first()
    if found is None:
        fact = (
            Fact.objects.for_org(organization)
            .filter(predicate="email", value_key=value_key(email), subject__isnull=False)
            .exclude(status=FactStatus.PENDING)
            .order_by("-valid_from", "-id")
            .first()
        )
        found = fact.subject if fact is not None else None
    return found


def managers_of(*, organization: Organization, person: Entity, at: datetime) -> list[Entity]:
    relationships = (
        Relationship.objects.for_org(organization)
        .filter(_holds(at), kind=RelationshipKind.MANAGES, target=person)
        .select_related("source")
        .order_by("-valid_from", "-id")
    )
    return [r.source for r in relationships]


def reports_of(*, organization: Organization, person: Entity, at: datetime) -> list[Entity]:
    relationships = (
        Relationship.objects.for_org(organization)
        .filter(_holds(at), kind=RelationshipKind.MANAGES, source=person)
        .select_related("target")
        .order_by("target__name", "id")
    )
    return [r.target for r in relationships]


def teams_of(*, organization: Organization, person: Entity, at: datetime) -> list[Entity]:
    relationships = (
        Relationship.objects.for_org(organization)
        .filter(_holds(at), kind=RelationshipKind.MEMBER_OF, source=person, target__kind=EntityKind.TEAM)
        .select_related("target")
        .order_by("-valid_from", "-id")
    )
    return [r.target for r in relationships]


def members_of(*, organization: Organization, team: Entity, at: datetime) -> list[Entity]:
    relationships = (
        Relationship.objects.for_org(organization)
        .filter(_holds(at), kind=RelationshipKind.MEMBER_OF, target=team)
        .select_related("source")
        .order_by("source__name", "id")
    )
    return list(dict.fromkeys(r.source for r in relationships))


def role_holders(*, organization: Organization, role: str, at: datetime) -> list[Entity]:
    """People whose role (or title) fact valid at ``at`` is ``role`` or one of its synonyms."""
    canonical = _ROLE_FORMS.get(name_key(role), name_key(role))
    forms = [canonical, *ROLE_SYNONYMS.get(canonical, [])]
    facts = (
        Fact.objects.for_org(organization)
        .filter(_holds(at), predicate__in=["role", "title"], value_key__in=[value_key(f) for f in forms],
                subject__isnull=False)
        .exclude(status=FactStatus.PENDING)
        .select_related("subject")
        .order_by("-valid_from", "-id")
    )
    holders = list(dict.fromkeys(f.subject for f in facts))
    if holders:
        return holders
    # Entities whose role attribute says so and that have no role history at all.
    people = Entity.objects.for_org(organization).filter(kind=EntityKind.PERSON)
    with_history = Fact.objects.for_org(organization).filter(predicate__in=["role", "title"]).values("subject_id")
    return [
        e for e in people.exclude(pk__in=with_history)
        if name_key(str(e.attributes.get("role", ""))) in forms
    ]


def _team_named(organization: Organization, name: str) -> Entity | None:
    teams = Entity.objects.for_org(organization).filter(kind=EntityKind.TEAM)
    for key in (name_key(name), name_key(f"{name} team"), name_key(re.sub(r"\s+team$", "", name))):
        found = teams.filter(Q(key=key) | Q(alias_keys__contains=[key])).order_by("id").first()
        if found is not None:
            return found
    return None


def resolve_reference(
    *,
    organization: Organization,
    phrase: str,
    speaker: User | Entity | None = None,
    at: datetime | None = None,
) -> Resolution:
    """Resolve ``phrase`` for ``speaker`` at ``at`` (see the module docstring)."""
    at = at or timezone.now()
    text = " ".join((phrase or "").strip().lower().rstrip("?.!").split())
    me = speaker_entity(organization=organization, speaker=speaker)

    if _MANAGER.match(text):
        if me is None:
            return Resolution(phrase, "manager", description="I do not know who you are in the organization.")
        managers = managers_of(organization=organization, person=me, at=at)
        return Resolution(phrase, "manager", managers[:1], description=f"manager of {me.name}")
    if _REPORTS.match(text):
        if me is None:
            return Resolution(phrase, "reports", description="I do not know who you are in the organization.")
        return Resolution(phrase, "reports", reports_of(organization=organization, person=me, at=at))
    possessive = _POSSESSIVE_MANAGER.match(text)
    if possessive:
        person = _find(organization, possessive.group("name"), kind=EntityKind.PERSON)
        if person is not None:
            managers = managers_of(organization=organization, person=person, at=at)
            return Resolution(phrase, "manager", managers[:1], description=f"manager of {person.name}")
    if _MY_TEAM.match(text):
        team = None
        if me is not None:
            teams = teams_of(organization=organization, person=me, at=at)
            team = teams[0] if teams else None
        if team is None and not text.startswith("my"):
            all_teams = list(Entity.objects.for_org(organization).filter(kind=EntityKind.TEAM)[:2])
            team = all_teams[0] if len(all_teams) == 1 else None
        if team is None:
            return Resolution(phrase, "team", description="Which team do you mean?")
        return Resolution(phrase, "team", members_of(organization=organization, team=team, at=at), group=team)
    named = _NAMED_TEAM.match(text)
    team = _team_named(organization, named.group("name")) if named else None
    if team is None:
        team = _team_named(organization, _LEADING.sub("", text))
    if team is not None:
        return Resolution(phrase, "team", members_of(organization=organization, team=team, at=at), group=team)
    role = _LEADING.sub("", text)
    if name_key(role) in _ROLE_FORMS or (role and len(role) <= 40 and not _find(organization, role)):
        holders = role_holders(organization=organization, role=role, at=at)
        if holders:
            return Resolution(phrase, "role", holders, description=f"{role} at {at.date().isoformat()}")
    entity = _find(organization, _LEADING.sub("", text)) or _find(organization, text)
    if entity is not None:
        return Resolution(phrase, "entity", [entity])
    return Resolution(phrase, "unknown", description="Nothing in memory matches this.")


def _find(organization: Organization, name: str, kind: str | None = None) -> Entity | None:
    """By name or alias; a unique first name also finds a person."""
    key = name_key(name)
    if not key:
        return None
    entities = Entity.objects.for_org(organization)
    if kind:
        entities = entities.filter(kind=kind)
    found = entities.filter(Q(key=key) | Q(alias_keys__contains=[key])).order_by("id").first()
    if found is not None:
        return found
    if " " not in key:
        first_names = list(entities.filter(kind=EntityKind.PERSON, key__startswith=f"{key} ")[:2])
        if len(first_names) == 1:
            return first_names[0]
    return None
