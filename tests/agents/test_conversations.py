"""Handling chat messages with the scripted model: questions answered from business memory, memory commands,
a simple action whose missing parameters are asked for, small talk, and facts learned in the background."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from agents.models import Message, Thread
from agents.services.chat import message_handle
from agents.services.conversations import message_post, thread_create
from agents.services.learning import facts_write, learn_from_message
from memory.models import Conflict, Entity, Fact
from memory.services.commands import memory_remember
from memory.services.entities import entity_upsert
from memory.services.facts import FactInput, fact_remember
from tools.models import ToolCall

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _scripted(settings, monkeypatch):
    from agents.services import conversations

    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}
    monkeypatch.setattr(conversations, "_enqueue_handling", lambda organization_id, message_id: None)


def say(tenant, text: str, thread: Thread | None = None, user=None) -> tuple[Thread, list[Message]]:
    user = user or tenant.member
    thread = thread or thread_create(organization=tenant.organization, user=user)
    message = message_post(thread=thread, user=user, content=text)
    return thread, message_handle(message=message)


def test_a_question_is_answered_from_business_memory(tenant_a):
    """"Who is Maria's manager?" is a question; the answer quotes what memory holds, marked as the scripted model's."""
    memory_remember(organization=tenant_a.organization, actor=tenant_a.admin,
                    text="Maria Lopez reports to Dana Whitfield, the QA lead.")
    _, replies = say(tenant_a, "Who is Maria's manager?")
    assert len(replies) == 1
    answer = replies[0]
    assert answer.role == "assistant"
    assert "Maria Lopez reports to Dana Whitfield" in answer.content
    assert answer.metadata["intent"] == "question"
    assert answer.metadata["memory_facts"]
    assert answer.metadata["scripted"] is True


def test_memory_commands_remember_about_show_forget_and_clear(tenant_a):
    """Remember stores a fact told by the user; "what do you know" reads it; "show my data" lists it; "forget"
    and "clear my data" delete it."""
    org = tenant_a.organization
    thread, replies = say(tenant_a, "Remember that our fiscal year starts in April")
    assert replies[0].content == "Noted: our fiscal year starts in April"
    fact = Fact.objects.for_org(org).get()
    assert (fact.predicate, fact.value, fact.created_by_id) == ("fiscal_year_start", "April", tenant_a.member.pk)
    _, replies = say(tenant_a, "What do you know about the company?", thread=thread)
    assert "fiscal year start April" in replies[0].content
    _, replies = say(tenant_a, "Show my data", thread=thread)
    assert replies[0].content.startswith("I hold 1 facts")
    _, replies = say(tenant_a, "Forget fiscal year", thread=thread)
    assert "1 facts" in replies[0].content
    assert not Fact.objects.for_org(org).exists()
    say(tenant_a, "Remember that our fiscal year starts in April", thread=thread)
    _, replies = say(tenant_a, "Clear my data", thread=thread)
    assert replies[0].content.startswith("Cleared: 1 facts")
    assert not Fact.objects.for_org(org).exists()


def test_a_viewer_cannot_change_memory_by_chat(tenant_a, client_for):
    """A viewer may not use the assistant: a memory command from a viewer is refused and stores nothing."""
    thread = Thread.objects.for_org(tenant_a.organization).create(organization=tenant_a.organization,
                                                                   user=tenant_a.viewer)
    message = message_post(thread=thread, user=tenant_a.viewer, content="Remember that our fiscal year starts in April")
    replies = message_handle(message=message)
    assert replies[0].role == "system"
    assert "not allowed" in replies[0].content
    assert not Fact.objects.for_org(tenant_a.organization).exists()


def test_a_simple_action_asks_for_what_is_missing_and_the_answer_completes_it(tenant_a):
    """"Schedule a meeting with Dana" lacks a time: the assistant asks; "Tomorrow at 10 for 30 minutes" completes the
    parameters (Dana becomes the member's address, the time an ISO time in the organization's zone) and the
    invitation goes out with one tool call."""
    dana = tenant_a.manager
    dana.full_name = "Dana Whitfield"
    dana.save(update_fields=["full_name"])
    thread, replies = say(tenant_a, "Schedule a meeting with Dana")
    assert replies[0].metadata["kind"] == "question"
    assert "When should the meeting" in replies[0].content
    assert Thread.objects.for_org(tenant_a.organization).get(pk=thread.pk).pending["action"] == "calendar_invite"
    assert not ToolCall.objects.for_org(tenant_a.organization).exists()

    _, replies = say(tenant_a, "Tomorrow at 10 for 30 minutes", thread=thread)
    call = ToolCall.objects.for_org(tenant_a.organization).get()
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert call.tool_name == "calendar_invite"
    assert call.outcome == "succeeded", call.reason
    assert call.arguments["attendees"] == [dana.email]
    assert call.arguments["start"] == f"{tomorrow}T10:00"
    assert call.arguments["duration_minutes"] == 30
    assert replies[0].role == "tool"
    assert replies[0].content.startswith("Done: ")
    assert Thread.objects.for_org(tenant_a.organization).get(pk=thread.pk).pending == {}
    assert any(dana.email in m.to for m in mail.outbox)


def test_small_talk_gets_an_answer_labelled_as_the_scripted_model(tenant_a):
    """A greeting is conversation; without a configured model the answer says it is the offline scripted model."""
    _, replies = say(tenant_a, "Hello there!")
    assert replies[0].metadata["intent"] == "conversation"
    assert "scripted model" in replies[0].content
    assert replies[0].metadata["label"].startswith("Scripted model")


def test_handling_a_message_twice_answers_once(tenant_a):
    """A redelivered Celery message finds the message handled and does nothing."""
    thread = thread_create(organization=tenant_a.organization, user=tenant_a.member)
    message = message_post(thread=thread, user=tenant_a.member, content="Hello there!")
    assert len(message_handle(message=message)) == 1
    message.refresh_from_db()
    assert message_handle(message=message) == []
    assert Message.objects.for_org(tenant_a.organization).filter(thread=thread).count() == 2


def test_facts_are_learned_from_a_message_with_provenance(tenant_a):
    """The onboarding request teaches memory Maria's title, manager and start date, each pointing at the message."""
    thread = thread_create(organization=tenant_a.organization, user=tenant_a.member)
    message = message_post(thread=thread, user=tenant_a.member,
                           content="Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana")
    learned = learn_from_message(message=message)
    assert len(learned.created) == 3
    facts = Fact.objects.for_org(tenant_a.organization).filter(pk__in=learned.created)
    assert {(f.predicate, f.value) for f in facts} == {
        ("job_title", "QA engineer"), ("reports_to", "Dana"), ("start_date", "1 March")}
    assert {f.source_id for f in facts} == {f"agents.message:{message.pk}"}
    assert all(f.source_message_id for f in facts)
    assert Entity.objects.for_org(tenant_a.organization).get(name="Maria Lopez").kind == "person"


def test_a_contradiction_comes_back_to_the_user_as_a_question(tenant_a):
    """Memory says Maria is a designer; the message says QA engineer: the fact waits behind a conflict and its
    question is posted to the thread."""
    org = tenant_a.organization
    maria, _ = entity_upsert(organization=org, kind="person", name="Maria Lopez", actor=tenant_a.admin)
    fact_remember(organization=org, actor=tenant_a.admin, candidate=FactInput(
        text="Maria Lopez's job_title is Designer", subject=maria, predicate="job_title", value="Designer",
        category="team"))
    thread = thread_create(organization=org, user=tenant_a.member)
    message = message_post(thread=thread, user=tenant_a.member,
                           content="Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana")
    learned = learn_from_message(message=message)
    assert len(learned.conflicts) == 1
    conflict = Conflict.objects.for_org(org).get(pk=learned.conflicts[0])
    question = Message.objects.for_org(org).filter(thread=thread, metadata__kind="memory_conflict").get()
    assert question.content == conflict.question
    assert "Designer" in question.content


def test_secrets_never_reach_memory(tenant_a):
    """A message holding a password is not indexed; an extracted fact holding a card number is dropped, counted."""
    org = tenant_a.organization
    thread = thread_create(organization=org, user=tenant_a.member)
    message = message_post(thread=thread, user=tenant_a.member, content="The admin password is Tr0ub4dor&3xyz")
    learned = learn_from_message(message=message)
    assert learned.refused_secrets == 1
    learned, _ = facts_write(organization=org, actor=tenant_a.member, source_id="x", source_text="x", facts=[
        {"subject": "Acme", "kind": "company", "predicate": "card", "value": "4242 4242 4242 4242", "confidence": 0.9},
        {"subject": "Acme", "kind": "company", "predicate": "city", "value": "Lyon", "confidence": 0.9}])
    assert learned.refused_secrets == 1
    assert len(learned.created) == 1
    assert not Fact.objects.for_org(org).filter(value__contains="4242").exists()


def test_a_simple_action_that_needs_approval_runs_once_approved_and_says_so(
        tenant_a, django_capture_on_commit_callbacks):
    """The invitation reaches outside the organization (Dana is a partner known to memory): the tools layer asks for
    approval and nothing is sent; once an admin approves, the same call runs and the thread says it is done."""
    from accounts.models import ApprovalRequest
    from accounts.services.approvals import approval_decide

    org = tenant_a.organization
    entity_upsert(organization=org, kind="person", name="Dana", attributes={"email": "dana@partner.example"},
                  actor=tenant_a.admin)
    thread, _ = say(tenant_a, "Schedule a meeting with Dana")
    _, replies = say(tenant_a, "Tomorrow at 10 for 30 minutes", thread=thread)
    call = ToolCall.objects.for_org(org).get()
    assert call.outcome == "needs_approval"
    assert call.arguments["attendees"] == ["dana@partner.example"]
    assert "needs approval first" in replies[0].content
    assert mail.outbox == []
    approval = ApprovalRequest.objects.for_org(org).get(kind="tool_call")
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval, actor=tenant_a.admin, approve=True)
    ran = ToolCall.objects.for_org(org).filter(tool_name="calendar_invite", outcome="succeeded")
    assert ran.count() == 1
    last = Message.objects.for_org(org).filter(thread=thread).latest("id")
    assert last.role == "tool"
    assert last.content.startswith("Done: ")
    assert last.metadata["approval"] == approval.pk
    assert any("dana@partner.example" in m.to for m in mail.outbox)
