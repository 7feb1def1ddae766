"""Chat pages: conversations, a thread, posting, deciding from a card, editing a plan, quick actions, comparing.

Every page is the thread owner's: another member's thread and another organization's are "not found", and
a refused action changes nothing.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.models import ApprovalRequest, ApprovalStatus
from accounts.services.approvals import approval_request_create
from agents.models import AgentWork, Message, Plan, PlanStatus, Thread
from automation.models import Task
from tests.chat.support import PLAN, make_request, make_step, make_thread, record, say

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    """Posting queues the assistant's handling: here it is only noted."""
    from agents.services import conversations

    queued: list[int] = []
    monkeypatch.setattr(conversations, "_enqueue_handling", lambda organization_id, message_id: queued.append(
        message_id))
    return queued


def _thread_url(slug: str, thread_id: int, name: str = "chat-thread", **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": slug, "thread_id": thread_id, **kwargs})


def _card_approval(thread, user, *, kind: str = "purchase", title: str = "Buy Maria a laptop") -> ApprovalRequest:
    approval = approval_request_create(organization=thread.organization, kind=kind, title=title,
                                       requested_by=user, reason="She starts on **1 March**.")
    root = make_request(thread)
    record(root, "approval_requested", role="system", text=f"{title}: approval #{approval.pk} is waiting.",
           thread=thread, approval=approval.pk, kind="step_output")
    return approval


# --- conversations ------------------------------------------------------------------------------------


def test_conversations_list_only_the_users_own_threads(tenant_a, page_for):
    """The chat home lists the member's threads, not a colleague's."""
    make_thread(tenant_a.member, tenant_a.organization, title="My onboarding questions")
    make_thread(tenant_a.manager, tenant_a.organization, title="The manager's private thread")
    response = page_for(tenant_a.member).get(reverse("chat", args=[tenant_a.slug]))
    assert response.status_code == 200
    assert "My onboarding questions" in response.content.decode()
    assert "private thread" not in response.content.decode()


def test_chat_needs_the_assistant_scope_and_membership(tenants, page_for, client):
    """A viewer gets 403, another organization's member 404, an anonymous visitor the login page."""
    a, b = tenants
    url = reverse("chat", args=[a.slug])
    assert page_for(a.viewer).get(url).status_code == 403
    assert page_for(b.owner).get(url).status_code == 404
    assert client.get(url).status_code == 302


def test_first_message_starts_a_thread(tenant_a, page_for, queued, django_capture_on_commit_callbacks):
    """Posting on the chat home creates a thread with the message, queues its handling and opens the thread."""
    with django_capture_on_commit_callbacks(execute=True):
        response = page_for(tenant_a.member).post(reverse("chat", args=[tenant_a.slug]),
                                                  {"content": "Onboard Maria Lopez as QA engineer"})
    thread = Thread.objects.for_org(tenant_a.organization).get(user=tenant_a.member)
    assert response.status_code == 302
    assert response["Location"] == _thread_url(tenant_a.slug, thread.pk)
    message = Message.objects.for_org(tenant_a.organization).get(thread=thread)
    assert message.content == "Onboard Maria Lopez as QA engineer"
    assert message.author == tenant_a.member
    assert queued == [message.pk]


def test_empty_first_message_is_refused_with_a_field_message(tenant_a, page_for):
    """An empty message is a 400 naming the field; no thread is created."""
    page = page_for(tenant_a.member)
    response = page.post(reverse("chat", args=[tenant_a.slug]), {"content": "   "})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
    response = page.post(reverse("chat", args=[tenant_a.slug]), {"content": ""}, **JSON)
    assert response.status_code == 400
    assert response.json()["field"] == "content"
    assert not Thread.objects.for_org(tenant_a.organization).exists()


# --- one thread -----------------------------------------------------------------------------------------


def test_thread_page_shows_messages_by_role_and_the_run(tenant_a, page_for):
    """The thread shows each role's message, sanitized Markdown, and the run's plan, progress and cursor."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    say(thread, "Onboard Maria <script>alert(1)</script> **now**")
    root = make_request(thread)
    record(root, "plan", text="Plan v1: onboard Maria\n1. Write the letter\n2. Send the email", thread=thread,
           version=1, steps=PLAN)
    step = make_step(root, "draft_offer_letter", thread)
    record(step, "step_started", role="employee", text="Working on the letter.", thread=thread,
           step="draft_offer_letter", revision=1)
    response = page_for(tenant_a.member).get(_thread_url(tenant_a.slug, thread.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "<strong>now</strong>" in html
    assert "role-manager" in html
    assert "role-employee" in html
    assert "role-user" in html
    assert "<ol>" in html
    assert "<li>Write the letter</li>" in html
    assert f'id="run-{root.pk}"' in html
    assert "0 of 3 steps done · about 10 min left" in html
    assert "Employee is working on “Write Maria Lopez&#x27;s offer letter (.docx)”…" in html
    data = json.loads(html.split('id="chat-data" type="application/json">')[1].split("</script>")[0])
    assert data["ws"] == f"/ws/orgs/{tenant_a.slug}/chat/threads/{thread.pk}/"
    assert data["cursor"]["t"][str(step.pk)] >= 2
    assert data["cursor"]["m"] == Message.objects.for_org(tenant_a.organization).filter(thread=thread).latest("id").pk
    assert data["runs"][0]["steps"][0]["status"] == "in_progress"


def test_another_members_thread_and_another_organizations_are_not_found(tenants, page_for):
    """A colleague's thread, and another organization's thread id under your slug, are 404; so is a foreign slug."""
    a, b = tenants
    colleague = make_thread(a.manager, a.organization)
    foreign = make_thread(b.member, b.organization)
    page = page_for(a.member)
    assert page.get(_thread_url(a.slug, colleague.pk)).status_code == 404
    assert page.get(_thread_url(a.slug, foreign.pk)).status_code == 404
    assert page.get(_thread_url(b.slug, foreign.pk)).status_code == 404


def test_posting_a_message_works_with_and_without_javascript(tenant_a, page_for, queued,
                                                             django_capture_on_commit_callbacks):
    """A form post redirects to the new message; a fetch post answers 201 with the message rendered."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    page = page_for(tenant_a.member)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-post")
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(url, {"content": "What is on Maria's first day?"})
    first = Message.objects.for_org(tenant_a.organization).get(thread=thread)
    assert response.status_code == 302
    assert response["Location"].endswith(f"#msg-{first.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(url, {"content": "And **who** meets her?"}, **JSON)
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "message"
    assert "<strong>who</strong>" in body["html"]
    assert queued == [first.pk, body["id"]]


def test_bad_messages_are_refused_with_field_messages(tenant_a, page_for):
    """Empty or over-long messages are 400 with a message for the field; nothing is stored."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    page = page_for(tenant_a.member)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-post")
    assert page.post(url, {"content": ""}).status_code == 400
    response = page.post(url, {"content": "x" * 8001}, **JSON)
    assert response.status_code == 400
    assert "8000" in response.json()["error"]
    assert not Message.objects.for_org(tenant_a.organization).filter(thread=thread).exists()


def test_posting_to_a_foreign_thread_changes_nothing(tenants, page_for):
    """Posting to another organization's thread (either slug) is 404 and stores nothing."""
    a, b = tenants
    foreign = make_thread(b.member, b.organization)
    page = page_for(a.member)
    for slug in (a.slug, b.slug):
        assert page.post(_thread_url(slug, foreign.pk, "chat-post"), {"content": "hi"}).status_code == 404
    assert not Message.objects.for_org(b.organization).exists()


# --- approvals from the card --------------------------------------------------------------------------


def test_a_manager_approves_from_the_card(tenant_a, page_for):
    """The card's Approve button decides through the approvals service; fetch gets the updated card."""
    thread = make_thread(tenant_a.manager, tenant_a.organization)
    approval = _card_approval(thread, tenant_a.member)
    page = page_for(tenant_a.manager)
    html = page.get(_thread_url(tenant_a.slug, thread.pk)).content.decode()
    assert f'id="approval-{approval.pk}"' in html
    assert ">Approve</button>" in html
    assert "<strong>1 March</strong>" in html
    url = _thread_url(tenant_a.slug, thread.pk, "chat-decide", approval_id=approval.pk, decision="approve")
    response = page.post(url, {}, **JSON)
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert f"approved by {tenant_a.manager.email}" in response.json()[
        "html"]
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert approval.decided_by == tenant_a.manager


def test_rejecting_needs_a_reason_and_then_works_without_javascript(tenant_a, page_for):
    """Reject without a reason is 400 and changes nothing; with one it rejects and redirects to the card."""
    thread = make_thread(tenant_a.manager, tenant_a.organization)
    approval = _card_approval(thread, tenant_a.member)
    page = page_for(tenant_a.manager)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-decide", approval_id=approval.pk, decision="reject")
    assert page.post(url, {"reason": ""}).status_code == 400
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    response = page.post(url, {"reason": "Wait for the contract"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"#approval-{approval.pk}")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert approval.decision_reason == "Wait for the contract"


def test_a_member_without_approvals_decide_gets_no_buttons_and_403(tenant_a, page_for):
    """A member sees the card without buttons; posting a decision anyway is 403 and leaves it pending."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    approval = _card_approval(thread, tenant_a.manager)
    page = page_for(tenant_a.member)
    html = page.get(_thread_url(tenant_a.slug, thread.pk)).content.decode()
    assert f'id="approval-{approval.pk}"' in html
    assert "js-decide" not in html
    url = _thread_url(tenant_a.slug, thread.pk, "chat-decide", approval_id=approval.pk, decision="approve")
    assert page.post(url, {}).status_code == 403
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_deciding_an_approval_the_thread_does_not_name_is_not_found(tenants, page_for):
    """An approval outside the thread (same organization or another) is 404 here and stays pending."""
    a, b = tenants
    thread = make_thread(a.manager, a.organization)
    _card_approval(thread, a.member)
    elsewhere = approval_request_create(organization=a.organization, kind="purchase", title="Other", requested_by=None)
    foreign = approval_request_create(organization=b.organization, kind="purchase", title="Globex", requested_by=None)
    page = page_for(a.manager)
    for approval in (elsewhere, foreign):
        url = _thread_url(a.slug, thread.pk, "chat-decide", approval_id=approval.pk, decision="approve")
        assert page.post(url, {}).status_code == 404
    assert ApprovalRequest.objects.for_org(a.organization).get(pk=elsewhere.pk).status == ApprovalStatus.PENDING
    assert ApprovalRequest.objects.for_org(b.organization).get(pk=foreign.pk).status == ApprovalStatus.PENDING


def test_deciding_twice_says_why_on_the_card(tenant_a, page_for):
    """A decision on an approval decided meanwhile (another tab) is a 409 with the card as it is now."""
    thread = make_thread(tenant_a.manager, tenant_a.organization)
    approval = _card_approval(thread, tenant_a.member)
    page = page_for(tenant_a.manager)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-decide", approval_id=approval.pk, decision="approve")
    assert page.post(url, {}, **JSON).status_code == 200
    response = page.post(url, {}, **JSON)
    assert response.status_code == 409
    assert response.json()["status"] == "approved"
    assert response.json()["error"]


# --- plan edit ------------------------------------------------------------------------------------------


def _plan(root: Task) -> Plan:
    steps = [{**s, "tools": [], "success_criteria": ["done"], "instructions": "", "approver": ""} for s in PLAN]
    return Plan.objects.for_org(root.organization).create(organization=root.organization, task=root, version=1,
                                                           status=PlanStatus.PROPOSED, summary="Onboard Maria",
                                                           steps=steps, author_label="manager")


def test_editing_the_plan_makes_a_new_version(tenant_a, page_for):
    """The edit form renames a step and removes another; the result is plan v2 with the dependency dropped."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    plan = _plan(root)
    page = page_for(tenant_a.member)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-plan-edit", plan_id=plan.pk)
    assert "Write Maria Lopez&#x27;s offer letter" in page.get(url).content.decode()
    data = {"summary": "Onboard Maria, shorter"}
    for step in PLAN:
        prefix = f"step-{step['id']}"
        data.update({f"{prefix}-title": step["title"], f"{prefix}-instructions": "",
                     f"{prefix}-estimate_minutes": str(step["estimate_minutes"])})
        if step["needs_approval"]:
            data[f"{prefix}-needs_approval"] = "on"
    data["step-send_welcome_email-title"] = "Send Maria a warm welcome email"
    data["step-schedule_first_day-remove"] = "on"
    response = page.post(url, data)
    assert response.status_code == 302, response.content.decode()[:500]
    new = Plan.objects.for_org(tenant_a.organization).filter(task=root).latest("version")
    assert new.version == 2
    assert new.summary == "Onboard Maria, shorter"
    assert [s["id"] for s in new.steps] == ["draft_offer_letter", "send_welcome_email"]
    assert new.steps[1]["title"] == "Send Maria a warm welcome email"


def test_an_invalid_plan_edit_is_a_400_with_the_field_marked(tenant_a, page_for):
    """A step left without a title is refused; the plan keeps its version."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    plan = _plan(root)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-plan-edit", plan_id=plan.pk)
    response = page_for(tenant_a.member).post(url, {"step-draft_offer_letter-title": ""})
    assert response.status_code == 400
    assert Plan.objects.for_org(tenant_a.organization).filter(task=root).count() == 1


def test_a_plan_of_another_thread_or_organization_cannot_be_edited(tenants, page_for):
    """A plan outside the thread is 404 (and 404 under another organization's slug)."""
    a, b = tenants
    thread = make_thread(a.member, a.organization)
    other = make_thread(a.member, a.organization, title="another")
    plan = _plan(make_request(other))
    foreign_plan = _plan(make_request(make_thread(b.member, b.organization)))
    page = page_for(a.member)
    assert page.get(_thread_url(a.slug, thread.pk, "chat-plan-edit", plan_id=plan.pk)).status_code == 404
    assert page.get(_thread_url(a.slug, thread.pk, "chat-plan-edit", plan_id=foreign_plan.pk)).status_code == 404


# --- quick actions and status -------------------------------------------------------------------------


def test_cancel_from_the_run_card(tenant_a, page_for):
    """Cancel stops the request; retrying a request that did not fail is refused with the service's reason."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    page = page_for(tenant_a.member)
    retry = _thread_url(tenant_a.slug, thread.pk, "chat-task-action", task_id=root.pk, action="retry")
    response = page.post(retry, **JSON)
    assert response.status_code in (400, 409)
    assert response.json()["error"]
    cancel = _thread_url(tenant_a.slug, thread.pk, "chat-task-action", task_id=root.pk, action="cancel")
    response = page.post(cancel)
    assert response.status_code == 302
    assert response["Location"].endswith(f"#run-{root.pk}")
    assert Task.objects.for_org(tenant_a.organization).get(pk=root.pk).status == "cancelled"


def test_quick_actions_refuse_tasks_outside_the_thread_and_viewers(tenants, page_for):
    """A task of another thread, or of another organization, is 404; nothing is cancelled."""
    a, b = tenants
    thread = make_thread(a.member, a.organization)
    make_request(thread)
    outside = make_request(make_thread(a.member, a.organization, title="other"))
    foreign = make_request(make_thread(b.member, b.organization))
    page = page_for(a.member)
    for task in (outside, foreign):
        url = _thread_url(a.slug, thread.pk, "chat-task-action", task_id=task.pk, action="cancel")
        assert page.post(url).status_code == 404
    assert Task.objects.for_org(a.organization).get(pk=outside.pk).status == "pending"
    assert Task.objects.for_org(b.organization).get(pk=foreign.pk).status == "pending"
    bogus = _thread_url(a.slug, thread.pk, "chat-task-action", task_id=outside.pk, action="delete")
    assert page.post(bogus).status_code == 404


def test_check_status_answers_the_run_state(tenant_a, page_for):
    """Check status returns the run folded from the database, with its cursor."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    record(root, "plan", text="Plan v1", thread=thread, version=1, steps=PLAN)
    url = _thread_url(tenant_a.slug, thread.pk, "chat-run-status", task_id=root.pk)
    body = page_for(tenant_a.member).get(url, **JSON).json()
    assert body["run"]["root"] == root.pk
    assert len(body["run"]["steps"]) == 3
    assert body["cursor"]["t"][str(root.pk)] >= 2


# --- revisions side by side -----------------------------------------------------------------------------


def test_two_revisions_side_by_side(tenant_a, page_for):
    """The compare page shows the Employee's two reports side by side, the changed words marked."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    step = make_step(root, "draft_offer_letter", thread)
    AgentWork.objects.for_org(tenant_a.organization).filter(task=step).update(verdicts=[
        {"revision": 1, "verdict": "revise", "feedback": "Name her manager.",
         "report": "Wrote the letter.\nManager: the hiring manager"},
        {"revision": 2, "verdict": "accept", "feedback": "Good.",
         "report": "Wrote the letter.\nManager: Dana Whitfield"},
    ])
    response = page_for(tenant_a.member).get(_thread_url(tenant_a.slug, thread.pk, "chat-compare", task_id=step.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<tr class="diff-replace">' in html
    assert "Manager: <del>the hiring manager</del>" in html
    assert "Manager: <ins>Dana Whitfield</ins>" in html
    assert "Name her manager." in html
    bad = page_for(tenant_a.member).get(
        _thread_url(tenant_a.slug, thread.pk, "chat-compare", task_id=step.pk) + "?a=1&b=7")
    assert bad.status_code == 400


def test_compare_is_not_found_for_a_foreign_task(tenants, page_for):
    """Comparing a task of another organization is 404."""
    a, b = tenants
    thread = make_thread(a.member, a.organization)
    foreign = make_request(make_thread(b.member, b.organization))
    assert page_for(a.member).get(_thread_url(a.slug, thread.pk, "chat-compare", task_id=foreign.pk)).status_code == 404


# --- clarification questions and plan cards -------------------------------------------------------------


def test_an_open_question_is_answered_inline_and_a_closed_one_says_so(tenant_a, page_for, queued,
                                                                      django_capture_on_commit_callbacks):
    """The Employee's question carries its own answer form while the thread waits for it; the answer is a
    message of the thread (handled like any other); once answered, the form is gone."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    step = make_step(root, "schedule_first_day", thread)
    record(step, "clarification_requested", role="employee", text="Which day should the welcome meeting be?",
           thread=thread, step="schedule_first_day", question="Which day?", kind="question")
    Thread.objects.for_org(tenant_a.organization).filter(pk=thread.pk).update(
        pending={"kind": "task_question", "task": step.pk, "question": "Which day?"})
    page = page_for(tenant_a.member)
    html = page.get(_thread_url(tenant_a.slug, thread.pk)).content.decode()
    assert 'class="inline-answer js-answer"' in html
    assert "A question for you:" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(_thread_url(tenant_a.slug, thread.pk, "chat-post"), {"content": "Monday 1 March"},
                             **JSON)
    assert response.status_code == 201
    assert queued == [response.json()["id"]]
    Thread.objects.for_org(tenant_a.organization).filter(pk=thread.pk).update(pending={})
    html = page.get(_thread_url(tenant_a.slug, thread.pk)).content.decode()
    assert "inline-answer" not in html
    assert "no longer open" in html


def test_a_member_may_edit_a_plan_but_not_approve_it(tenant_a, page_for):
    """A member (tasks:write, no approvals:decide) sees Edit plan on the card, no Approve button."""
    from agents.loop.manager import PLAN_APPROVAL_KIND, PLAN_SUBJECT

    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    plan = _plan(root)
    approval = approval_request_create(organization=tenant_a.organization, kind=PLAN_APPROVAL_KIND,
                                       subject_type=PLAN_SUBJECT, subject_id=str(plan.pk), title="Approve the plan",
                                       requested_by=tenant_a.member)
    Plan.objects.for_org(tenant_a.organization).filter(pk=plan.pk).update(status=PlanStatus.AWAITING_APPROVAL,
                                                                          approval=approval)
    record(root, "plan_approval_requested", role="system", text="Nothing runs until the plan is approved.",
           thread=thread, approval=approval.pk, plan=plan.pk, version=1, kind="plan")
    html = page_for(tenant_a.member).get(_thread_url(tenant_a.slug, thread.pk)).content.decode()
    card = html.split(f'id="approval-{approval.pk}"')[1].split("</section>")[0]
    assert "Edit plan" in card
    assert "js-decide" not in card
