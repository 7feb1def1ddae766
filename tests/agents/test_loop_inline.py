"""The Manager → Employee → Supervisor loop driven in this process (the engine's own code, no worker).

The same flows run on a real Celery worker in test_loop_worker.py; here each
stage is checked closely, fast.
"""

from __future__ import annotations

import pytest

from agents.models import AgentWork, Message, Plan, PlanStatus, Thread
from agents.services.chat import message_handle
from agents.services.conversations import message_post, thread_create
from automation.models import Task, TaskStatus
from tests.agents.loop_support import (
    ONBOARD,
    decide,
    demo_domains,
    drain,
    event_types,
    events,
    fresh,
    inline_engine,  # noqa: F401 - fixture
    latest_plan,
    pending_approvals,
    steps_of,
)
from tools.models import ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(tenant_a, inline_engine, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path
    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}
    demo_domains(tenant_a.organization)
    return tenant_a


def say(tenant, text: str, thread: Thread | None = None, user=None) -> tuple[Thread, list[Message]]:
    user = user or tenant.member
    thread = thread or thread_create(organization=tenant.organization, user=user)
    message = message_post(thread=thread, user=user, content=text)
    return thread, message_handle(message=message)


def chat_task(tenant) -> Task:
    return Task.objects.for_org(tenant.organization).filter(source="chat", parent__isnull=True).latest("pk")


def test_onboarding_request_is_planned_approved_run_revised_approved_and_completed(world):
    """The onboarding sentence in chat: a plan waits for approval; after it, the offer letter is written with a tool,
    sent back once by the Supervisor, rewritten, approved by a person; the email and the meetings follow; the request
    completes with the Manager's summary, and every stage is a TaskEvent mirrored in the thread by role."""
    org = world.organization
    thread, _replies = say(world, ONBOARD)
    root = chat_task(world)
    assert root.executor == "ai"
    assert root.execution_type == "semi_automated"
    plan = latest_plan(root)
    assert plan.status == PlanStatus.AWAITING_APPROVAL
    assert [s["id"] for s in plan.steps] == ["draft_offer_letter", "send_welcome_email", "schedule_first_day"]
    assert fresh(root).status == TaskStatus.QUEUED
    drain(org)
    assert fresh(root).status == TaskStatus.BLOCKED  # parked: nothing runs before the plan is approved
    assert not steps_of(root)

    decide(pending_approvals(org, "plan")[0], world.admin)
    drain(org)
    steps = steps_of(root)
    letter = fresh(steps["draft_offer_letter"])
    assert letter.status == TaskStatus.BLOCKED, letter.failure_reason
    work = AgentWork.objects.for_org(org).get(task=letter)
    assert work.revision == 2
    assert [v["verdict"] for v in work.verdicts] == ["revise", "accept"]
    generated = ToolCall.objects.for_org(org).filter(tool_name="documents_generate", outcome="succeeded")
    assert generated.count() == 2
    assert fresh(steps["send_welcome_email"]).status == TaskStatus.PENDING

    step_approval = pending_approvals(org, "task")[0]
    assert "Offer%20letter%20Maria%20Lopez" in step_approval.reason
    assert "revised" not in step_approval.title
    decide(step_approval, world.admin)
    drain(org)
    root = fresh(root)
    assert root.status == TaskStatus.COMPLETED, root.failure_reason
    assert "Maria Lopez is onboarded" in root.result["summary"]
    assert {k: fresh(t).status for k, t in steps_of(root).items()} == dict.fromkeys(
        ["draft_offer_letter", "send_welcome_email", "schedule_first_day"], TaskStatus.COMPLETED)
    email = ToolCall.objects.for_org(org).get(tool_name="email_send")
    assert email.outcome == "succeeded"
    assert email.arguments["attachments"][0]["path"].startswith("onboarding/Offer letter Maria Lopez")
    assert ToolCall.objects.for_org(org).filter(tool_name="calendar_invite", outcome="succeeded").count() == 2

    types = event_types([root, *steps_of(root).values()])
    for expected in ("agent.plan", "agent.plan_approval_requested", "agent.plan_approved", "agent.step_started",
                     "agent.tool_call", "agent.verdict", "agent.revision", "agent.approval_requested",
                     "agent.approved", "agent.summary", "agent.cost", "agent.iteration"):
        assert expected in types, expected
    roles = set(Message.objects.for_org(org).filter(thread=thread).values_list("role", flat=True))
    assert {"user", "assistant", "manager", "employee", "supervisor", "tool", "system"} <= roles
    scripted = Message.objects.for_org(org).filter(thread=thread, role="manager").first()
    assert scripted.metadata["scripted"] is True
    assert "Scripted model" in scripted.metadata["label"]


def test_where_the_hris_is_connected_the_plan_creates_maria_there_before_the_email(world, settings, tmp_path):
    """With a BambooHR connection the Manager's catalogue offers hris_create_employee, so the plan adds the HRIS
    step after the approved letter and before the email and the meetings; the employee is created once through
    the real client (here against the local HRIS), and the request completes."""
    from tests.support.hris import KEY, Running
    from tools.services.credentials import credential_create

    org = world.organization
    hris = Running(tmp_path / "hris.json")
    settings.TOOLS_INTEGRATION_URLS = {"bamboohr": hris.base}
    credential_create(organization=org, actor=world.admin, provider="bamboohr",
                      secret={"api_key": KEY, "company_domain": "acme"})
    try:
        say(world, ONBOARD)
        root = chat_task(world)
        plan = latest_plan(root)
        assert [s["id"] for s in plan.steps] == [
            "draft_offer_letter", "create_hris_record", "send_welcome_email", "schedule_first_day"]
        assert {s["id"]: s["depends_on"] for s in plan.steps}["send_welcome_email"] == ["create_hris_record"]
        drain(org)
        decide(pending_approvals(org, "plan")[0], world.admin)
        drain(org)
        assert hris.app.store.all("acme") == []  # nothing reaches the HRIS before the letter is approved
        decide(pending_approvals(org, "task")[0], world.admin)
        drain(org)
        root = fresh(root)
        assert root.status == TaskStatus.COMPLETED, root.failure_reason
        [employee] = hris.app.store.all("acme")
        assert (employee["firstName"], employee["lastName"], employee["hireDate"], employee["supervisor"]) == (
            "Maria", "Lopez", "2027-03-01", "Dana Whitfield")
        created = ToolCall.objects.for_org(org).get(tool_name="hris_create_employee")
        assert created.outcome == "succeeded"
        assert ToolCall.objects.for_org(org).get(tool_name="email_send").pk > created.pk
    finally:
        hris.close()


def test_revisions_are_numbered_in_events(world):
    """The Supervisor's revise verdict starts revision 2 and says so ("Revision 2 of 3")."""
    org = world.organization
    say(world, ONBOARD)
    root = chat_task(world)
    drain(org)
    decide(pending_approvals(org, "plan")[0], world.admin)
    drain(org)
    letter = steps_of(root)["draft_offer_letter"]
    revision = [e for e in events(letter) if e.type == "agent.revision"]
    assert len(revision) == 1
    assert revision[0].payload["revision"] == 2
    assert revision[0].payload["of"] == 3
    assert "Revision 2 of 3" in revision[0].payload["text"]


def test_rejected_plan_fails_the_request_and_runs_nothing(world):
    """Rejecting the plan fails the request with the reason; no step is created, no tool is called."""
    org = world.organization
    thread, _ = say(world, ONBOARD)
    root = chat_task(world)
    drain(org)
    decide(pending_approvals(org, "plan")[0], world.admin, approve=False, reason="not before the contract is signed")
    root = fresh(root)
    assert root.status == TaskStatus.FAILED
    assert "not before the contract is signed" in root.failure_reason
    assert not steps_of(root)
    assert not ToolCall.objects.for_org(org).exists()
    assert Plan.objects.for_org(org).get(task=root).status == PlanStatus.REJECTED
    assert Message.objects.for_org(org).filter(thread=thread, content__contains="was rejected").exists()
