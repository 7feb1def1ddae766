"""Rows of the other organization for the cross-organization route walker."""

from django.utils import timezone

from memory.models import Conflict, Entity, ExpiryReview, Fact, Relationship
from memory.services.entities import entity_upsert, relationship_create
from memory.services.facts import FactInput, fact_remember
from tests.tenancy.registry import register, register_payload


def _person(tenant, name="Other Person"):
    return entity_upsert(organization=tenant.organization, kind="person", name=name)[0]


def _with_hash_embeddings(make):
    def wrapped(tenant):
        from django.test import override_settings

        with override_settings(MEMORY_EMBEDDER="tests.memory.support.hash_embed"):
            return make(tenant)

    return wrapped


@register(Fact)
@_with_hash_embeddings
def _fact(tenant):
    return fact_remember(organization=tenant.organization,
                         candidate=FactInput(text="The other organization's fact", category="company")).fact


@register(Entity)
@_with_hash_embeddings
def _entity(tenant):
    return _person(tenant)


@register(Relationship)
@_with_hash_embeddings
def _relationship(tenant):
    team = entity_upsert(organization=tenant.organization, kind="team", name="Other Team")[0]
    return relationship_create(organization=tenant.organization, kind="member_of", source=_person(tenant),
                               target=team)


@register(Conflict)
@_with_hash_embeddings
def _conflict(tenant):
    person = entity_upsert(organization=tenant.organization, kind="person", name="Other Person",
                           attributes={"role": "CFO"})[0]
    return fact_remember(organization=tenant.organization, candidate=FactInput(
        text="Other Person is the CEO", subject=person, predicate="role", value="CEO", category="team")).conflict


@register(ExpiryReview)
def _review(tenant):
    return ExpiryReview.objects.for_org(tenant.organization).create(organization=tenant.organization,
                                                                   cutoff=timezone.now())


register_payload(Fact, "create", lambda tenant: {"text": "Injected fact", "category": "company"})
register_payload(Fact, "partial_update", lambda tenant: {"text": "Renamed fact", "value": "x"})
register_payload(Conflict, "resolve", lambda tenant: {"resolution": "accept_new"})
register_payload(Entity, "create", lambda tenant: {"kind": "person", "name": "Injected"})
register_payload(Entity, "partial_update", lambda tenant: {"name": "Renamed"})
register_payload(Relationship, "end", lambda tenant: {})
register_payload(ExpiryReview, "decide", lambda tenant: {"approve": True})
register_payload(None, "forget", lambda tenant: {"topic": "fact"})
register_payload(None, "clear", lambda tenant: {"scope": "all"})
register_payload(None, "memory_settings", lambda tenant: {"enabled": False})
register_payload(None, "import_", lambda tenant: {"format": "staffer-memory", "version": 1,
                                                  "facts": [{"ref": "f1", "text": "Injected"}]})
