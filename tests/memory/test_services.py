"""References, forget, show/clear my data, export/import, analytics, expiry, context builder, repeated work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.errors import InvalidInput
from memory import retrieval
from memory.context import build_context, estimate_tokens
from memory.models import Conflict, Entity, ExpiryReview, Fact, FactStatus, Message
from memory.references import resolve_reference
from memory.repeated_work import suggest_workflows, title_template
from memory.selectors import entity_graph, memory_analytics
from memory.services.commands import (
    memory_about,
    memory_clear_all,
    memory_clear_my_data,
    memory_forget_topic,
    memory_show_my_data,
)
from memory.services.entities import entity_upsert, relationship_create
from memory.services.expiry import expiry_review_decide, expiry_sweep
from memory.services.facts import FactInput, fact_remember, facts_mark_used
from memory.services.messages import MessageInput, message_record
from memory.services.portability import export_json, export_markdown, fact_signature, import_json
from memory.services.settings import memory_settings_update

pytestmark = pytest.mark.django_db


def remember(org, text, **kwargs):
    return fact_remember(organization=org, candidate=FactInput(text=text, **kwargs))


def company(org, tenant):
    """A small company: engineering and finance teams, managers, a CFO change."""
    people = {}
    for name, email, role in [
        ("Ann Lee", "ann@x.example", "VP Engineering"),
        ("Bob Stone", "bob@x.example", "Engineer"),
        ("Cara Diaz", "cara@x.example", "Engineer"),
        ("Dev Patel", "dev@x.example", "Accountant"),
        ("Sarah Chen", "sarah@x.example", None),
        ("John Park", "john@x.example", None),
    ]:
        attributes = {"email": email} | ({"role": role} if role else {})
        people[name] = entity_upsert(organization=org, kind="person", name=name, attributes=attributes)[0]
    engineering = entity_upsert(organization=org, kind="team", name="Engineering", aliases=["eng"])[0]
    finance = entity_upsert(organization=org, kind="team", name="Finance")[0]
    for name in ("Ann Lee", "Bob Stone", "Cara Diaz"):
        relationship_create(organization=org, kind="member_of", source=people[name], target=engineering)
    for name in ("Dev Patel", "Sarah Chen"):
        relationship_create(organization=org, kind="member_of", source=people[name], target=finance)
    relationship_create(organization=org, kind="manages", source=people["Ann Lee"], target=people["Bob Stone"])
    relationship_create(organization=org, kind="manages", source=people["Ann Lee"], target=people["Cara Diaz"])
    relationship_create(organization=org, kind="manages", source=people["Sarah Chen"], target=people["Dev Patel"],
                        valid_from=datetime(2023, 3, 1, tzinfo=UTC))
    relationship_create(organization=org, kind="manages", source=people["John Park"], target=people["Dev Patel"],
                        valid_from=datetime(2019, 1, 1, tzinfo=UTC), valid_to=datetime(2023, 3, 1, tzinfo=UTC))
    remember(org, "John Park was the CFO", subject=people["John Park"], predicate="role", value="CFO",
             category="team", valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_to=datetime(2023, 3, 1, tzinfo=UTC))
    remember(org, "Sarah Chen is the Chief Financial Officer", subject=people["Sarah Chen"], predicate="role",
             value="Chief Financial Officer", category="team", valid_from=datetime(2023, 3, 1, tzinfo=UTC))
    return people, engineering, finance


# --- reference resolution -------------------------------------------------------------------


def test_my_manager_and_my_team_resolve_for_the_speaker(org_a, tenant_a):
    """"My manager" and "the team" resolve from relationships for the person speaking (matched by email)."""
    people, engineering, _ = company(org_a, tenant_a)
    bob = people["Bob Stone"]
    assert resolve_reference(organization=org_a, phrase="my manager", speaker=bob).names == ["Ann Lee"]
    team = resolve_reference(organization=org_a, phrase="the team", speaker=bob)
    assert team.group == engineering
    assert team.names == ["Ann Lee", "Bob Stone", "Cara Diaz"]
    assert resolve_reference(organization=org_a, phrase="my reports", speaker=people["Ann Lee"]).names == [
        "Bob Stone", "Cara Diaz"]


def test_manager_resolution_follows_time(org_a, tenant_a):
    """Dev's manager was John until March 2023 and is Sarah since."""
    people, _, _ = company(org_a, tenant_a)
    dev = people["Dev Patel"]
    assert resolve_reference(organization=org_a, phrase="my manager", speaker=dev).names == ["Sarah Chen"]
    assert resolve_reference(organization=org_a, phrase="my manager", speaker=dev,
                             at=datetime(2021, 6, 1, tzinfo=UTC)).names == ["John Park"]
    assert resolve_reference(organization=org_a, phrase="Dev Patel's manager").names == ["Sarah Chen"]


def test_user_speaker_is_matched_by_email(org_a, tenant_a):
    """A logged-in user is the person entity carrying their email."""
    from tests.factories import UserFactory

    company(org_a, tenant_a)
    user = UserFactory(email="BOB@x.example")
    assert resolve_reference(organization=org_a, phrase="my manager", speaker=user).names == ["Ann Lee"]


def test_named_team_and_role_resolution(org_a, tenant_a):
    """"The engineering team", "eng team", "the finance team" and "the CFO" (now and in 2021)."""
    company(org_a, tenant_a)
    assert resolve_reference(organization=org_a, phrase="the engineering team").names == [
        "Ann Lee", "Bob Stone", "Cara Diaz"]
    assert resolve_reference(organization=org_a, phrase="eng team").names == ["Ann Lee", "Bob Stone", "Cara Diaz"]
    assert resolve_reference(organization=org_a, phrase="the finance team").names == ["Dev Patel", "Sarah Chen"]
    assert resolve_reference(organization=org_a, phrase="the CFO").names == ["Sarah Chen"]
    assert resolve_reference(organization=org_a, phrase="the CFO",
                             at=datetime(2021, 6, 1, tzinfo=UTC)).names == ["John Park"]
    assert resolve_reference(organization=org_a, phrase="the accountant").names == ["Dev Patel"]


def test_resolution_never_crosses_organizations(org_a, org_b, tenant_a, tenant_b):
    """Another organization's people and teams are invisible to resolution."""
    company(org_b, tenant_b)
    assert resolve_reference(organization=org_a, phrase="the CFO").entities == []
    assert resolve_reference(organization=org_a, phrase="the finance team").entities == []


def test_relationship_to_an_entity_of_another_organization_is_refused(org_a, org_b):
    """A relationship cannot point at another organization's entity (400 naming the field)."""
    mine = entity_upsert(organization=org_a, kind="person", name="Ann")[0]
    theirs = entity_upsert(organization=org_b, kind="team", name="Their team")[0]
    with pytest.raises(InvalidInput) as refused:
        relationship_create(organization=org_a, kind="member_of", source=mine, target=theirs)
    assert refused.value.field == "target"


# --- forget, show and clear -------------------------------------------------------------------


def test_forget_topic_leaves_no_trace_in_search_export_or_embeddings(org_a, tenant_a):
    """After "forget Falcon", no search mode, export or stored row returns it."""
    message = message_record(organization=org_a, candidate=MessageInput(
        text="Project Falcon launches in May", speaker="Ann", source_id="c1"))
    remember(org_a, "Project Falcon launches in May", category="projects", source_message=message,
             source_text=message.text)
    falcon = entity_upsert(organization=org_a, kind="project", name="Falcon")[0]
    remember(org_a, "Codename is secret-ish", subject=falcon, predicate="codename", value="bird", category="projects")
    remember(org_a, "Project Kestrel launches in June", category="projects")
    report = memory_forget_topic(organization=org_a, topic="falcon", actor=tenant_a.owner)
    assert (report.facts, report.messages, report.entities) == (2, 1, 1)
    for mode in ("hybrid", "vector", "text"):
        hits = retrieval.search(organization=org_a, query="Falcon launch", limit=20,
                                options=retrieval.SearchOptions(mode=mode), include_history=True)
        assert all("falcon" not in h.text.lower() for h in hits)
    assert "falcon" not in json.dumps(export_json(organization=org_a)).lower()
    assert "falcon" not in export_markdown(organization=org_a).lower()
    assert not Fact.objects.for_org(org_a).filter(text__icontains="falcon").exists()
    assert not Message.objects.for_org(org_a).exists()
    assert Fact.objects.for_org(org_a).filter(embedding__isnull=False).count() == 1  # Kestrel only
    from accounts.models import AuditEvent

    assert "falcon" not in json.dumps(list(AuditEvent.objects.for_org(org_a).values("target_label", "after")),
                                      default=str).lower()


def test_forget_dry_run_counts_without_deleting(org_a):
    """A dry run says what would go and removes nothing."""
    remember(org_a, "Falcon is late", category="projects")
    report = memory_forget_topic(organization=org_a, topic="Falcon", actor=None, dry_run=True)
    assert report.facts == 1
    assert Fact.objects.for_org(org_a).count() == 1


def test_show_and_clear_my_data(org_a, tenant_a):
    """A user sees and clears what they told memory and what is about them; the rest stays."""
    user = tenant_a.member
    me = entity_upsert(organization=org_a, kind="person", name="Mia Member", attributes={"email": user.email})[0]
    fact_remember(organization=org_a, candidate=FactInput(text="I prefer calls after 10am", category="preferences"),
                  actor=user)
    remember(org_a, "The office closes at 6pm", category="company")
    shown = memory_show_my_data(organization=org_a, user=user)
    assert shown["person"] == me
    assert {f.text for f in shown["facts"]} == {"I prefer calls after 10am", "Mia Member's email is " + user.email}
    report = memory_clear_my_data(organization=org_a, user=user, actor=user)
    assert report.facts == 2
    assert list(Fact.objects.for_org(org_a).values_list("text", flat=True)) == ["The office closes at 6pm"]


def test_clear_all_removes_everything_of_one_organization_only(org_a, org_b):
    """Clearing an organization's memory leaves the other organization's untouched."""
    remember(org_a, "A fact", category="company")
    remember(org_b, "B fact", category="company")
    memory_clear_all(organization=org_a, actor=None)
    assert not Fact.objects.for_org(org_a).exists()
    assert Fact.objects.for_org(org_b).count() == 1


def test_about_gathers_entity_facts_relationships_and_records_use(org_a, tenant_a):
    """"What do you know about Sarah Chen": her current facts and relationships; they count as used."""
    company(org_a, tenant_a)
    knowledge = memory_about(organization=org_a, topic="Sarah Chen")
    assert knowledge.entity.name == "Sarah Chen"
    assert {f.predicate for f in knowledge.facts} == {"email", "role"}
    assert {r.kind for r in knowledge.relationships} == {"member_of", "manages"}
    assert all(f.use_count == 1 for f in Fact.objects.for_org(org_a).filter(subject=knowledge.entity,
                                                                             status=FactStatus.ACTIVE))


# --- export and import ----------------------------------------------------------------------


def _fact_set(org):
    return sorted(fact_signature(f) for f in Fact.objects.for_org(org).select_related("subject"))


def test_json_export_import_round_trip_is_lossless(org_a, org_b, tenant_a):
    """Export → import into an empty organization → the identical fact set, relationships and history."""
    company(org_a, tenant_a)
    john = Entity.objects.for_org(org_a).get(name="John Park")
    conflict = remember(org_a, "John Park's email is jp@x.example", subject=john, predicate="email",
                        value="jp@x.example", category="team").conflict
    assert conflict is not None
    message = message_record(organization=org_a, candidate=MessageInput(text="Lunch is at noon", speaker="Ann"))
    remember(org_a, "Lunch is at noon", category="company", source_message=message, source_type="message")
    exported = export_json(organization=org_a)
    data = json.loads(json.dumps(exported))
    counts = import_json(organization=org_b, data=data, actor=None)
    assert counts["facts"] == Fact.objects.for_org(org_a).count()
    assert _fact_set(org_b) == _fact_set(org_a)
    assert Conflict.objects.for_org(org_b).filter(status="pending").count() == 1
    again = export_json(organization=org_b)
    strip = lambda d: json.dumps({k: v for k, v in d.items() if k != "exported_at"}, sort_keys=True)  # noqa: E731
    # References differ (database ids); the content does not.
    assert len(again["facts"]) == len(exported["facts"])
    assert sorted(json.dumps({k: v for k, v in f.items() if k not in ("ref", "subject", "source_message",
                                                                          "superseded_by")}, sort_keys=True)
                  for f in again["facts"]) == sorted(
        json.dumps({k: v for k, v in f.items() if k not in ("ref", "subject", "source_message", "superseded_by")},
                   sort_keys=True) for f in exported["facts"])
    assert strip(again) != ""  # well-formed
    # importing the same file again adds nothing
    assert import_json(organization=org_b, data=data, actor=None)["facts"] == 0


def test_import_is_all_or_nothing_and_names_the_bad_row(org_a):
    """One malformed row refuses the whole import with its position and reason; nothing is written."""
    data = {
        "format": "staffer-memory", "version": 1,
        "entities": [{"ref": "e1", "kind": "person", "name": "Ann"}],
        "facts": [
            {"ref": "f1", "text": "Ann likes tea", "category": "preferences", "subject": "e1"},
            {"ref": "f2", "text": "Bad", "category": "gossip"},
        ],
    }
    with pytest.raises(InvalidInput) as refused:
        import_json(organization=org_a, data=data, actor=None)
    assert refused.value.field == "facts[1]"
    assert "facts[1].category" in refused.value.message
    assert not Entity.objects.for_org(org_a).exists()
    assert not Fact.objects.for_org(org_a).exists()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"ref": "f1", "text": ""}, "facts[0].text: must not be empty"),
        ({"ref": "f1", "text": "x" * 2001}, "facts[0].text: at most 2000"),
        ({"ref": "f1", "text": "ok", "subject": "e9"}, "facts[0].subject: refers to 'e9'"),
        ({"ref": "f1", "text": "ok", "confidence": 3}, "facts[0].confidence"),
        ({"ref": "f1", "text": "ok", "valid_from": "yesterday"}, "facts[0].valid_from"),
        ({"ref": "f1", "text": "card 4111 1111 1111 1111"}, "payment card"),
        ("not an object", "facts[0]: each row is an object"),
    ],
)
def test_import_reasons(org_a, row, reason):
    """Each kind of malformed row is reported with its reason."""
    with pytest.raises(InvalidInput) as refused:
        import_json(organization=org_a, data={"format": "staffer-memory", "version": 1, "facts": [row]}, actor=None)
    assert reason in refused.value.message


def test_markdown_export_is_readable(org_a, tenant_a):
    """The Markdown export lists current facts by category, history, people and relationships."""
    company(org_a, tenant_a)
    text = export_markdown(organization=org_a)
    assert "## Team" in text
    assert "Sarah Chen is the Chief Financial Officer (since 2023-03-01)" in text
    assert "John Park was the CFO (2020-01-01 to 2023-03-01)" in text
    assert "Ann Lee manages Bob Stone" in text


# --- analytics, expiry ------------------------------------------------------------------------


def test_analytics_counts(org_a, tenant_a):
    """Totals by category, confidence buckets, recently used and pending conflicts."""
    company(org_a, tenant_a)
    fact = remember(org_a, "We prefer Slack", category="preferences", confidence=0.3).fact
    facts_mark_used(organization=org_a, fact_ids=[fact.pk])
    stats = memory_analytics(organization=org_a)
    assert stats["by_category"]["preferences"] == 1
    assert stats["recently_used"][0]["id"] == fact.pk
    assert sum(b["count"] for b in stats["confidence_distribution"]) == stats["facts_current"]
    assert stats["confidence_distribution"][1]["count"] == 1
    assert stats["entities"] == {"person": 6, "team": 2}
    graph = entity_graph(organization=org_a)
    assert len(graph["nodes"]) == 8
    assert len(graph["edges"]) == 9


def test_expiry_asks_before_deleting_and_keeps_facts_in_use(org_a):
    """Unused old facts are proposed, not deleted; approval deletes them, a fact used meanwhile is kept."""
    old = remember(org_a, "Old unused fact", category="other").fact
    used = remember(org_a, "Old but used fact", category="other").fact
    fresh = remember(org_a, "Fresh fact", category="other").fact
    long_ago = timezone.now() - timedelta(days=200)
    Fact.objects.for_org(org_a).filter(pk__in=[old.pk, used.pk]).update(updated_at=long_ago)
    review = expiry_sweep(organization=org_a)
    assert review is not None
    assert review.fact_count == 2
    assert Fact.objects.for_org(org_a).count() == 3  # nothing deleted yet
    facts_mark_used(organization=org_a, fact_ids=[used.pk])
    deleted = expiry_review_decide(organization=org_a, review=review, approve=True, actor=None)
    assert deleted == 1
    assert set(Fact.objects.for_org(org_a).values_list("pk", flat=True)) == {used.pk, fresh.pk}


def test_expiry_approval_can_keep_a_summary(org_a):
    """Approving with summarize deletes the old facts and keeps one extractive summary per subject and category."""
    ann = entity_upsert(organization=org_a, kind="person", name="Ann")[0]
    for text in ("Ann likes green tea", "Ann plays chess", "Ann ran the 2019 offsite"):
        remember(org_a, text, subject=ann, category="team")
    Fact.objects.for_org(org_a).update(updated_at=timezone.now() - timedelta(days=365))
    review = expiry_sweep(organization=org_a)
    assert expiry_review_decide(organization=org_a, review=review, approve=True, actor=None, summarize=True) == 3
    (summary,) = Fact.objects.for_org(org_a).all()
    assert summary.text.startswith("Summary of older facts about Ann (3): ")
    assert "Ann plays chess" in summary.text
    assert summary.subject == ann


def test_expiry_task_sweeps_every_organization(org_a, org_b):
    """The periodic task opens a review in each organization that has stale facts, and only there."""
    from memory.tasks import expiry_sweep_all

    old = remember(org_a, "Stale", category="other").fact
    remember(org_b, "Fresh", category="other")
    Fact.objects.for_org(org_a).filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=365))
    assert expiry_sweep_all() == 1
    assert ExpiryReview.objects.for_org(org_a).filter(status="pending").count() == 1
    assert not ExpiryReview.objects.for_org(org_b).exists()


def test_expiry_dismiss_keeps_and_zero_days_disables(org_a):
    """Dismissing keeps the facts; an expiry of 0 days never proposes anything."""
    fact = remember(org_a, "Keep me", category="other").fact
    Fact.objects.for_org(org_a).filter(pk=fact.pk).update(updated_at=timezone.now() - timedelta(days=400))
    review = expiry_sweep(organization=org_a)
    expiry_review_decide(organization=org_a, review=review, approve=False, actor=None)
    assert Fact.objects.for_org(org_a).filter(pk=fact.pk).exists()
    assert expiry_sweep(organization=org_a) is None or ExpiryReview.objects.for_org(org_a).filter(
        status="pending").count() == 0
    memory_settings_update(organization=org_a, actor=None, auto_expiry_days=0)
    Fact.objects.for_org(org_a).filter(pk=fact.pk).update(updated_at=timezone.now() - timedelta(days=4000),
                                                          last_used_at=None)
    assert expiry_sweep(organization=org_a) is None


# --- context builder, repeated work -------------------------------------------------------------


def test_context_fits_the_budget_and_summarizes_the_rest(org_a):
    """The best facts fill the budget; what does not fit is summarized; the total stays within budget."""
    for i in range(30):
        remember(org_a, f"Customer number {i} of the northern region prefers invoices by email", category="company")
    context = build_context(organization=org_a, query="How do northern customers want invoices?", token_budget=120)
    assert context.included
    assert context.omitted
    assert context.summary.startswith("Also:")
    assert context.tokens <= 120
    assert estimate_tokens(context.text) == context.tokens
    used = Fact.objects.for_org(org_a).filter(use_count=1).count()
    assert used == len(context.included)


def test_repeated_work_suggests_a_workflow_after_three_similar_tasks():
    """Three similar titles (different customers and months) give one suggestion; two do not."""
    titles = [
        "Send invoice to Acme for March",
        "send invoice to Globex for April",
        "Send invoice to Initech for May 2024",
        "Book flights to Berlin",
        "Book flights to Paris",
        "Review PR #123",
    ]
    suggestions = suggest_workflows(titles)
    assert len(suggestions) == 1
    assert suggestions[0].count == 3
    assert suggestions[0].template == "send invoice to {name} for {month}"
    assert "3 times" in suggestions[0].message
    assert title_template("Review PR #123") == ["review", "{name}", "{number}"]
    assert suggest_workflows(titles[:2]) == []
