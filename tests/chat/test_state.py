"""The run panel folded from events: checklist, progress, time left, iteration, who is thinking, cost."""

from __future__ import annotations

from agents.chat_state import RunState
from tests.chat.support import PLAN

ROOT, LETTER, EMAIL, MEETINGS = 10, 11, 12, 13


def _run() -> RunState:
    run = RunState(root=ROOT, title="Onboard Maria Lopez", revisions_of=3)
    run.apply("status_changed", {"from": "queued", "to": "in_progress"}, task=ROOT, step_id="")
    return run


def test_the_manager_plans_then_waits_for_approval():
    """Before a plan the Manager is planning; the plan becomes a checklist; the request waits for approval."""
    run = _run()
    assert run.thinking == "Manager is planning…"
    assert run.thinking_role == "manager"
    run.apply("agent.plan", {"version": 1, "steps": PLAN, "llm": {"cost": "0.0012", "currency": "USD"}},
              task=ROOT, step_id="")
    assert [s.id for s in run.steps] == ["draft_offer_letter", "send_welcome_email", "schedule_first_day"]
    assert run.thinking == ""
    assert run.progress_text == "0 of 3 steps done · about 10 min left"
    run.apply("agent.plan_approval_requested", {"version": 1, "approval": 4}, task=ROOT, step_id="")
    assert run.waiting == "Waiting for approval of plan v1"
    assert run.cost_text == "Cost so far: 0.0012 USD"


def test_revision_after_review_is_counted_and_progress_follows_the_steps():
    """A revise verdict starts iteration 2/3; completed steps advance the bar; the final cost replaces the sum."""
    run = _run()
    run.apply("agent.plan", {"version": 1, "steps": PLAN}, task=ROOT, step_id="")
    run.apply("agent.plan_approved", {"approval": 4}, task=ROOT, step_id="")
    run.apply("agent.steps_started", {"subtasks": {"draft_offer_letter": LETTER}}, task=ROOT, step_id="")
    run.apply("agent.step_started", {"step": "draft_offer_letter", "revision": 1}, task=LETTER,
              step_id="draft_offer_letter")
    assert run.iteration == "Iteration 1/3"
    assert run.thinking.startswith("Employee is working on “Write Maria Lopez's offer letter")
    run.apply("agent.iteration", {"tool_calls": ["documents_generate"], "llm": {"cost": "0.001"}}, task=LETTER,
              step_id="draft_offer_letter")
    assert run.thinking == "Employee is calling documents_generate…"
    run.apply("agent.step_output", {"step": "draft_offer_letter", "revision": 1}, task=LETTER,
              step_id="draft_offer_letter")
    assert run.thinking_role == "supervisor"
    assert run.iteration == "Iteration 1/3: in review"
    run.apply("agent.verdict", {"verdict": "revise", "revision": 1}, task=LETTER, step_id="draft_offer_letter")
    run.apply("agent.revision", {"step": "draft_offer_letter", "revision": 2, "of": 3}, task=LETTER,
              step_id="draft_offer_letter")
    assert run.iteration == "Iteration 2/3: revising after review"
    run.apply("agent.approval_requested", {"approval": 5, "step": "draft_offer_letter"}, task=LETTER,
              step_id="draft_offer_letter")
    assert run.waiting == "Waiting for approval of “Write Maria Lopez's offer letter (.docx)”"
    run.apply("agent.approved", {"approval": 5}, task=LETTER, step_id="draft_offer_letter")
    run.apply("agent.step_completed", {"step": "draft_offer_letter"}, task=LETTER, step_id="draft_offer_letter")
    run.apply("status_changed", {"to": "completed"}, task=EMAIL, step_id="send_welcome_email")
    assert run.waiting == ""
    assert run.done == 2
    assert run.progress_text == "2 of 3 steps done · about 3 min left"
    assert run.cost == "0.001"
    run.apply("agent.cost", {"llm_cost": "0.0420"}, task=ROOT, step_id="")
    run.apply("agent.iteration", {"llm": {"cost": "1"}}, task=MEETINGS, step_id="schedule_first_day")
    assert run.cost_text == "Cost so far: 0.042 USD"
    run.apply("status_changed", {"to": "completed"}, task=ROOT, step_id="")
    assert run.finished
    assert run.thinking == ""
    assert run.status_label == "Done"
