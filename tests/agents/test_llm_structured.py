"""Structured output and quality checks: validation, one repair attempt, fallback, then a clear error."""

from __future__ import annotations

import json

import pytest

from agents.llm.errors import AllDeploymentsFailed, StructuredOutputInvalid
from agents.llm.gateway import complete
from agents.models import CallOutcome, LLMCall
from tests.agents.conftest import deployment

pytestmark = pytest.mark.django_db

VERDICT = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["accept", "revise", "escalate"]},
        "feedback": {"type": "string"},
    },
    "required": ["verdict"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "system", "content": "You review work."}, {"role": "user", "content": "Review this output."}]


@pytest.fixture
def two(settings, stub, fast_retries):
    """Deployments 'first' and 'second' (stub models s-first, s-second), reset for each test."""
    for name in ("s-first", "s-second"):
        stub.program(name, content="", replies=[], tool_calls=[], fail_status=None)
    settings.LLM_DEPLOYMENTS = {"first": deployment(stub, "s-first"), "second": deployment(stub, "s-second")}
    settings.LLM_TIERS = {"reviewer": ["first", "second"], "worker": ["first", "second"]}
    return stub


def review(tenant, **kwargs):
    return complete(organization=tenant.organization, user=tenant.member, role="supervisor", messages=MESSAGES,
                    response_schema=VERDICT, **kwargs)


def test_a_valid_answer_is_parsed_and_the_schema_is_given_to_the_model(two, tenant_a):
    """A JSON answer matching the schema is parsed; the schema went to the model as an instruction."""
    two.program("s-first", replies=['{"verdict": "accept", "feedback": "fine"}'])
    result = review(tenant_a)
    assert result.parsed == {"verdict": "accept", "feedback": "fine"}
    body = two.calls_for("s-first")[-1].body
    assert body["messages"][0]["content"] == "You review work."
    assert '"verdict"' in body["messages"][1]["content"]  # the schema instruction, after the caller's system text
    assert body["response_format"]["type"] == "json_schema"


def test_a_fenced_json_block_is_accepted(two, tenant_a):
    """A JSON answer wrapped in a ```json fence is still parsed."""
    two.program("s-first", replies=['```json\n{"verdict": "revise", "feedback": "add the date"}\n```'])
    assert review(tenant_a).parsed["verdict"] == "revise"


def test_an_invalid_answer_is_repaired_once_on_the_same_deployment(two, tenant_a):
    """An answer off the schema gets one repair request listing the errors; the repaired answer is used."""
    two.program("s-first", replies=['{"verdict": "maybe"}', '{"verdict": "escalate"}'])
    result = review(tenant_a)
    assert result.parsed == {"verdict": "escalate"}
    assert (result.deployment, result.outcome) == ("first", CallOutcome.OK)
    repair = two.calls_for("s-first")[-1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"verdict": "maybe"}'}
    assert "verdict: 'maybe' is not one of" in repair[-1]["content"]
    assert two.calls_for("s-second") == []
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert call.tokens_out == 4  # both answers counted


def test_still_invalid_after_repair_falls_back_to_the_next_deployment(two, tenant_a):
    """Two invalid answers from the first deployment count as a failed quality check: the next one answers."""
    two.program("s-first", replies=["I think it is fine", '{"verdict": "fine"}'])
    two.program("s-second", replies=['{"verdict": "accept"}'])
    result = review(tenant_a)
    assert (result.parsed, result.deployment, result.outcome) == ({"verdict": "accept"}, "second",
                                                                  CallOutcome.FALLBACK)
    assert result.attempts[0]["kind"] == "quality"
    assert "after one repair" in result.attempts[0]["error"]


def test_invalid_everywhere_ends_with_a_clear_structured_output_error(two, tenant_a):
    """When no deployment produces valid JSON the caller gets StructuredOutputInvalid with the reasons."""
    two.program("s-first", content="not json at all")
    two.program("s-second", content='{"verdict": "accept", "extra": 1}')
    with pytest.raises(StructuredOutputInvalid) as caught:
        review(tenant_a)
    error = caught.value
    assert "did not match the expected format" in error.message
    assert error.errors == ["(root): Additional properties are not allowed ('extra' was unexpected)"]
    assert error.content == '{"verdict": "accept", "extra": 1}'
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=error.call_id)
    assert call.outcome == CallOutcome.ERROR
    assert [a["kind"] for a in call.attempts] == ["quality", "quality"]


def test_malformed_tool_call_arguments_fall_back(two, tenant_a):
    """A tool call whose arguments are not JSON is unusable: the next deployment is asked."""
    two.program("s-first", tool_calls=[("lookup_employee", '{"name": "Maria')])
    two.program("s-second", tool_calls=[("lookup_employee", {"name": "Maria"})])
    result = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee",
                      messages=MESSAGES, tools=[{"type": "function", "function": {"name": "lookup_employee"}}])
    assert result.tool_calls[0].arguments == {"name": "Maria"}
    assert result.outcome == CallOutcome.FALLBACK
    assert "not JSON" in result.attempts[0]["error"]


def test_a_failed_quality_check_falls_back_and_all_failing_is_an_error(two, tenant_a):
    """A caller's quality check can reject an answer: the next deployment answers; if all fail, an error."""
    two.program("s-first", content="too short")
    two.program("s-second", content="a long enough and complete answer")

    def long_enough(result):
        return None if len(result.content.split()) > 3 else "the answer is too short"

    result = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=MESSAGES,
                      quality_check=long_enough)
    assert (result.deployment, result.outcome) == ("second", CallOutcome.FALLBACK)
    assert result.attempts[0]["error"] == "quality check: the answer is too short"
    with pytest.raises(AllDeploymentsFailed, match="never good enough"):
        complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=MESSAGES,
                 quality_check=lambda result: "never good enough")


def test_the_scripted_plan_validates_against_a_plan_schema(settings, tenant_a):
    """Offline, the Manager's plan for the onboarding request comes back parsed and schema-valid."""
    settings.LLM_DEPLOYMENTS = {}
    plan_schema = {
        "type": "object",
        "required": ["summary", "steps"],
        "properties": {
            "summary": {"type": "string"},
            "steps": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["id", "title", "depends_on", "tools", "success_criteria"]}},
        },
    }
    result = complete(organization=tenant_a.organization, user=tenant_a.member, role="manager", purpose="plan",
                      step_key="plan", response_schema=plan_schema, messages=[
                          {"role": "user", "content": "Onboard Maria Lopez as QA engineer starting 1 March, "
                                                      "reporting to Dana"}])
    assert [step["id"] for step in result.parsed["steps"]] == ["offer_letter", "hris_record", "welcome_email",
                                                               "calendar_events"]
    assert json.loads(result.content) == result.parsed
