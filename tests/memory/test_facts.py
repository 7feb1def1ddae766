"""Writing facts: deduplication, conflicts (never overwrites), supersession with history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.errors import InvalidInput
from memory.errors import MemoryDisabled, SecretRefused
from memory.models import ConflictStatus, Fact, FactStatus
from memory.services.conflicts import conflict_resolve
from memory.services.entities import entity_upsert
from memory.services.facts import FactInput, fact_history, fact_remember, fact_update
from memory.services.settings import memory_settings_update

pytestmark = pytest.mark.django_db


def person(org, name, **attributes):
    entity, _ = entity_upsert(organization=org, kind="person", name=name, attributes=attributes)
    return entity


def remember(org, **kwargs):
    return fact_remember(organization=org, candidate=FactInput(**kwargs))


def test_same_subject_predicate_value_reinforces_instead_of_copying(org_a):
    """Saying the same thing twice makes one fact more certain, not two facts."""
    sarah = person(org_a, "Sarah Chen")
    first = remember(org_a, text="Sarah Chen likes morning meetings", subject=sarah, predicate="likes",
                     value="morning meetings", confidence=0.6)
    second = remember(org_a, text="Sarah likes her meetings in the morning", subject=sarah, predicate="Likes",
                      value="Morning meetings ", confidence=0.5)
    assert first.outcome == "created"
    assert second.outcome == "reinforced"
    assert second.fact.pk == first.fact.pk
    assert second.fact.confidence == pytest.approx(1 - 0.4 * 0.5)
    assert second.fact.mentions == 2
    assert Fact.objects.for_org(org_a).filter(predicate="likes").count() == 1


def test_free_text_fact_deduplicates_on_normalized_text(org_a):
    """A fact with no predicate is the same fact when its text differs only in case and spacing."""
    a = remember(org_a, text="We invoice on the first business day.", category="company")
    b = remember(org_a, text="  we invoice on the first   business day ", category="company")
    assert b.outcome == "reinforced"
    assert a.fact.pk == b.fact.pk


def test_contradiction_creates_pending_conflict_and_never_overwrites(org_a):
    """A different value for the same subject and predicate waits for a person; the known value stays."""
    john = person(org_a, "John Park", email="john@acme.example")
    result = remember(org_a, text="John Park's email is jpark@acme.example", subject=john, predicate="email",
                      value="jpark@acme.example")
    assert result.outcome == "conflict"
    assert result.conflict.status == ConflictStatus.PENDING
    assert result.conflict.question == (
        "You said \"John Park's email is john@acme.example\" before, "
        "now \"John Park's email is jpark@acme.example\". Which is correct?"
    )
    assert result.fact.status == FactStatus.PENDING
    current = Fact.objects.for_org(org_a).get(subject=john, predicate="email", status=FactStatus.ACTIVE)
    assert current.value == "john@acme.example"
    john.refresh_from_db()
    assert john.attributes["email"] == "john@acme.example"


def test_accepting_the_change_supersedes_with_history(org_a):
    """Confirming the new value closes the old fact (valid_to, superseded_by) and keeps it in the history."""
    john = person(org_a, "John Park", email="john@acme.example")
    result = remember(org_a, text="John Park's email is jpark@acme.example", subject=john, predicate="email",
                      value="jpark@acme.example")
    conflict_resolve(organization=org_a, conflict=result.conflict, resolution="accept_new", actor=None)
    old = Fact.objects.for_org(org_a).get(subject=john, predicate="email", value="john@acme.example")
    new = Fact.objects.for_org(org_a).get(subject=john, predicate="email", value="jpark@acme.example")
    assert old.status == FactStatus.SUPERSEDED
    assert old.superseded_by_id == new.pk
    assert old.valid_to is not None
    assert new.status == FactStatus.ACTIVE
    assert new.valid_from == old.valid_to
    assert [f.value for f in fact_history(organization=org_a, fact=new)] == ["john@acme.example",
                                                                                "jpark@acme.example"]
    john.refresh_from_db()
    assert john.attributes["email"] == "jpark@acme.example"


def test_keeping_the_existing_value_discards_the_new_statement(org_a):
    """Answering that the earlier fact is right deletes the contradicting one."""
    john = person(org_a, "John Park", role="CFO")
    result = remember(org_a, text="John Park is the CEO", subject=john, predicate="role", value="CEO")
    conflict = conflict_resolve(organization=org_a, conflict=result.conflict, resolution="keep_existing", actor=None)
    assert conflict.status == ConflictStatus.RESOLVED
    assert not Fact.objects.for_org(org_a).filter(value="CEO").exists()
    assert Fact.objects.for_org(org_a).get(subject=john, predicate="role").status == FactStatus.ACTIVE


def test_a_second_current_cfo_is_a_conflict(org_a):
    """Naming another person CFO while one is on record asks which is right."""
    person(org_a, "John Park", role="CFO")
    sarah = person(org_a, "Sarah Chen")
    result = remember(org_a, text="Sarah Chen is the CFO", subject=sarah, predicate="role", value="CFO")
    assert result.outcome == "conflict"


def test_historical_statement_with_its_own_period_is_not_a_conflict(org_a):
    """John was CFO 2020-2023 and is an advisor since 2023: both stand, each in its own time."""
    john = person(org_a, "John Park")
    was = remember(org_a, text="John Park was CFO from 2020 to 2023", subject=john, predicate="role", value="CFO",
                   valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_to=datetime(2023, 3, 1, tzinfo=UTC))
    now = remember(org_a, text="John Park is an advisor", subject=john, predicate="role", value="Advisor",
                   valid_from=datetime(2023, 3, 1, tzinfo=UTC))
    assert (was.outcome, now.outcome) == ("created", "created")


def test_edit_of_value_is_a_new_version(org_a):
    """Editing a fact's value keeps the previous version in its history."""
    acme = entity_upsert(organization=org_a, kind="company", name="Acme")[0]
    fact = remember(org_a, text="Acme pays on net 30 terms", subject=acme, predicate="payment_terms",
                    value="net 30", category="company").fact
    result = fact_update(organization=org_a, fact=fact, actor=None, text="Acme pays on net 45 terms",
                         value="net 45")
    assert result.outcome == "superseded"
    assert [f.value for f in fact_history(organization=org_a, fact=result.fact)] == ["net 30", "net 45"]


def test_secrets_are_refused_and_reported_without_the_secret(org_a):
    """A fact carrying a card number is not stored; the refusal names the kind, not the number."""
    with pytest.raises(SecretRefused) as refused:
        remember(org_a, text="Company card is 4111 1111 1111 1111, use it for travel")
    assert "payment card" in refused.value.message
    assert "4111" not in refused.value.message
    assert not Fact.objects.for_org(org_a).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "ok", "category": "gossip"}, "category"),
        ({"text": "ok", "confidence": 1.5}, "confidence"),
        ({"text": "ok", "value": "v" * 1001}, "value"),
    ],
)
def test_bad_input_names_the_field(org_a, kwargs, field):
    """Empty or over-long values and unknown categories are refused, naming the field."""
    with pytest.raises(InvalidInput) as refused:
        remember(org_a, **kwargs)
    assert refused.value.field == field


def test_memory_off_and_disallowed_categories(org_a):
    """With memory off nothing is stored; a category the organization excludes is refused."""
    memory_settings_update(organization=org_a, actor=None, allowed_categories=["company", "team"])
    with pytest.raises(InvalidInput) as refused:
        remember(org_a, text="We prefer email", category="preferences")
    assert refused.value.field == "category"
    memory_settings_update(organization=org_a, actor=None, enabled=False)
    with pytest.raises(MemoryDisabled):
        remember(org_a, text="We are based in Lyon", category="company")
    assert not Fact.objects.for_org(org_a).exists()


def test_confirmed_change_supersedes_at_once(org_a):
    """A change stated outright (confirmed) closes the old value now instead of asking."""
    sarah = person(org_a, "Sarah Chen", email="sarah@acme.example")
    result = fact_remember(organization=org_a, confirmed=True, candidate=FactInput(
        text="Sarah Chen's email is schen@acme.example", subject=sarah, predicate="email",
        value="schen@acme.example", category="team"))
    assert result.outcome == "superseded"
    old = result.superseded[0]
    old.refresh_from_db()
    assert old.status == FactStatus.SUPERSEDED
    assert old.valid_to == result.fact.valid_from
    sarah.refresh_from_db()
    assert sarah.attributes["email"] == "schen@acme.example"


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_writes_make_one_fact(tenant_a):
    """Two writers saying the same thing at the same moment leave one fact said twice (advisory lock)."""
    import threading

    from django.db import connection

    org = tenant_a.organization
    sarah = person(org, "Sarah Chen")
    barrier = threading.Barrier(2)
    errors = []

    def write():
        try:
            barrier.wait()
            remember(org, text="Sarah Chen speaks Japanese", subject=sarah, predicate="speaks", value="Japanese")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    facts = list(Fact.objects.for_org(org).filter(predicate="speaks"))
    assert len(facts) == 1
    assert facts[0].mentions == 2
