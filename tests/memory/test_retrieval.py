"""Retrieval: hybrid search with the real model, always within one organization, at a point in time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory import retrieval
from memory.models import Fact, Message
from memory.services.entities import entity_upsert
from memory.services.facts import FactInput, fact_remember
from memory.services.messages import MessageInput, message_record

pytestmark = pytest.mark.django_db


def remember(org, text, **kwargs):
    return fact_remember(organization=org, candidate=FactInput(text=text, **kwargs)).fact


def test_hybrid_search_finds_the_relevant_fact(org_a, real_embeddings):
    """A question in other words finds the fact (real model, hybrid ranking)."""
    remember(org_a, "Acme prefers invoices as PDF attachments sent on the first business day", category="preferences")
    remember(org_a, "The office is closed on public holidays in France", category="company")
    remember(org_a, "Project Falcon ships the new checkout in March", category="projects")
    hits = retrieval.search(organization=org_a, query="How should we send bills to the company?", limit=3)
    assert "invoices as PDF" in hits[0].text


def test_messages_are_searched_beside_facts_and_group_their_facts(org_a, real_embeddings):
    """The message a fact came from is indexed too; a fact and its message come back as one result."""
    message = message_record(organization=org_a, candidate=MessageInput(
        text="Heads up: from now on Lena handles all vendor contracts", speaker="Mark", source_id="chat:1"))
    remember(org_a, "Lena handles vendor contracts", category="team", source_message=message,
             source_id="chat:1", source_text=message.text, source_type="message")
    hits = retrieval.search(organization=org_a, query="Who deals with supplier agreements?", limit=5)
    assert hits[0].kind == "message"
    assert hits[0].message.pk == message.pk
    assert [f.text for f in hits[0].related_facts] == ["Lena handles vendor contracts"]
    assert hits[0].source_ids == ["chat:1"]


def test_identical_embedding_of_another_organization_is_never_returned(org_a, org_b, settings):
    """Rows of another organization with the very same vector and words never come back, on every path."""
    settings.MEMORY_EMBEDDER = "tests.memory.support.constant_embed"
    for i in range(30):
        remember(org_b, f"Globex secret project codename number {i} is Bluebird", category="projects")
        message_record(organization=org_b, candidate=MessageInput(text=f"Bluebird project codename {i}"))
    remember(org_a, "Acme project codename is Kestrel", category="projects")
    for mode in ("hybrid", "vector", "text"):
        for strategy_rows in (100000, 0):  # exact search, then HNSW iterative scan
            settings.MEMORY_EXACT_SEARCH_MAX_ROWS = strategy_rows
            options = retrieval.SearchOptions(mode=mode)
            hits = retrieval.search(organization=org_a, query="project codename Bluebird", limit=20, options=options)
            assert [h.text for h in hits if h.kind == "fact"] in ([], ["Acme project codename is Kestrel"])
            assert all(h.message is None for h in hits)
            ids_b = set(Fact.objects.for_org(org_b).values_list("pk", flat=True))
            assert not ids_b & {h.id for h in hits if h.kind == "fact"}
    # and the other organization still finds its own
    hits = retrieval.search(organization=org_b, query="Bluebird", limit=5)
    assert hits
    assert all(h.fact.organization_id == org_b.pk if h.fact else h.message.organization_id == org_b.pk for h in hits)
    assert Message.objects.for_org(org_a).count() == 0


def test_hnsw_iterative_scan_finds_a_small_tenant_among_many(org_a, org_b, settings):
    """Through the shared HNSW index, a small organization's rows are found despite a large neighbour."""
    settings.MEMORY_EXACT_SEARCH_MAX_ROWS = 0
    for i in range(200):
        remember(org_b, f"Globex fact number {i} about shipping lanes and ports", category="company")
    remember(org_a, "Acme ships from the Rotterdam port", category="company")
    hits = retrieval.search(organization=org_a, query="shipping ports", limit=5,
                            options=retrieval.SearchOptions(mode="vector"))
    assert [h.text for h in hits] == ["Acme ships from the Rotterdam port"]


def test_point_in_time_and_category_filters(org_a):
    """Search at a past date sees the fact valid then; a category filter keeps only that category."""
    john = entity_upsert(organization=org_a, kind="person", name="John Park")[0]
    sarah = entity_upsert(organization=org_a, kind="person", name="Sarah Chen")[0]
    remember(org_a, "John Park was the CFO", subject=john, predicate="role", value="CFO", category="team",
             valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_to=datetime(2023, 3, 1, tzinfo=UTC))
    remember(org_a, "Sarah Chen is the CFO", subject=sarah, predicate="role", value="CFO", category="team",
             valid_from=datetime(2023, 3, 1, tzinfo=UTC))
    remember(org_a, "The CFO prefers weekly cash reports", category="preferences")
    now = retrieval.search(organization=org_a, query="who is the CFO", categories=["team"], limit=5)
    then = retrieval.search(organization=org_a, query="who is the CFO", categories=["team"], limit=5,
                            at=datetime(2021, 6, 1, tzinfo=UTC))
    assert [h.text for h in now] == ["Sarah Chen is the CFO"]
    assert [h.text for h in then] == ["John Park was the CFO"]


def test_pending_facts_are_not_returned(org_a):
    """A contradicting statement waiting for its conflict to be resolved is invisible to retrieval."""
    john = entity_upsert(organization=org_a, kind="person", name="John Park", attributes={"role": "CFO"})[0]
    fact_remember(organization=org_a, candidate=FactInput(text="John Park is the CEO", subject=john,
                                                          predicate="role", value="CEO", category="team"))
    hits = retrieval.search(organization=org_a, query="John Park CEO", limit=5)
    assert all("CEO" not in h.text for h in hits)


def test_or_query_matches_when_not_every_word_is_present(org_a):
    """Full text ORs the question's words: a fact matching some of them is found (ANDing would miss it)."""
    remember(org_a, "The warehouse in Leeds opens at seven", category="company")
    hits = retrieval.search(organization=org_a, query="When does the Leeds warehouse open for deliveries?",
                            limit=3, options=retrieval.SearchOptions(mode="text"))
    assert hits
    assert hits[0].text == "The warehouse in Leeds opens at seven"
