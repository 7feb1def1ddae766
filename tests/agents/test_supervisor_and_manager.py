"""The loop's bounds, with a programmable model: revisions capped then a person decides; stalled steps re-planned
a bounded number of times; tool iterations bounded; plans checked against the registry and the requester."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from agents.llm.types import LLMResult, Usage
from agents.llm.types import ToolCall as ModelToolCall
from agents.loop import runtime
from agents.loop.employee import resolve_references
from agents.loop.manager import ai_task_execute
from agents.loop.plans import plan_check
from agents.models import AgentWork
from automation.models import Task, TaskStatus
from automation.services.tasks import task_create
from tests.agents.loop_support import (
    decide,
    drain,
    events,
    fresh,
    inline_engine,  # noqa: F401 - fixture
    pending_approvals,
)


def result(*, content: str = "", parsed: Any = None, tool_calls: list[ModelToolCall] | None = None) -> LLMResult:
    return LLMResult(content=content, tool_calls=tool_calls or [], parsed=parsed, model="fake", deployment="fake",
                     tier="worker", locality="cloud", usage=Usage(10, 5), cost=Decimal("0.001"), currency="USD",
                     latency_ms=1, ttft_ms=None, outcome="ok", scripted=False)


def step(step_id: str, depends_on: list[str] | None = None, tools: list[str] | None = None) -> dict:
    return {"id": step_id, "title": f"Do {step_id}", "depends_on": depends_on or [], "role": "employee",
            "tools": tools or [], "success_criteria": [f"{step_id} is done"], "needs_approval": False}


class FakeModel:
    """Answers by role: the plan, the Employee's turns, the Supervisor's verdicts (a function of the revision)."""

    def __init__(self, *, steps: list[dict], verdict: Callable[[str, int], str],
                 employee: Callable[[dict], LLMResult] | None = None) -> None:
        self.steps = steps
        self.verdict = verdict
        self.employee = employee or (lambda kw: result(content=f"{kw['step_key']} done"))
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, **kw: Any) -> LLMResult:
        role, purpose = kw["role"], kw.get("purpose", "")
        self.calls.append((role, kw.get("step_key", ""), kw.get("attempt", 1)))
        if role == "manager" and purpose == "plan":
            strategy = "immediate" if len(self.steps) == 1 else "decompose"
            return result(parsed={"summary": "test", "strategy": strategy, "steps": self.steps})
        if role == "manager":
            return result(content="summary of the work")
        if role == "employee":
            return self.employee(kw)
        if role == "supervisor":
            return result(parsed={"verdict": self.verdict(kw["step_key"], kw["attempt"]), "feedback": "fix it"})
        raise AssertionError(f"unexpected {role}")


@pytest.fixture
def world(tenant_a, inline_engine, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path
    return tenant_a


def request(tenant, text: str = "Do the thing") -> Task:
    return task_create(organization=tenant.organization, actor=tenant.member, title=text, source="api",
                       execution_type="semi_automated", executor="ai",
                       parameters={"request": text, "approve_plan": False})


@pytest.mark.django_db(transaction=True)
def test_revisions_are_capped_then_a_person_decides(world, monkeypatch):
    """A Supervisor that always asks for changes gets three numbered revisions, then the result goes to a person
    ("Review needed", after 3 revisions); the person's rejection fails the task with the reason."""
    model = FakeModel(steps=[step("write")], verdict=lambda step_key, attempt: "revise")
    monkeypatch.setattr(runtime, "complete", model)
    task = request(world)
    answer = ai_task_execute(task=task, actor=world.member)
    assert answer["status"] == "waiting"
    assert [a for r, s, a in model.calls if r == "employee"] == [1, 2, 3]
    revisions = [e.payload["revision"] for e in events(task) if e.type == "agent.revision"]
    assert revisions == [2, 3]
    drain(world.organization)
    review = pending_approvals(world.organization, "task")[0]
    assert review.title.startswith("Review needed")
    assert "after 3 revisions" in review.reason
    decide(review, world.admin, approve=False, reason="the draft is still wrong")
    task = fresh(task)
    assert task.status == TaskStatus.FAILED
    assert "the draft is still wrong" in task.failure_reason


@pytest.mark.django_db(transaction=True)
def test_an_escalation_approved_by_a_person_completes_the_step(world, monkeypatch):
    """"escalate" parks the step for a person; approving it accepts the result as it is."""
    monkeypatch.setattr(runtime, "complete", FakeModel(steps=[step("write")], verdict=lambda s, a: "escalate"))
    task = request(world)
    ai_task_execute(task=task, actor=world.member)
    drain(world.organization)
    decide(pending_approvals(world.organization, "task")[0], world.admin)
    drain(world.organization)
    task = fresh(task)
    assert task.status == TaskStatus.COMPLETED
    assert task.result["steps"]["write"]["verdicts"][-1]["verdict"] == "escalate"


@pytest.mark.django_db(transaction=True)
def test_stalled_steps_are_replanned_a_bounded_number_of_times_then_the_request_fails_with_a_summary(
        world, monkeypatch, settings):
    """Step a is escalated and rejected each time: its dependent is skipped, the Manager re-plans (once, the
    limit here), and after the second stall the request fails with the Manager's summary; nothing loops."""
    settings.AGENTS_MAX_REPLANS = 1
    model = FakeModel(steps=[step("a"), step("b", ["a"])], verdict=lambda s, a: "escalate" if s == "a" else "accept")
    monkeypatch.setattr(runtime, "complete", model)
    task = request(world, "Two steps")
    answer = ai_task_execute(task=task, actor=world.member)
    assert answer["strategy"] == "decompose"
    for _ in range(2):
        drain(world.organization)
        decide(pending_approvals(world.organization, "task")[0], world.admin, approve=False, reason="no")
        drain(world.organization)
    task = fresh(task)
    assert task.status == TaskStatus.FAILED
    assert "gave up after 1 re-plans" in task.failure_reason
    types = [e.type for e in events(task)]
    assert types.count("agent.replan") == 1
    assert types.count("agent.plan") == 2
    assert "agent.summary" in types
    assert [r for r, s, a in model.calls if r == "manager" and s == "plan"] == ["manager", "manager"]
    skipped = Task.objects.for_org(world.organization).filter(parent=task, step_key="b", status="skipped")
    assert skipped.count() == 2


@pytest.mark.django_db(transaction=True)
def test_tool_iterations_are_bounded(world, monkeypatch, settings):
    """An Employee that keeps calling tools is stopped after AGENTS_MAX_TOOL_ITERATIONS turns; the report says so."""
    settings.AGENTS_MAX_TOOL_ITERATIONS = 2

    def looping(kw: dict) -> LLMResult:
        return result(tool_calls=[ModelToolCall(id=f"c{len(kw['messages'])}", name="files_list", arguments={},
                                                raw_arguments="{}")])

    monkeypatch.setattr(runtime, "complete", FakeModel(steps=[step("look", tools=["files_list"])],
                                                       verdict=lambda s, a: "accept", employee=looping))
    task = request(world)
    answer = ai_task_execute(task=task, actor=world.member)
    assert answer["status"] == "completed"
    work = AgentWork.objects.for_org(world.organization).get(task=task)
    assert work.output["report"].startswith("Stopped after 2 rounds of tool calls")
    assert [e.type for e in events(task)].count("agent.tool_call") == 2


def test_earlier_step_results_fill_tool_arguments():
    """{{ steps.<id>.<field> }} reads an earlier step's tool result; an unknown step is a KeyError naming it."""
    results = {"letter": {"path": "onboarding/Offer.docx", "nested": {"n": 3}}}
    assert resolve_references({"attachments": [{"path": "{{ steps.letter.path }}"}], "n": "{{steps.letter.nested.n}}",
                               "text": "see {{ steps.letter.path }}"}, results) == {
        "attachments": [{"path": "onboarding/Offer.docx"}], "n": 3, "text": "see onboarding/Offer.docx"}
    with pytest.raises(KeyError):
        resolve_references("{{ steps.missing.path }}", results)


@pytest.mark.django_db
def test_plan_check_names_every_problem(tenant_a):
    """Unknown tools, duplicate ids, unknown dependencies and cycles are invalid; a tool the requester may not use
    or that is not connected blocks the plan, naming what it needs; one employee step is immediate."""
    org = tenant_a.organization
    ok = plan_check({"summary": "x", "strategy": "decompose", "steps": [step("a", tools=["documents_generate"])]},
                    organization=org, requester=tenant_a.member)
    assert ok.ok
    assert ok.strategy == "immediate"
    bad = plan_check({"summary": "x", "strategy": "decompose", "steps": [
        step("a", tools=["nope"]), step("a"), step("b", ["zzz"]), step("c", ["d"]), step("d", ["c"])]},
        organization=org, requester=tenant_a.member)
    kinds = {p.kind for p in bad.problems}
    assert kinds == {"unknown_tool", "duplicate_step", "unknown_dependency", "cycle"}
    assert bad.invalid
    blocked = plan_check({"summary": "x", "strategy": "immediate", "steps": [
        step("pay", tools=["payments_create"]), step("hr", tools=["hris_create_employee"])]},
        organization=org, requester=tenant_a.member)
    assert blocked.blocked
    assert not blocked.invalid
    assert any("bamboohr" in need for need in blocked.needs)
    said_blocked = plan_check({"summary": "x", "strategy": "blocked", "needs": ["access to the bank"], "steps": []},
                              organization=org, requester=tenant_a.member)
    assert said_blocked.blocked
    assert said_blocked.needs == ["access to the bank"]
    assert plan_check("not a plan", organization=org, requester=None).invalid
