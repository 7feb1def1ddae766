"""The scripted model's scenarios: every file loads, requests map to the right script, answers are deterministic."""

from __future__ import annotations

import json

import pytest

from agents.llm.scenarios import (
    FALLBACK,
    ScenarioError,
    ScriptRequest,
    load_scenarios,
    parse_scenario,
    script_reply,
    select_scenario,
)

ONBOARD = "Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana"

REQUESTS = {
    ONBOARD: ("hr_onboarding", "complex_task"),
    "Prepare the weekly report and send it to the team": ("weekly_report", "complex_task"),
    "Who is Maria's manager?": ("memory_question", "question"),
    "Schedule a meeting with Dana": ("clarification_meeting", "simple_action"),
    "Remember that our fiscal year starts in April": ("memory_remember", "memory_command"),
    "Forget Maria's phone number": ("memory_forget", "memory_command"),
    "Hello there!": (FALLBACK, "conversation"),
}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_every_scenario_file_loads_and_a_fallback_exists():
    """All scenario files parse; the required scenarios and the fallback are there."""
    scenarios = load_scenarios()
    assert {"hr_onboarding", "weekly_report", "memory_question", "clarification_meeting", "memory_remember",
            "memory_forget", FALLBACK} <= set(scenarios)


@pytest.mark.parametrize(("text", "expected"), REQUESTS.items())
def test_requests_select_their_scenario_and_intent(text, expected):
    """Each demo request is matched by keywords to its scenario, and the classifier answers its intent."""
    scenario, intent = expected
    request = ScriptRequest(role="classifier", messages=[user(text)])
    assert select_scenario(request).name == scenario
    reply = script_reply(request)
    assert json.loads(reply.content)["intent"] == intent


def test_keywords_match_whole_words_only():
    """'reporting to Dana' does not trigger the 'report to' question keyword, nor 'weekly report'."""
    request = ScriptRequest(role="classifier", messages=[user("Maria is reporting to Dana")])
    assert select_scenario(request).name == FALLBACK


def test_answers_are_deterministic():
    """The same request gives the same answer every time (tool-call ids aside)."""
    request = ScriptRequest(role="manager", step="plan", messages=[user(ONBOARD)])
    assert len({script_reply(request).content for _ in range(5)}) == 1


def _plan() -> dict:
    return json.loads(script_reply(ScriptRequest(role="manager", step="plan", messages=[user(ONBOARD)])).content)


def test_onboarding_plan_is_an_acyclic_dag_over_named_tools():
    """The onboarding plan's steps have unique ids, known dependencies, no cycle, and each names its tools."""
    steps = {step["id"]: step for step in _plan()["steps"]}
    assert set(steps) == {"offer_letter", "hris_record", "welcome_email", "calendar_events"}
    seen: set[str] = set()
    remaining = dict(steps)
    while remaining:  # Kahn's algorithm: progress every round or there is a cycle
        ready = [k for k, s in remaining.items() if set(s["depends_on"]) <= seen]
        assert ready, "cycle in the plan"
        for key in ready:
            seen.add(key)
            del remaining[key]
    assert all(step["tools"] for step in steps.values())
    assert steps["offer_letter"]["needs_approval"] is True


def test_an_entry_naming_tools_applies_only_where_the_catalogue_offers_them():
    """The Manager's second exchange plans the HRIS step only when its system prompt lists hris_create_employee
    (a connected HRIS); with the tool missing from the catalogue the plan leaves it out."""
    def plan_ids(catalogue: str) -> list[str]:
        messages = [{"role": "system", "content": f"You are the Manager.\nTools available to the requester:\n"
                                                  f"{catalogue}"}, user(ONBOARD), user("What the business knows")]
        reply = script_reply(ScriptRequest(role="manager", step="plan", messages=messages))
        return [step["id"] for step in json.loads(reply.content)["steps"]]

    connected = "- documents_generate: Make a document.\n- hris_create_employee: Add an employee.\n"
    assert plan_ids(connected) == ["draft_offer_letter", "create_hris_record", "send_welcome_email",
                                   "schedule_first_day"]
    assert plan_ids("- documents_generate: Make a document.\n") == ["draft_offer_letter", "send_welcome_email",
                                                                    "schedule_first_day"]
    assert plan_ids("Mention hris_create_employee in prose only.") == ["draft_offer_letter", "send_welcome_email",
                                                                      "schedule_first_day"]


def test_employee_tool_loop_then_summary_by_turn():
    """Turn 1 of a step calls its tool; once a tool result is in the conversation the step reports it."""
    first = script_reply(ScriptRequest(role="employee", step="hris_record", messages=[user(ONBOARD)]))
    assert [c.name for c in first.tool_calls] == ["hris_add_employee"]
    conversation = [
        user(ONBOARD),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "hris_add_employee", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"employee_id": 42}'},
    ]
    second = script_reply(ScriptRequest(role="employee", step="hris_record", messages=conversation))
    assert second.tool_calls == []
    assert '{"employee_id": 42}' in second.content


def test_supervisor_revises_once_then_accepts_and_the_revision_adds_the_manager():
    """Attempt 1 of the offer letter is sent back with feedback; attempt 2 names Dana and is accepted."""
    def review(attempt: int) -> dict:
        reply = script_reply(ScriptRequest(role="supervisor", step="offer_letter", attempt=attempt,
                                           messages=[user(ONBOARD)]))
        return json.loads(reply.content)

    assert review(1)["verdict"] == "revise"
    assert "Dana" in review(1)["feedback"]
    assert review(2)["verdict"] == "accept"
    assert review(3)["verdict"] == "accept"
    redo = script_reply(ScriptRequest(role="employee", step="offer_letter", attempt=2, messages=[user(ONBOARD)]))
    assert redo.tool_calls[0].arguments["data"]["manager"] == "Dana"
    other_step = json.loads(script_reply(ScriptRequest(role="supervisor", step="hris_record",
                                                       messages=[user(ONBOARD)])).content)
    assert other_step["verdict"] == "accept"


def test_question_is_answered_from_the_memory_block():
    """The memory question's answer quotes what the caller gave inside <memory>…</memory>."""
    messages = [
        {"role": "system", "content": "<memory>Maria Lopez reports to Dana.</memory>"},
        user("Who is Maria's manager?"),
    ]
    reply = script_reply(ScriptRequest(role="assistant", messages=messages))
    assert "Maria Lopez reports to Dana." in reply.content


def test_clarification_round_trip_by_exchange():
    """The first message lacks a time (a question comes back); the answer completes the parameters."""
    first = json.loads(script_reply(ScriptRequest(role="classifier", messages=[user("Schedule a meeting with Dana")]))
                       .content)
    assert first["missing"] == ["start", "duration_minutes"]
    assert first["question"]
    conversation = [user("Schedule a meeting with Dana"), {"role": "assistant", "content": first["question"]},
                    user("Tomorrow at 10 for 30 minutes")]
    second = json.loads(script_reply(ScriptRequest(role="classifier", messages=conversation)).content)
    assert second["intent"] == "clarification"
    assert second["parameters"]["duration_minutes"] == 30
    # The answer alone, continued from the first result's scenario:
    alone = script_reply(ScriptRequest(role="classifier", scenario="clarification_meeting",
                                       messages=[user("a"), user("Tomorrow at 10 for 30 minutes")]))
    assert json.loads(alone.content)["intent"] == "clarification"


def test_memory_command_extracts_a_fact():
    """'Remember that…' is a memory command and the extractor returns the fact with a confidence."""
    reply = script_reply(ScriptRequest(role="extractor", messages=[user("Remember that our fiscal year starts in "
                                                                        "April")]))
    facts = json.loads(reply.content)["facts"]
    assert facts[0]["predicate"] == "fiscal_year_start"
    assert 0 < facts[0]["confidence"] <= 1


def test_a_role_missing_from_a_scenario_is_answered_by_the_fallback():
    """The weekly report has no extractor entry: the fallback's empty fact list answers, marked unmatched."""
    reply = script_reply(ScriptRequest(role="extractor", messages=[user("Prepare the weekly report")]))
    assert json.loads(reply.content) == {"facts": []}
    assert reply.matched is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"responses": [{"role": "assistant", "content": "x"}]}, "needs a name"),
        ({"name": "x", "responses": []}, "needs responses"),
        ({"name": "x", "responses": [{"role": "pilot", "content": "x"}]}, "role 'pilot'"),
        ({"name": "x", "responses": [{"role": "employee"}]}, "needs content or tool_calls"),
        ({"name": "x", "responses": [{"role": "employee", "turn": 0, "content": "x"}]}, "positive integer"),
        ({"name": "x", "responses": [{"role": "employee", "tool_calls": [{"arguments": {}}]}]}, "needs a name"),
        ({"name": "x", "responses": [{"role": "manager", "tools": "hris", "content": "x"}]}, "list of tool names"),
    ],
)
def test_malformed_scenarios_are_refused_with_the_reason(data, message):
    """A broken scenario file fails loudly, naming what is wrong."""
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, "bad.yaml")
